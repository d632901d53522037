"""The pieces of the reference implementation's high-resolution (BIG / DIS) inference.

``test_cfg.preset='reference'`` reproduces the published procedure (Wang et al., NeurIPS
2023, the reference ``SegRefinerSemantic.simple_test_semantic``) with these pure functions;
the drivers that call the refiner are in :mod:`mmseg_refiner.inference.strategies`:

1. masks with at most :data:`TINY_MASK_PX` foreground pixels are returned empty;
2. global stage: the WHOLE image and mask resized to ``crop_size`` with nearest
   interpolation (:func:`resize_nearest`), steps T-1 .. 1, result and fine probabilities
   upsampled with nearest interpolation;
3. patch centres: every pixel of the ``crop_size``\\ :sup:`2` global fine-probability map
   below ``hr_fine_thr`` x its maximum, mapped to full resolution by ``int(y * H / h)``
   (:func:`patch_centres`), scored by ``1 - fine_prob``;
4. square ``crop_size`` boxes around the centres shifted inside the image, NMS with
   ``hr_nms_iou``, no cap on their number (:func:`patch_boxes`);
5. only patches holding both foreground and background (:func:`mixed_patches`) are refined
   with the last step, starting from the upsampled global fine probabilities; overlapping
   patches are averaged and pasted over the global result (:func:`paste_patches`).
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmseg_refiner.inference.crops import Box

TINY_MASK_PX = 128  # masks with at most this many foreground pixels come back empty


def resize_nearest(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Nearest resize of (N, C, h, w) to ``size`` = (H, W), torch's rule (as the reference).

    The source pixel of output pixel ``i`` is ``floor(i * h / H)``.
    """
    return F.interpolate(x.float(), size=tuple(int(s) for s in size), mode='nearest')


def patch_centres(fine_prob: torch.Tensor, shape: Tuple[int, int],
                  thr: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full-resolution centres of the uncertain pixels of a global fine-probability map.

    Args:
        fine_prob (Tensor): (h, w) fine probability of the global stage.
        shape (tuple[int, int]): Full image size (H, W).
        thr (float): Pixels with ``fine_prob < thr * max(fine_prob)`` are uncertain.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``ys``, ``xs`` (K,) int32 full-resolution centres
        (``int(y * H / h)``, in raster order of the map) and their scores ``1 - fine_prob``.
    """
    h, w = fine_prob.shape
    low = fine_prob < float(fine_prob.max()) * thr
    ys, xs = torch.nonzero(low, as_tuple=True)
    ys = (ys * (shape[0] / h)).int()
    xs = (xs * (shape[1] / w)).int()
    return ys, xs, 1 - fine_prob[low]


def patch_boxes(ys: torch.Tensor, xs: torch.Tensor, scores: torch.Tensor, shape: Tuple[int, int],
                size: int, iou_thr: float) -> List[Box]:
    """``size`` x ``size`` boxes centred on (ys, xs), shifted inside the image, after NMS.

    A box that would leave the image is moved back inside it (images smaller than ``size``
    give no boxes). Boxes come back most uncertain first, as integer (x0, y0, x1, y1).
    """
    h, w = shape
    if h < size or w < size or len(ys) == 0:
        return []
    y0 = (ys - size / 2).clamp(0, h - size)
    x0 = (xs - size / 2).clamp(0, w - size)
    boxes = torch.stack([x0, y0, x0 + size, y0 + size], 1).float()
    from mmcv.ops import nms  # compiled ops: loaded on first use, not at import
    dets, _ = nms(boxes, scores.float(), iou_thr)
    return [tuple(int(v) for v in d[:4].int()) for d in dets]


def mixed_patches(mask: torch.Tensor, boxes: Sequence[Box]) -> List[Box]:
    """The boxes in which the (H, W) bool ``mask`` has both foreground and background."""
    keep = []
    for x0, y0, x1, y1 in boxes:
        crop = mask[y0:y1, x0:x1]
        if crop.any() and not crop.all():
            keep.append((x0, y0, x1, y1))
    return keep


def paste_patches(canvas: torch.Tensor, patches: Sequence[torch.Tensor],
                  boxes: Sequence[Box]) -> torch.Tensor:
    """Average overlapping (h, w) ``patches`` and paste them into a copy of (H, W) ``canvas``.

    Pixels no patch covers keep the canvas value.
    """
    acc, cnt = torch.zeros_like(canvas), torch.zeros_like(canvas)
    for (x0, y0, x1, y1), p in zip(boxes, patches):
        acc[y0:y1, x0:x1] += p
        cnt[y0:y1, x0:x1] += 1
    covered = cnt > 0
    out = canvas.clone()
    out[covered] = acc[covered] / cnt[covered]
    return out
