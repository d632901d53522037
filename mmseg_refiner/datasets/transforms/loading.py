"""Loading transforms: image, ground-truth mask and optional pre-computed coarse masks."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg_refiner.registry import TRANSFORMS
from mmseg_refiner.utils.io import InputError, maskread_checked
from mmseg_refiner.utils.masks import decode_segmentation

from ..cache import read_image, read_mask, resize_mask
from .rng import SampleRNG


def _scale_like(mask: np.ndarray, img_shape) -> np.ndarray:
    """A decoded annotation scaled to the (down-scaled) image size when it is larger."""
    h, w = img_shape[:2]
    if mask.shape[0] <= h and mask.shape[1] <= w:
        return mask
    return resize_mask(mask, (w, h))


def _check_same_size(mask: np.ndarray, img_shape, mask_name: str, img_name: str) -> None:
    if mask.shape[:2] != tuple(img_shape[:2]):
        raise InputError(f'size mismatch: {mask_name} is {mask.shape[1]}x{mask.shape[0]} '
                         f'(WxH) but image {img_name} is {img_shape[1]}x{img_shape[0]}')


@TRANSFORMS.register_module()
class LoadMaskFromFile(BaseTransform):
    """Load a binary mask file (0/1 or 0/255 PNG) and check it matches the image size.

    Required Keys:

    - ``<path_key>`` (str), and ``img`` (np.uint8 (H, W, 3)) when ``check_size``

    Added Keys:

    - ``<key>`` (np.uint8 (H, W), 0/1)

    Args:
        key (str): Where to store the mask. Defaults to 'gt_mask'.
        path_key (str): Key of the file path. Defaults to 'mask_path'.
        check_size (bool): Raise when the mask and ``img`` differ in size. Defaults to True.
    """

    def __init__(self, key: str = 'gt_mask', path_key: str = 'mask_path', check_size: bool = True):
        self.key = key
        self.path_key = path_key
        self.check_size = check_size

    def transform(self, results: dict) -> dict:
        path = results[self.path_key]
        mask = maskread_checked(path, name=self.key).astype(np.uint8)
        if self.check_size and 'img' in results:
            _check_same_size(mask, results['img'].shape, path, results.get('img_path', 'img'))
        results[self.key] = mask
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(key={self.key!r}, path_key={self.path_key!r})'


@TRANSFORMS.register_module()
class LoadImageAndMask(BaseTransform):
    """Load the image, its ground-truth mask and, when listed, offline coarse masks.

    The ground truth comes from ``mask_path`` (a file) or ``mask_ann`` (a COCO/LVIS
    segmentation, decoded at ``height`` x ``width``). Offline coarse masks (``coarse_path``,
    ``expanded_path``, see ``tools/make_coarse.py``) are loaded into ``coarse_mask``: the
    expanded one with probability ``expand_prob`` (when listed), else ``coarse_path`` (when
    listed; otherwise none, and :class:`GenerateCoarseMask` makes one online). Sizes are
    checked here, lazily, and a mismatch raises :class:`InputError` naming both files.

    Required Keys:

    - img_path (str)
    - mask_path (str) or mask_ann (list | dict) with height, width (int)
    - coarse_path (str, optional), expanded_path (str, optional)

    Added Keys:

    - img (np.uint8 (H, W, 3), BGR), img_shape, ori_shape (tuple)
    - gt_mask (np.uint8 (H, W), 0/1)
    - coarse_mask (np.uint8 (H, W), 0/1; only when an offline coarse mask was chosen)
    - coarse_mode (str: 'offline' / 'expanded'; with coarse_mask)

    Args:
        load_coarse (bool): Load offline coarse masks when listed. Defaults to True.
        expand_prob (float): Probability of taking ``expanded_path`` when listed.
            Defaults to 0.5 (the reference HR recipe).
        seed (int, optional): See :mod:`~mmseg_refiner.datasets.transforms.rng`.
            Defaults to None.
        fixed_per_sample (bool): Same choice for a sample at every load. Defaults to False.
        max_side (int, optional): Down-scale the image and its mask files so the long side
            is at most this (area interpolation; masks thresholded at 0.5). Sizes are then
            those of the scaled arrays. Defaults to None (full resolution).
        cache_mb (int): Budget of this process's cache of decoded images and mask files
            (:mod:`~mmseg_refiner.datasets.cache`; one per data-loader worker). Defaults to
            0 (no cache).
    """

    def __init__(self, load_coarse: bool = True, expand_prob: float = 0.5,
                 seed: Optional[int] = None, fixed_per_sample: bool = False,
                 max_side: Optional[int] = None, cache_mb: int = 0):
        if not 0 <= expand_prob <= 1:
            raise ValueError(f'expand_prob must be in [0, 1], got {expand_prob}')
        if (max_side is not None and max_side <= 0) or cache_mb < 0:
            raise ValueError(f'need max_side > 0 (or None) and cache_mb >= 0, got '
                             f'max_side={max_side}, cache_mb={cache_mb}')
        self.load_coarse = load_coarse
        self.expand_prob = expand_prob
        self.max_side = max_side
        self.cache_bytes = int(cache_mb) << 20
        self.rng = SampleRNG(seed, fixed_per_sample)

    def _read_mask(self, path: str) -> np.ndarray:
        return read_mask(path, self.max_side, self.cache_bytes)

    def _load_gt(self, results: dict, img_shape) -> np.ndarray:
        img_name = results['img_path']
        if results.get('mask_path'):
            mask = self._read_mask(results['mask_path'])
            _check_same_size(mask, img_shape, results['mask_path'], img_name)
            return mask
        if 'mask_ann' in results:
            h, w = results.get('height', img_shape[0]), results.get('width', img_shape[1])
            mask = decode_segmentation(results['mask_ann'], h, w,
                                       where=f'annotation of {img_name}').astype(np.uint8)
            if self.max_side:
                mask = _scale_like(mask, img_shape)
            _check_same_size(mask, img_shape, f'annotation of {img_name} ({w}x{h})', img_name)
            return mask
        raise KeyError(f'sample {img_name} has neither mask_path nor mask_ann')

    def _load_coarse(self, results: dict, img_shape) -> None:
        use_expanded = bool(results.get('expanded_path')) and \
            self.rng(results, 'LoadImageAndMask').random() < self.expand_prob
        path, mode = ((results['expanded_path'], 'expanded') if use_expanded else
                      (results.get('coarse_path'), 'offline'))
        if path:
            mask = self._read_mask(path)
            _check_same_size(mask, img_shape, path, results['img_path'])
            results['coarse_mask'], results['coarse_mode'] = mask, mode

    def transform(self, results: dict) -> dict:
        img = read_image(results['img_path'], self.max_side, self.cache_bytes)
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        results['gt_mask'] = self._load_gt(results, img.shape)
        if self.load_coarse:
            self._load_coarse(results, img.shape)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(load_coarse={self.load_coarse}, '
                f'expand_prob={self.expand_prob}, max_side={self.max_side})')
