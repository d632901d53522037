"""Inference strategies: turn (image, masks) at any size into 256x256 refiner batches and back.

* ``instance``: crop each mask's box (+ ``pad`` px), resize to ``crop_size``, refine in
  batches, paste back (the reference's COCO test).
* ``global``: the whole image at ``crop_size`` (first stage of the reference's HR test).
* ``hr``: a coarse stage around the object, then full-resolution patches where the refiner
  was unsure, refined with the last step (the reference's BIG/DIS test).
* label maps: each class as a binary mask, merged back by confidence (:func:`refine_label_map`).

``test_cfg['preset']`` picks the algorithm: ``'default'`` (this package's: object crop for the
coarse stage, bilinear resizing, patches inside the box, ``hr_max_patches``) or
``'reference'`` (the published procedure step by step for ``global`` / ``hr``, see
:mod:`mmseg_refiner.inference.reference`; ``instance`` is the same in both presets).

All strategies return per-mask probability maps and fine-probability (confidence) maps at
the image size; thresholding and the growth guard are applied by :mod:`mmseg_refiner.apis`.
"""
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import torch

from mmseg_refiner.inference import reference
from mmseg_refiner.inference.crops import (Box, crop_resize_image, crop_resize_mask, expand_box,
                                           mask_to_box, paste_prob)

MODES = ('auto', 'instance', 'global', 'hr')
PRESETS = ('default', 'reference')


@dataclass
class StrategyOutput:
    """Probabilities for N masks of one image.

    Attributes:
        prob (Tensor): (N, H, W) foreground probability (float32, CPU).
        fine_prob (Tensor): (N, H, W) confidence in [0, 1].
        num_calls (Tensor): (N,) U-Net calls spent per mask (patch calls included for hr).
        refined (Tensor): (N,) bool, False where the refiner did not run on the mask
            (returned unchanged; emptied by the reference preset's tiny-mask rule).
    """
    prob: torch.Tensor
    fine_prob: torch.Tensor
    num_calls: torch.Tensor
    refined: torch.Tensor


def _to_batch(refiner, images: List[np.ndarray], masks: List[np.ndarray]):
    """Stack BGR uint8 crops and 0/1 masks as the refiner's normalized input tensors."""
    device = refiner.data_preprocessor.mean.device
    imgs = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    coarse = torch.from_numpy(np.stack(masks)).float()[:, None].to(device)
    return refiner.data_preprocessor.normalize(imgs), coarse


def resolve_cfg(refiner, cfg=None) -> dict:
    """The effective options: ``cfg`` (a full test_cfg) or ``refiner.test_cfg``; checks the preset.

    Raises:
        ValueError: ``cfg['preset']`` is not one of :data:`PRESETS`.
    """
    cfg = refiner.test_cfg if cfg is None else cfg
    if 'preset' not in cfg:  # a test_cfg from before presets existed
        cfg = {**cfg, 'preset': 'default'}
    if cfg['preset'] not in PRESETS:
        raise ValueError(f'unknown preset {cfg["preset"]!r}; valid presets: '
                         f'{", ".join(PRESETS)}')
    return cfg


def _crop_size(cfg):
    size = int(cfg['crop_size'])
    return size, size


def choose_mode(refiner, mask: np.ndarray, mode: str, cfg=None) -> str:
    """Resolve ``mode='auto'``: ``hr`` for objects larger than ``cfg['hr_size']``."""
    cfg = resolve_cfg(refiner, cfg)
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    if mode != 'auto':
        return mode
    box = mask_to_box(mask)
    if box is None:
        return 'instance'
    long_side = max(box[2] - box[0], box[3] - box[1])
    return 'hr' if long_side > cfg['hr_size'] else 'instance'


