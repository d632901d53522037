"""Crop transforms: object crop with random context, boundary patch (HR recipe), flip.

Cropping and resizing go through :mod:`mmseg_refiner.inference.crops` only, so training
sees exactly the geometry inference produces.
"""
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmseg_refiner.inference.crops import crop_resize_image, crop_resize_mask, mask_to_box
from mmseg_refiner.registry import TRANSFORMS

from .rng import SampleRNG

MASK_KEYS = ('gt_mask', 'coarse_mask')


def _size_wh(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``size`` as (w, h) from an int or an (h, w) pair (mmseg's crop_size order)."""
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f'size must be a positive int or (h, w), got {size}')
    return int(size[1]), int(size[0])


def crop_results(results: dict, box: Tuple[int, int, int, int], size_wh: Tuple[int, int],
                 mask_keys: Sequence[str] = MASK_KEYS) -> dict:
    """Crop ``img`` and the masks in ``mask_keys`` to ``box``, resize to ``size_wh``."""
    results['img'] = crop_resize_image(results['img'], box, size_wh)
    for key in mask_keys:
        if results.get(key) is not None:
            results[key] = crop_resize_mask(results[key] > 0, box, size_wh)
    results['crop_box'] = tuple(int(v) for v in box)
    results['img_shape'] = results['img'].shape[:2]
    return results


@TRANSFORMS.register_module()
class CropAroundObject(BaseTransform):
    """Crop around the object's box with random context, resize to ``size`` (aspect not kept).

    The box is that of ``box_key`` (the ground truth by default, so the crop can come
    before :class:`GenerateCoarseMask`). Each side gets a context drawn uniformly from
    ``[0, max_context]`` pixels, or from ``[0, context_ratio * box side]`` when
    ``context_ratio`` is set; ``random=False`` uses the maximum on every side (validation,
    like inference's fixed pad). An empty mask crops the whole image.

    Required Keys:

    - img (np.uint8 (H, W, 3)), ``box_key`` (np.uint8 (H, W))

    Modified Keys:

    - img, img_shape, gt_mask, coarse_mask (when present): resized to ``size``

    Added Keys:

    - crop_box (tuple[int]: x0, y0, x1, y1 in the original image, exclusive ends)

    Args:
        size (int | tuple[int, int]): Output size, int or (h, w). Defaults to 256.
        max_context (int): Maximum context per side in pixels. Defaults to 40.
        context_ratio (float, optional): Maximum context per side as a fraction of the box
            side; overrides ``max_context``. Defaults to None.
        random (bool): Random context; False uses the maximum. Defaults to True.
        box_key (str): Mask that defines the box. Defaults to 'gt_mask'.
        seed (int, optional): See :mod:`~mmseg_refiner.datasets.transforms.rng`.
        fixed_per_sample (bool): Same crop for a sample at every load. Defaults to False.
    """

    def __init__(self, size: Union[int, Sequence[int]] = 256, max_context: int = 40,
                 context_ratio: Optional[float] = None, random: bool = True,
                 box_key: str = 'gt_mask', seed: Optional[int] = None,
                 fixed_per_sample: bool = False):
        if max_context < 0 or (context_ratio is not None and context_ratio < 0):
            raise ValueError(f'context must be >= 0, got max_context={max_context}, '
                             f'context_ratio={context_ratio}')
        self.size_wh = _size_wh(size)
        self.max_context = max_context
        self.context_ratio = context_ratio
        self.random = random
        self.box_key = box_key
        self.rng = SampleRNG(seed, fixed_per_sample)

    def _context_box(self, box, shape, rng) -> Tuple[int, int, int, int]:
        x0, y0, x1, y1 = box
        h, w = shape[:2]
        if self.context_ratio is not None:
            lim = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0]) * self.context_ratio
        else:
            lim = np.full(4, float(self.max_context))
        pads = rng.uniform(0, 1, 4) * lim if self.random else lim
        pads = np.round(pads).astype(int)
        return (max(0, x0 - pads[0]), max(0,
                                          y0 - pads[1]), min(w,
                                                             x1 + pads[2]), min(h, y1 + pads[3]))

    def transform(self, results: dict) -> dict:
        shape = results['img'].shape
        box = mask_to_box(results[self.box_key] > 0)
        if box is None:
            box = (0, 0, shape[1], shape[0])
        else:
            box = self._context_box(box, shape, self.rng(results, 'CropAroundObject'))
        return crop_results(results, box, self.size_wh)

    def __repr__(self):
        return (f'{self.__class__.__name__}(size_wh={self.size_wh}, '
                f'max_context={self.max_context}, context_ratio={self.context_ratio}, '
                f'random={self.random})')


