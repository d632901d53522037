"""Python API: build a refiner and refine one image with one mask, several masks, or a label map.

Example::

    from mmseg_refiner.apis import init_refiner, refine_mask
    refiner = init_refiner()                       # the shipped small model
    refined = refine_mask(refiner, 'photo.jpg', 'coarse.png', seed=0)   # bool HxW
    refined = refine_mask(refiner, 'photo.jpg', 'coarse.png', seed=0, preset='reference')

Every inference option is a field of :class:`~mmseg_refiner.apis.RefineOptions`: pass them
as keyword arguments or all at once as ``options=RefineOptions(...)`` (or a dict).
"""
import logging
import os
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch

# init_refiner & co. live in builder.py; re-exported here for existing imports
from mmseg_refiner.apis.builder import _load_state_dict  # noqa: F401
from mmseg_refiner.apis.builder import DEFAULT_CHECKPOINT, init_refiner, load_refiner_weights
from mmseg_refiner.apis.options import RefineOptions
from mmseg_refiner.inference.guard import guard_masks
from mmseg_refiner.inference.strategies import choose_mode, run_strategy
from mmseg_refiner.utils.io import (InputError, exif_orientation, imread_checked, is_int,
                                    maskread_checked)

__all__ = [
    'init_refiner', 'load_refiner_weights', 'DEFAULT_CHECKPOINT', 'refine_mask', 'refine_masks',
    'refine_label_map', 'check_options', 'read_pair'
]

ArrayOrPath = Union[str, np.ndarray]


def _generator(seed: Optional[int]) -> Optional[torch.Generator]:
    return None if seed is None else torch.Generator().manual_seed(int(seed))


def _check_pair(image: np.ndarray, masks: np.ndarray, what: str = 'mask'):
    if masks.shape[-2:] != image.shape[:2]:
        raise InputError(f'{what} size {masks.shape[-1]}x{masks.shape[-2]} (WxH) does not match '
                         f'the image size {image.shape[1]}x{image.shape[0]}')


def read_pair(image: ArrayOrPath, mask: ArrayOrPath):
    """``(BGR uint8 HxWx3, bool HxW)`` of an image and a mask (paths or arrays), checked by
    :func:`~mmseg_refiner.utils.io.imread_checked` and ``maskread_checked``.

    An image file with an EXIF orientation tag is read turned upright, as viewers, mmcv and
    mmdet read it: a warning says so, and a mask that fits the stored pixels instead is an
    error naming the tag.
    """
    orientation = exif_orientation(image) if isinstance(image, (str, os.PathLike)) else 1
    image_arr, mask = imread_checked(image), maskread_checked(mask)
    if orientation != 1:
        _check_turned_pair(image, orientation, image_arr, mask)
    return image_arr, mask


def _check_turned_pair(path, orientation: int, image: np.ndarray, mask: np.ndarray) -> None:
    h, w = image.shape[:2]
    if mask.shape != (h, w) and mask.shape == (w, h):
        raise InputError(
            f'mask size {mask.shape[1]}x{mask.shape[0]} (WxH) fits image file {path} as '
            f'stored, but its EXIF orientation tag ({orientation}) turns it to {w}x{h} when read '
            '(as image viewers, mmcv and mmdet read it): turn the mask the same way, or remove '
            'the tag from the image')
    from mmengine.logging import print_log
    print_log(
        f'image file {path} has EXIF orientation {orientation}: it is refined as read, '
        'turned upright (as viewers, mmcv and mmdet show it); the mask must fit the turned '
        'image', logger='current', level=logging.WARNING)


def _options(options, **given) -> RefineOptions:
    """``options`` (RefineOptions | dict | None) with the keyword arguments given on top
    (``None`` = not given); unknown names are a TypeError listing the valid ones."""
    return RefineOptions.coerce(options).merged(**given)


def check_options(refiner, options: Union[None, dict, RefineOptions] = None, **kwargs) -> dict:
    """The effective inference config of ``options`` on ``refiner``, checked against the model.

    Besides each option's own check (:meth:`RefineOptions.resolve`), ``steps`` must fit the
    sampler's T and ``crop_size`` the U-Net's downsampling. Command lines call it once before
    their file loop, so a bad option is one error, not one per file.

    Args:
        refiner: A refiner from :func:`init_refiner`.
        options (RefineOptions | dict, optional): The options; ``**kwargs`` go on top.

    Returns:
        dict: The refiner's ``test_cfg`` with the options applied.

    Raises:
        ValueError: An option is not valid for this model; the message names it.
    """
    return _checked_cfg(refiner, _options(options, **kwargs))