def refine_boxes(refiner, image: np.ndarray, masks: np.ndarray, boxes: Sequence[Box], steps=None,
                 generator=None, stop_thr=None, cfg=None) -> StrategyOutput:
    """Refine ``masks`` (N, H, W) inside ``boxes`` (crop, resize, batch, paste back)."""
    cfg = resolve_cfg(refiner, cfg)
    size = _crop_size(cfg)
    crops = [crop_resize_image(image, b, size) for b in boxes]
    coarse = [crop_resize_mask(m, b, size) for m, b in zip(masks, boxes)]
    imgs, coarse_t = _to_batch(refiner, crops, coarse)
    out = refiner.refine_batch(imgs, coarse_t, steps=steps, generator=generator, stop_thr=stop_thr,
                               cfg=cfg)
    shape = image.shape[:2]
    prob = torch.stack([paste_prob(p[0].cpu(), b, shape) for p, b in zip(out.prob, boxes)])
    fine = torch.stack([paste_prob(p[0].cpu(), b, shape) for p, b in zip(out.fine_prob, boxes)])
    return StrategyOutput(prob, fine, out.num_calls.cpu(), torch.ones(len(boxes), dtype=bool))


def refine_instances(refiner, image: np.ndarray, masks: np.ndarray, steps=None, generator=None,
                     stop_thr=None, cfg=None) -> StrategyOutput:
    """The ``instance`` strategy for N bool masks (N, H, W) of one BGR image.

    Masks smaller than ``cfg['area_thr']`` (and empty ones) come back unchanged. The same in
    both presets (the reference's COCO test).
    """
    cfg = resolve_cfg(refiner, cfg)
    n, shape = masks.shape[0], image.shape[:2]
    prob = torch.from_numpy(masks.astype(np.float32))
    fine = torch.zeros_like(prob)
    calls, refined = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool)
    areas = masks.reshape(n, -1).sum(1)
    todo = [i for i in range(n) if areas[i] >= max(1, cfg['area_thr'])]
    if todo:
        boxes = [expand_box(mask_to_box(masks[i]), cfg['pad'], shape) for i in todo]
        out = refine_boxes(refiner, image, masks[todo], boxes, steps, generator, stop_thr, cfg)
        prob[todo], fine[todo] = out.prob, out.fine_prob
        calls[todo], refined[todo] = out.num_calls, True
    return StrategyOutput(prob, fine, calls, refined)


def refine_global(refiner, image: np.ndarray, masks: np.ndarray, steps=None, generator=None,
                  stop_thr=None, cfg=None) -> StrategyOutput:
    """The ``global`` strategy: the whole image at the working size, for each mask.

    ``'default'`` preset: bilinear resizing; ``'reference'``: nearest resizing both ways and
    the tiny-mask rule (see :func:`_reference_global`).
    """
    cfg = resolve_cfg(refiner, cfg)
    if cfg['preset'] == 'reference':
        all_steps = refiner.sampler.timesteps(cfg['steps'] if steps is None else steps)
        return _reference_global(refiner, image, masks, all_steps, generator, stop_thr, cfg)[0]
    h, w = image.shape[:2]
    return refine_boxes(refiner, image, masks, [(0, 0, w, h)] * masks.shape[0], steps, generator,
                        stop_thr, cfg)


def refine_hr(refiner, image: np.ndarray, masks: np.ndarray, steps=None, generator=None,
              stop_thr=None, cfg=None) -> StrategyOutput:
    """The ``hr`` strategy: coarse stage around the object + full-resolution local patches.

    Stage 1 refines the padded object crop at the working size with all steps but the last
    (the reference: t = T-1 .. 1 on the whole image). Stage 2 picks patch centres where the
    fine probability is below ``hr_fine_thr`` x its maximum, keeps a set by NMS (IoU
    ``hr_nms_iou``) scored by uncertainty, and refines the patches that hold both
    foreground and background with the last step (t = 0) at full resolution; overlapping
    patches are averaged and pasted over the stage-1 result. ``cfg['preset'] ==
    'reference'`` runs the published procedure instead (:func:`_refine_hr_reference`).
    """
    cfg = resolve_cfg(refiner, cfg)
    all_steps = refiner.sampler.timesteps(cfg['steps'] if steps is None else steps)
    coarse_steps = all_steps[:-1] if len(all_steps) > 1 else all_steps
    if cfg['preset'] == 'reference':
        return _refine_hr_reference(refiner, image, masks, all_steps, coarse_steps, generator,
                                    stop_thr, cfg)
    out = refine_instances(refiner, image, masks, coarse_steps, generator, stop_thr, cfg)
    for i in range(masks.shape[0]):
        if not out.refined[i]:
            continue
        p, calls = _refine_patches(refiner, image, out.prob[i], out.fine_prob[i], [all_steps[-1]],
                                   generator, cfg)
        out.prob[i], out.num_calls[i] = p, out.num_calls[i] + calls
    return out


