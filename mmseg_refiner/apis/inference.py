"""Python API: build a refiner and refine one image with one mask, several masks, or a label map.

Example::

    from mmseg_refiner.apis import init_refiner, refine_mask
    refiner = init_refiner()                       # the shipped small model
    refined = refine_mask(refiner, 'photo.jpg', 'coarse.png', seed=0)   # bool HxW
"""
import copy
import os.path as osp
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import CheckpointLoader

from mmseg_refiner.inference.guard import apply_guard, resolve_guard
from mmseg_refiner.inference.strategies import choose_mode, merge_probs, run_strategy
from mmseg_refiner.registry import MODELS
from mmseg_refiner.utils.io import InputError, imread_checked, maskread_checked

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CHECKPOINT = osp.join(PACKAGE_DIR, 'checkpoints', 'segrefiner_small_people_hair.pth')

ArrayOrPath = Union[str, np.ndarray]


def _model_cfg(config) -> ConfigDict:
    """The ``model`` dict of a config path / Config / dict (a bare model dict is accepted)."""
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'refiner config not found: {config}')
        config = Config.fromfile(config)
    elif isinstance(config, dict) and not isinstance(config, Config):
        config = Config(copy.deepcopy(dict(config)))
    if not isinstance(config, Config):
        raise TypeError(f'config must be a path, Config or dict, got {type(config)}')
    model = config.get('model', config if 'type' in config else None)
    if model is None:
        raise KeyError('refiner config has no "model" entry')
    return ConfigDict(copy.deepcopy(model))


def _load_state_dict(path: str) -> tuple:
    """(state_dict, meta) of a checkpoint file (mmengine, released SegRefiner, or shipped)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'refiner checkpoint not found: {path}')
    try:
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except Exception as exc:  # truncated zip, pickle errors, text files ...
        raise ValueError(f'{path} is not a readable checkpoint '
                         f'({type(exc).__name__}: {exc})') from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} is not a checkpoint (got {type(ckpt).__name__})')
    state = ckpt.get('state_dict', ckpt)
    state = {k[7:] if k.startswith('module.') else k: v for k, v in state.items()}
    return state, ckpt.get('meta', {}) or {}


def load_refiner_weights(model: torch.nn.Module, path: str) -> None:
    """Load ``path`` strictly; the error lists missing and unexpected keys."""
    state, _ = _load_state_dict(path)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # torch lists every tensor of the wrong shape
        raise ValueError(f'checkpoint {path} does not match the refiner config '
                         f'(tensor shape mismatch): {exc}') from exc
    if result.missing_keys or result.unexpected_keys:
        def head(keys):
            return ', '.join(keys[:8]) + (f' ... (+{len(keys) - 8})' if len(keys) > 8 else '')
        raise KeyError(f'checkpoint {path} does not match the refiner config: '
                       f'{len(result.missing_keys)} missing keys [{head(result.missing_keys)}], '
                       f'{len(result.unexpected_keys)} unexpected keys '
                       f'[{head(result.unexpected_keys)}]')


def init_refiner(config=None, checkpoint: Optional[str] = None, device: str = 'cpu',
                 cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a :class:`DiffusionRefiner` and load its weights.

    Args:
        config (str | Config | dict, optional): A refiner config (file, Config, full config
            dict or a bare model dict). ``None``: the config embedded in ``checkpoint`` (or in
            the shipped checkpoint when that is ``None`` too).
        checkpoint (str, optional): Weights: mmengine checkpoints, the released SegRefiner
            files (``denoise_model.*`` keys) and the shipped file all load. ``None`` with
            ``config=None`` loads the shipped small model; ``None`` with a config leaves the
            weights random (a warning says so).
        device (str): Device. Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides merged into the model config, e.g.
            ``{'test_cfg.steps': 4}`` or ``{'test_cfg': {'batch_size': 8}}``.

    Returns:
        DiffusionRefiner: in eval mode, with ``.backbone`` and ``.sampler``.
    """
    if config is None:
        checkpoint = checkpoint or DEFAULT_CHECKPOINT
        _, meta = _load_state_dict(checkpoint)
        if 'model_cfg' not in meta:
            raise ValueError(f'{checkpoint} carries no model config: pass `config` as well')
        config = dict(model=meta['model_cfg'])
    model_cfg = Config(dict(model=_model_cfg(config)))
    if cfg_options:
        model_cfg.merge_from_dict({f'model.{k}': v for k, v in cfg_options.items()})
    with DefaultScope.overwrite_default_scope('mmseg_refiner'):
        model = MODELS.build(model_cfg.model)
    if checkpoint is not None:
        load_refiner_weights(model, checkpoint)
    else:
        warnings.warn('init_refiner: no checkpoint given, the refiner has random weights')
    model.cfg = model_cfg
    return model.to(device).eval()


