"""CropHRSample: the reference HR recipe's object crop and boundary patch."""
from typing import Optional, Sequence, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmseg_refiner.inference.crops import Box, mask_to_box
from mmseg_refiner.registry import TRANSFORMS

from .crop import _size_wh, crop_results
from .rng import SampleRNG


def _object_box(gt: np.ndarray, rng: np.random.Generator) -> Box:
    """The object's box with random context out to the image border on each side."""
    h, w = gt.shape
    box = mask_to_box(gt > 0)
    if box is None:
        return 0, 0, w, h
    x0, y0, x1, y1 = box
    left = int(rng.integers(0, x0 + 1))  # drawn in this order: left, top, right, bottom
    top = int(rng.integers(0, y0 + 1))
    right = int(rng.integers(x1, w + 1))
    bottom = int(rng.integers(y1, h + 1))
    return left, top, right, bottom


def _mixed(gt: np.ndarray, box: Box) -> bool:
    x0, y0, x1, y1 = box
    patch = gt[y0:y1, x0:x1]
    return bool(patch.any()) and not bool(patch.all())


def _patch_box(gt: np.ndarray, patch: int, rng: np.random.Generator, tries: int = 10) -> Box:
    """A ``patch`` x ``patch`` window around a random boundary pixel (jittered by up to a
    quarter patch) that holds both foreground and background; a random window when the
    mask has no boundary."""
    h, w = gt.shape
    fg = (gt > 0).astype(np.uint8)
    ring = cv2.morphologyEx(fg, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(ring)
    box = None
    for attempt in range(tries if ys.size else 1):
        if ys.size:
            i = int(rng.integers(ys.size))
            jitter = rng.uniform(-0.25, 0.25, 2) * patch if attempt < tries - 1 else (0, 0)
            cx, cy = xs[i] + jitter[0], ys[i] + jitter[1]
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        x0 = int(np.clip(round(cx - patch / 2), 0, w - patch))
        y0 = int(np.clip(round(cy - patch / 2), 0, h - patch))
        box = (x0, y0, x0 + patch, y0 + patch)
        if _mixed(fg, box):
            break
    return box


@TRANSFORMS.register_module()
class CropHRSample(BaseTransform):
    """Crop for the HR recipe, by ``crop_mode``: the object, or a boundary patch.

    ``'object'``: the box of the ground truth with random context out to the image border
    on each side. ``'patch'``: a ``patch_size`` square at full resolution (half the shorter
    image side when the image is smaller) that straddles the boundary. Both are resized to
    ``size`` through :mod:`mmseg_refiner.inference.crops`.

    Required Keys:

    - img (np.uint8 (H, W, 3)), gt_mask (np.uint8 (H, W)), crop_mode (str, optional;
      'object' when absent)

    Modified Keys:

    - img, img_shape, gt_mask, coarse_mask (when present)

    Added Keys:

    - crop_box (tuple[int]), crop_mode (str)

    Args:
        size (int | tuple[int, int]): Output size, int or (h, w). Defaults to 256.
        patch_size (int): Side of a boundary patch in image pixels. Defaults to 256.
        seed (int, optional): See :mod:`~mmseg_refiner.datasets.transforms.rng`.
        fixed_per_sample (bool): Same crop for a sample at every load. Defaults to False.
    """

    def __init__(self, size: Union[int, Sequence[int]] = 256, patch_size: int = 256,
                 seed: Optional[int] = None, fixed_per_sample: bool = False):
        if patch_size <= 0:
            raise ValueError(f'patch_size must be > 0, got {patch_size}')
        self.size_wh = _size_wh(size)
        self.patch_size = patch_size
        self.rng = SampleRNG(seed, fixed_per_sample)

    def transform(self, results: dict) -> dict:
        mode = results.setdefault('crop_mode', 'object')
        gt = results['gt_mask']
        rng = self.rng(results, 'CropHRSample')
        if mode == 'object':
            box = _object_box(gt, rng)
        elif mode == 'patch':
            h, w = gt.shape
            patch = self.patch_size if min(h, w) >= self.patch_size else max(1, min(h, w) // 2)
            box = _patch_box(gt, patch, rng)
        else:
            raise ValueError(f"crop_mode must be 'object' or 'patch', got {mode!r} "
                             f"({results.get('img_path')})")
        return crop_results(results, box, self.size_wh)

    def __repr__(self):
        return (f'{self.__class__.__name__}(size_wh={self.size_wh}, '
                f'patch_size={self.patch_size})')