def _patch_boxes(fine_prob: torch.Tensor, size: int, cfg: dict) -> List[Box]:
    """Centres of uncertain pixels -> NMS-selected patch boxes, most uncertain first."""
    h, w = fine_prob.shape
    if h < size or w < size:
        return []
    # uncertain pixels of the refined region (outside the object crop fine_prob is 0)
    uncertain = (fine_prob < cfg['hr_fine_thr'] * fine_prob.max()) & (fine_prob > 0)
    ys, xs = torch.nonzero(uncertain, as_tuple=True)
    if len(ys) == 0:
        return []
    stride = max(1, len(ys) // 4096)  # subsample candidates; NMS keeps few anyway
    ys, xs = ys[::stride], xs[::stride]
    x0 = (xs - size // 2).clamp(0, w - size).float()
    y0 = (ys - size // 2).clamp(0, h - size).float()
    boxes = torch.stack([x0, y0, x0 + size, y0 + size], 1)
    scores = 1 - fine_prob[ys, xs]
    from mmcv.ops import nms  # compiled ops: loaded on first use, not at import
    _, keep = nms(boxes, scores.float(), cfg['hr_nms_iou'])
    return [tuple(int(v) for v in boxes[k]) for k in keep]


def _refine_patches(refiner, image, prob, fine_prob, last_step, generator, cfg):
    """Refine full-resolution patches of one mask; returns (prob (H, W), U-Net calls)."""
    size = _crop_size(cfg)[0]
    mask = (prob >= cfg['mask_thr']).numpy()
    boxes = [
        b for b in _patch_boxes(fine_prob, size, cfg)
        if 0 < mask[b[1]:b[3], b[0]:b[2]].sum() < size * size
    ]
    boxes = boxes[:cfg['hr_max_patches']]  # most uncertain first
    if not boxes:
        return prob, 0
    crops = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
    coarse = [mask[y0:y1, x0:x1].astype(np.uint8) for x0, y0, x1, y1 in boxes]
    imgs, coarse_t = _to_batch(refiner, crops, coarse)
    out = refiner.refine_batch(imgs, coarse_t, steps=last_step, generator=generator, cfg=cfg)
    return reference.paste_patches(prob, [p[0].cpu() for p in out.prob], boxes), 1


# -- the reference preset ---------------------------------------------------------------------
def _reference_global(refiner, image, masks, steps, generator, stop_thr, cfg):
    """The reference's global stage for N masks (N, H, W) of one image.

    The whole image and each mask are resized to ``crop_size`` with nearest interpolation,
    refined with ``steps``, and the probabilities nearest-upsampled. Masks with at most
    :data:`reference.TINY_MASK_PX` foreground pixels come back empty (not refined).

    Returns:
        tuple[StrategyOutput, Tensor]: the full-size output and the (N, 1, h, w)
        fine probabilities at the working size (for the patch centres).
    """
    n, shape, size = masks.shape[0], image.shape[:2], _crop_size(cfg)
    out = StrategyOutput(torch.zeros(masks.shape), torch.zeros(masks.shape),
                         torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool))
    todo = [i for i in range(n) if masks[i].sum() > reference.TINY_MASK_PX]
    if not todo:
        return out, torch.zeros((0, 1) + size)
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    img = reference.resize_nearest(img, size).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    coarse = reference.resize_nearest(torch.from_numpy(masks[todo])[:, None], size) >= 0.5
    imgs, coarse_t = _to_batch(refiner, [img] * len(todo), list(coarse[:, 0].numpy()))
    small = refiner.refine_batch(imgs, coarse_t, steps=steps, generator=generator,
                                 stop_thr=stop_thr, cfg=cfg)
    out.prob[todo] = reference.resize_nearest(small.prob.cpu(), shape)[:, 0]
    out.fine_prob[todo] = reference.resize_nearest(small.fine_prob.cpu(), shape)[:, 0]
    out.num_calls[todo], out.refined[todo] = small.num_calls.cpu(), True
    return out, small.fine_prob.cpu()


def _refine_hr_reference(refiner, image, masks, all_steps, coarse_steps, generator, stop_thr,
                         cfg) -> StrategyOutput:
    """The reference's ``hr``: global stage with ``coarse_steps``, then full-size patches."""
    out, small_fine = _reference_global(refiner, image, masks, coarse_steps, generator, stop_thr,
                                        cfg)
    for j, i in enumerate(torch.nonzero(out.refined)[:, 0].tolist()):
        prob, fine, calls = _reference_patches(refiner, image, out.prob[i], out.fine_prob[i],
                                               small_fine[j, 0], [all_steps[-1]], generator, cfg)
        out.prob[i], out.fine_prob[i] = prob, fine
        out.num_calls[i] += calls
    return out


def _reference_patches(refiner, image, prob, fine_prob, small_fine, last_step, generator, cfg):
    """The reference's local stage for one mask; returns (prob, fine_prob (H, W), calls).

    Centres come from the working-size map ``small_fine`` (h, w); patches start from the
    upsampled global mask ``prob >= 0.5`` and fine probabilities ``fine_prob`` (H, W).
    """
    size, shape = _crop_size(cfg)[0], image.shape[:2]
    ys, xs, scores = reference.patch_centres(small_fine, shape, cfg['hr_fine_thr'])
    mask = prob >= 0.5
    boxes = reference.mixed_patches(
        mask, reference.patch_boxes(ys, xs, scores, shape, size, cfg['hr_nms_iou']))
    if not boxes:
        return prob, fine_prob, 0
    crops = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]
    coarse = [mask[y0:y1, x0:x1].numpy().astype(np.uint8) for x0, y0, x1, y1 in boxes]
    imgs, coarse_t = _to_batch(refiner, crops, coarse)
    init = torch.stack([fine_prob[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes])[:, None]
    out = refiner.refine_batch(imgs, coarse_t, steps=last_step, generator=generator, cfg=cfg,
                               fine_prob_init=init.to(imgs.device))
    prob = reference.paste_patches(prob, [p[0].cpu() for p in out.prob], boxes)
    fine_prob = reference.paste_patches(fine_prob, [f[0].cpu() for f in out.fine_prob], boxes)
    return prob, fine_prob, 1


def run_strategy(refiner, mode: str, image: np.ndarray, masks: np.ndarray, steps=None,
                 generator=None, stop_thr=None, cfg=None) -> StrategyOutput:
    """Dispatch to a strategy by name ('instance', 'global' or 'hr').

    Args:
        cfg (dict, optional): The effective options (a full test_cfg); ``None`` =
            ``refiner.test_cfg``. ``cfg['preset']`` selects the algorithm.
    """
    cfg = resolve_cfg(refiner, cfg)
    fn = {'instance': refine_instances, 'global': refine_global, 'hr': refine_hr}[mode]
    return fn(refiner, image, masks, steps=steps, generator=generator, stop_thr=stop_thr, cfg=cfg)


def merge_probs(masks_prob: torch.Tensor, thr: float) -> torch.Tensor:
    """Index of the most probable of (N, H, W) maps per pixel; -1 where none reaches ``thr``."""
    best, idx = masks_prob.max(0)
    return torch.where(best >= thr, idx, torch.full_like(idx, -1))