def _generator(seed: Optional[int]) -> Optional[torch.Generator]:
    return None if seed is None else torch.Generator().manual_seed(int(seed))


def _check_pair(image: np.ndarray, masks: np.ndarray, what: str = 'mask'):
    if masks.shape[-2:] != image.shape[:2]:
        raise InputError(f'{what} size {masks.shape[-1]}x{masks.shape[-2]} (WxH) does not match '
                         f'the image size {image.shape[1]}x{image.shape[0]}')


def _refine(refiner, image, masks, mode, steps, seed, guard, stop_thr=None):
    """Refine (N, H, W) bool masks of one image; returns (prob, fine_prob) (N, H, W).

    Where the growth guard overrules the refiner, ``prob`` is set to the coarse value.
    """
    gen = _generator(seed)
    groups = {}  # chosen mode -> indices of its masks, in first-seen order
    for i, m in enumerate(masks):
        groups.setdefault(choose_mode(refiner, m, mode), []).append(i)
    prob = torch.zeros(masks.shape, dtype=torch.float32)
    fine = torch.zeros(masks.shape, dtype=torch.float32)
    for m, idx in groups.items():
        out = run_strategy(refiner, m, image, masks[idx], steps=steps, generator=gen,
                           stop_thr=stop_thr)
        prob[idx], fine[idx] = out.prob, out.fine_prob
    guard = resolve_guard(refiner.test_cfg['guard'] if guard is None else guard)
    if guard is not None:
        thr = refiner.test_cfg['mask_thr']
        for i, coarse in enumerate(masks):
            kept = apply_guard((prob[i] >= thr).numpy(), coarse, **guard)
            prob[i] = torch.where(torch.from_numpy(kept), prob[i].clamp(min=thr),
                                  prob[i].clamp(max=thr * 0.999))
    return prob, fine


@torch.no_grad()
def refine_masks(refiner, image: ArrayOrPath, masks: np.ndarray, mode: str = 'auto',
                 steps=None, seed: Optional[int] = None, return_confidence: bool = False,
                 guard=None, stop_thr: Optional[float] = None):
    """Refine several binary masks of one image.

    Args:
        refiner: A model from :func:`init_refiner`.
        image (str | ndarray): Path, or HxWx3 uint8 BGR array (as ``mmcv.imread``).
        masks (ndarray): (N, H, W) bool / 0-1 / 0-255.
        mode (str): 'auto', 'instance', 'global' or 'hr'. Defaults to 'auto' (``hr`` when a
            mask's box is longer than ``test_cfg['hr_size']``, else ``instance``).
        steps (None | int | list[int]): Reverse timesteps; ``None`` = ``test_cfg['steps']``.
        seed (int, optional): Seed of the sampling noise (``None``: not reproducible).
        return_confidence (bool): Also return the (N, H, W) fine-probability maps.
        guard (None | bool | dict): Growth guard (:mod:`mmseg_refiner.inference.guard`):
            ``None`` = ``test_cfg['guard']`` (on by default), ``False`` = off (the reference
            behaviour), a dict = its options.
        stop_thr (float, optional): Adaptive stopping threshold (see
            :meth:`DiffusionRefiner.refine_batch`); ``None`` = ``test_cfg['stop_thr']``.

    Returns:
        ndarray: (N, H, W) bool refined masks (and confidences in [0, 1] if asked).
        Empty masks and masks below ``test_cfg['area_thr']`` come back unchanged.
    """
    image = imread_checked(image)
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise InputError(f'masks must be (N, H, W), got shape {masks.shape}')
    masks = np.stack([maskread_checked(m, f'masks[{i}]') for i, m in enumerate(masks)]) \
        if len(masks) else masks.astype(bool)
    _check_pair(image, masks, 'masks')
    prob, fine = _refine(refiner, image, masks, mode, steps, seed, guard, stop_thr)
    refined = (prob >= refiner.test_cfg['mask_thr']).numpy()
    return (refined, fine.numpy()) if return_confidence else refined