@TRANSFORMS.register_module()
class RefinerRandomFlip(BaseTransform):
    """Flip the image and all refiner masks together (mmcv's RandomFlip only flips
    ``gt_seg_map``).

    Required Keys:

    - img (np.ndarray (H, W, 3)); gt_mask, coarse_mask (optional)

    Modified Keys:

    - img, gt_mask, coarse_mask

    Added Keys:

    - flip (bool), flip_direction (str | None)

    Args:
        prob (float): Flip probability. Defaults to 0.5.
        direction (str): 'horizontal' or 'vertical'. Defaults to 'horizontal'.
        seed (int, optional): See :mod:`~mmseg_refiner.datasets.transforms.rng`.
    """

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal',
                 seed: Optional[int] = None, fixed_per_sample: bool = False):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.prob = prob
        self.direction = direction
        self.rng = SampleRNG(seed, fixed_per_sample)

    def transform(self, results: dict) -> dict:
        flip = bool(self.rng(results, 'RefinerRandomFlip').random() < self.prob)
        if flip:
            results['img'] = mmcv.imflip(results['img'], self.direction)
            for key in MASK_KEYS:
                if results.get(key) is not None:
                    results[key] = np.ascontiguousarray(mmcv.imflip(results[key], self.direction))
        results['flip'] = flip
        results['flip_direction'] = self.direction if flip else None
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(prob={self.prob}, direction={self.direction!r})'


@TRANSFORMS.register_module()
class RandomErrorWindow(BaseTransform):
    """Cut a ``size`` x ``size`` window, centred near where the coarse mask is wrong.

    Placed after :class:`CropAroundObject` and :class:`GenerateCoarseMask`, it trains the
    refiner at the object-crop scale on a fraction of the pixels (cheaper steps), while the
    whole crop can still be used at inference (the U-Net is fully convolutional). With
    probability ``error_prob`` the centre is a pixel where ``gt_mask != coarse_mask`` (or on
    the GT boundary when they agree); otherwise it is uniform.

    Required Keys:
    - img, gt_mask, coarse_mask

    Modified Keys:
    - img, gt_mask, coarse_mask, img_shape

    Args:
        size (int): Window side (px). Defaults to 128.
        error_prob (float): Probability of an error-centred window. Defaults to 0.8.
        seed (int, optional): See :mod:`~mmseg_refiner.datasets.transforms.rng`.
        fixed_per_sample (bool): Same window at every load. Defaults to False.
    """

    def __init__(self, size: int = 128, error_prob: float = 0.8, seed: Optional[int] = None,
                 fixed_per_sample: bool = False):
        if size <= 0 or not 0 <= error_prob <= 1:
            raise ValueError(f'need size > 0 and 0 <= error_prob <= 1, got {size}, {error_prob}')
        self.size, self.error_prob = int(size), float(error_prob)
        self.rng = SampleRNG(seed, fixed_per_sample)

    def _centre(self, results: dict, rng: np.random.Generator) -> Tuple[int, int]:
        h, w = results['img'].shape[:2]
        gt, coarse = results['gt_mask'] > 0, results['coarse_mask'] > 0
        target = gt != coarse
        if not target.any():
            target = gt ^ _erode(gt)
        ys, xs = np.nonzero(target)
        if len(ys) and rng.random() < self.error_prob:
            i = rng.integers(len(ys))
            return int(ys[i]), int(xs[i])
        return int(rng.integers(h)), int(rng.integers(w))

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        if h <= self.size and w <= self.size:
            return results
        cy, cx = self._centre(results, self.rng(results, 'RandomErrorWindow'))
        y0 = int(np.clip(cy - self.size // 2, 0, max(0, h - self.size)))
        x0 = int(np.clip(cx - self.size // 2, 0, max(0, w - self.size)))
        y1, x1 = min(h, y0 + self.size), min(w, x0 + self.size)
        for key in ('img', ) + MASK_KEYS:
            results[key] = np.ascontiguousarray(results[key][y0:y1, x0:x1])
        results['img_shape'] = results['img'].shape[:2]
        return results


def _erode(mask: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