def _checked_cfg(refiner, opts: RefineOptions) -> dict:
    cfg = opts.resolve(refiner.test_cfg)
    refiner.sampler.timesteps(cfg['steps'])  # steps outside [1, T]: ValueError naming them
    factor = getattr(refiner.backbone, 'downsample_factor', 1)
    if int(cfg['crop_size']) % factor:
        raise ValueError(f'crop_size must be a multiple of {factor} for this model (its U-Net '
                         f'halves the size {factor.bit_length() - 1} times), got '
                         f'{cfg["crop_size"]}')
    return cfg


def _refine(refiner, image: np.ndarray, masks: np.ndarray, opts: RefineOptions):
    """Refine (N, H, W) bool masks of one image with the options ``opts``.

    Returns:
        tuple: ``(prob, fine_prob, guarded)``: (N, H, W) float tensors of the refiner's
        probability and confidence, and the :class:`GuardResult` (final masks).
    """
    cfg = _checked_cfg(refiner, opts)
    gen = _generator(opts.seed)
    groups = {}  # chosen mode -> indices of its masks, in first-seen order
    for i, m in enumerate(masks):
        groups.setdefault(choose_mode(refiner, m, opts.mode, cfg=cfg), []).append(i)
    prob = torch.zeros(masks.shape, dtype=torch.float32)
    fine = torch.zeros(masks.shape, dtype=torch.float32)
    for mode, idx in groups.items():
        out = run_strategy(refiner, mode, image, masks[idx], steps=cfg['steps'], generator=gen,
                           stop_thr=cfg['stop_thr'], cfg=cfg)
        prob[idx], fine[idx] = out.prob, out.fine_prob
    guarded = guard_masks((prob >= cfg['mask_thr']).numpy(), masks, cfg['guard'])
    return prob, fine, guarded


@torch.no_grad()
def refine_masks(refiner, image: ArrayOrPath, masks: np.ndarray, mode: Optional[str] = None,
                 steps=None, seed: Optional[int] = None, return_confidence: bool = False,
                 guard=None, stop_thr: Optional[float] = None,
                 options: Union[None, dict, RefineOptions] = None, **kwargs):
    """Refine several binary masks of one image.

    Args:
        refiner: A model from :func:`init_refiner`.
        image (str | ndarray): Path, or HxWx3 uint8 BGR array (as ``mmcv.imread``).
        masks (ndarray | list): (N, H, W) bool / 0-1 / 0-255, or a list of N such HxW masks.
        mode (str, optional): 'auto', 'instance', 'global' or 'hr'. Defaults to 'auto'
            (``hr`` when a mask's box is longer than ``test_cfg['hr_size']``, else
            ``instance``).
        steps (None | int | list[int]): Reverse timesteps; ``None`` = ``test_cfg['steps']``.
        seed (int, optional): Seed of the sampling noise (``None``: not reproducible).
        return_confidence (bool): Also return the (N, H, W) fine-probability maps.
        guard (None | bool | dict): Growth guard (:mod:`mmseg_refiner.inference.guard`):
            ``None`` = ``test_cfg['guard']`` (on by default), ``False`` = off (the reference
            behaviour), a dict = its options.
        stop_thr (float, optional): Adaptive stopping threshold (see
            :meth:`DiffusionRefiner.refine_batch`); ``None`` = ``test_cfg['stop_thr']``.
        options (RefineOptions | dict, optional): All inference options at once
            (:class:`~mmseg_refiner.apis.RefineOptions`); the keyword arguments above and
            ``**kwargs`` override it where they are not None.
        **kwargs: Any other :class:`RefineOptions` field, e.g. ``preset='reference'``,
            ``stop_criterion='change'``, ``autocast='fp32'``.

    Returns:
        ndarray: (N, H, W) bool refined masks (and confidences in [0, 1] if asked).
        Empty masks and masks below ``test_cfg['area_thr']`` come back unchanged.
    """
    opts = _options(options, mode=mode, steps=steps, seed=seed, guard=guard, stop_thr=stop_thr,
                    **kwargs)
    image = imread_checked(image)
    if isinstance(masks, (list, tuple)):  # a list of HxW masks: same size, or none at all
        shapes = {np.shape(m) for m in masks}
        if len(shapes) > 1:
            raise InputError(f'masks of one image must share one size, got shapes '
                             f'{sorted(shapes)}')
        masks = np.stack([np.asarray(m) for m in masks]) if masks else \
            np.zeros((0, ) + image.shape[:2], bool)
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise InputError(f'masks must be (N, H, W), got shape {masks.shape}')
    masks = np.stack([maskread_checked(m, f'masks[{i}]') for i, m in enumerate(masks)]) \
        if len(masks) else masks.astype(bool)
    _check_pair(image, masks, 'masks')
    _, fine, guarded = _refine(refiner, image, masks, opts)
    return (guarded.mask, fine.numpy()) if return_confidence else guarded.mask