def refine_mask(refiner, image: ArrayOrPath, mask: ArrayOrPath, mode: str = 'auto', steps=None,
                seed: Optional[int] = None, return_confidence: bool = False, guard=None,
                stop_thr: Optional[float] = None):
    """Refine one binary mask of one image.

    Args:
        refiner: A model from :func:`init_refiner`.
        image (str | ndarray): Path, or HxWx3 uint8 BGR array.
        mask (str | ndarray): Path, or HxW bool / 0-1 / 0-255 array of the image's size.
        mode, steps, seed, return_confidence, guard, stop_thr: as :func:`refine_masks`.

    Returns:
        ndarray: HxW bool (and an HxW float32 confidence map if ``return_confidence``).
    """
    image = imread_checked(image)
    mask = maskread_checked(mask)
    out = refine_masks(refiner, image, mask[None], mode, steps, seed, return_confidence, guard,
                       stop_thr)
    return (out[0][0], out[1][0]) if return_confidence else out[0]


@torch.no_grad()
def refine_label_map(refiner, image: ArrayOrPath, label_map: np.ndarray,
                     ignore_index: int = 255, classes: Optional[Sequence[int]] = None,
                     mode: str = 'auto', steps=None, seed: Optional[int] = None,
                     guard=None) -> np.ndarray:
    """Refine a semantic label map: every class as a binary mask, merged by confidence.

    A pixel takes the class whose refined probability is highest if that reaches
    ``test_cfg['mask_thr']``, otherwise it keeps its label. ``ignore_index`` pixels and
    classes not in ``classes`` (when given) are left exactly as they were.

    Args:
        label_map (ndarray): (H, W) integer labels; dtype is kept.
        ignore_index (int): Label left untouched. Defaults to 255.
        classes (Sequence[int], optional): Only refine these classes. Defaults to all present.
        mode, steps, seed, guard: as :func:`refine_masks` (the guard acts per class).

    Returns:
        ndarray: (H, W) refined labels, same dtype.
    """
    image = imread_checked(image)
    label_map = np.asarray(label_map)
    if label_map.ndim != 2 or not np.issubdtype(label_map.dtype, np.integer):
        raise InputError(f'label_map must be an (H, W) integer array, got '
                         f'{label_map.dtype} {label_map.shape}')
    _check_pair(image, label_map, 'label_map')
    present = [int(c) for c in np.unique(label_map) if c != ignore_index]
    todo = [c for c in present if classes is None or c in set(classes)]
    if not todo:
        return label_map.copy()
    masks = np.stack([label_map == c for c in todo])
    prob, _ = _refine(refiner, image, masks, mode, steps, seed, guard)
    winner = merge_probs(prob, refiner.test_cfg['mask_thr']).numpy()
    frozen = np.isin(label_map, [ignore_index] + [c for c in present if c not in todo])
    out = label_map.copy()
    change = (winner >= 0) & ~frozen
    out[change] = np.asarray(todo, dtype=label_map.dtype)[winner[change]]
    return out