def refine_mask(refiner, image: ArrayOrPath, mask: ArrayOrPath, mode: Optional[str] = None,
                steps=None, seed: Optional[int] = None, return_confidence: bool = False,
                guard=None, stop_thr: Optional[float] = None,
                options: Union[None, dict, RefineOptions] = None, **kwargs):
    """Refine one binary mask of one image.

    Args:
        refiner: A model from :func:`init_refiner`.
        image (str | ndarray): Path, or HxWx3 uint8 BGR array.
        mask (str | ndarray): Path, or HxW bool / 0-1 / 0-255 array of the image's size.
        mode, steps, seed, return_confidence, guard, stop_thr, options, **kwargs: as
            :func:`refine_masks`.

    Returns:
        ndarray: HxW bool (and an HxW float32 confidence map if ``return_confidence``).
    """
    image, mask = read_pair(image, mask)
    out = refine_masks(refiner, image, mask[None], mode, steps, seed, return_confidence, guard,
                       stop_thr, options, **kwargs)
    return (out[0][0], out[1][0]) if return_confidence else out[0]


def _check_label_args(ignore_index, classes) -> None:
    if not is_int(ignore_index):
        raise InputError(f'ignore_index must be an integer label, got {ignore_index!r}')
    if classes is not None and (isinstance(classes, (str, bytes)) or
                                not isinstance(classes, (list, tuple, np.ndarray)) or
                                not all(is_int(c) for c in classes)):
        raise InputError(f'classes must be a list of integer labels, got {classes!r}')


def _merge_classes(prob: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """(H, W) index of the most probable class among those whose final mask (N, H, W) holds
    the pixel; -1 where none does."""
    held = torch.from_numpy(masks)
    _, idx = torch.where(held, prob, torch.full_like(prob, -1.0)).max(0)
    return torch.where(held.any(0), idx, torch.full_like(idx, -1)).numpy()


@torch.no_grad()
def refine_label_map(refiner, image: ArrayOrPath, label_map: np.ndarray, ignore_index: int = 255,
                     classes: Optional[Sequence[int]] = None, mode: Optional[str] = None,
                     steps=None, seed: Optional[int] = None, guard=None,
                     options: Union[None, dict, RefineOptions] = None, **kwargs) -> np.ndarray:
    """Refine a semantic label map: every class as a binary mask, merged by confidence.

    A pixel takes the most probable of the classes whose refined (and guarded) mask holds
    it, otherwise it keeps its label. ``ignore_index`` pixels and classes not in ``classes``
    (when given) are left exactly as they were. So boundaries move only between refined
    classes: a single refined class can neither take pixels (its neighbours are frozen) nor
    give them up (nobody takes them), and the map comes back unchanged (a warning says so);
    list the neighbouring classes too, or all (``classes=None``).

    Args:
        label_map (ndarray): (H, W) integer labels; dtype is kept.
        ignore_index (int): Label left untouched. Defaults to 255.
        classes (Sequence[int], optional): Only refine these classes. Defaults to all present.
        mode, steps, seed, guard, options, **kwargs: as :func:`refine_masks` (the guard acts
            per class; ``stop_thr=...``, ``preset=...`` etc. go in ``options`` or kwargs).

    Returns:
        ndarray: (H, W) refined labels, same dtype.
    """
    opts = _options(options, mode=mode, steps=steps, seed=seed, guard=guard, **kwargs)
    image = imread_checked(image)
    label_map = np.asarray(label_map)
    if label_map.ndim != 2 or not np.issubdtype(label_map.dtype, np.integer):
        raise InputError(f'label_map must be an (H, W) integer array, got '
                         f'{label_map.dtype} {label_map.shape}')
    _check_pair(image, label_map, 'label_map')
    _check_label_args(ignore_index, classes)
    present = [int(c) for c in np.unique(label_map) if c != ignore_index]
    todo = [c for c in present if classes is None or c in set(classes)]
    if len(todo) < 2:
        opts.validate()
        if todo and len(present) > 1:
            warnings.warn(
                'refine_label_map: one class refined alone cannot change the map '
                '(its neighbours are frozen and nobody takes the pixels it gives up); '
                'list the neighbouring classes too, or classes=None', stacklevel=2)
        return label_map.copy()
    masks = np.stack([label_map == c for c in todo])
    prob, _, guarded = _refine(refiner, image, masks, opts)
    winner = _merge_classes(prob, guarded.mask)
    frozen = np.isin(label_map, [ignore_index] + [c for c in present if c not in todo])
    out = label_map.copy()
    change = (winner >= 0) & ~frozen
    out[change] = np.asarray(todo, dtype=label_map.dtype)[winner[change]]
    return out
