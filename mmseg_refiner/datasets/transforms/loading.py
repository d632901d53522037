"""Loading transforms: image, ground-truth mask and optional pre-computed coarse masks."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg_refiner.registry import TRANSFORMS
from mmseg_refiner.utils.io import InputError, imread_checked, maskread_checked
from .rng import SampleRNG


def decode_coco_segmentation(segm, height: int, width: int) -> np.ndarray:
    """Decode a COCO/LVIS ``segmentation`` (polygons, RLE or uncompressed RLE).

    Returns:
        np.ndarray: (height, width) uint8 0/1 mask.
    """
    from pycocotools import mask as mask_utils
    if isinstance(segm, list):  # polygons: one object may have several parts
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm, dict) and isinstance(segm.get('counts'), list):
        rle = mask_utils.frPyObjects(segm, height, width)
    elif isinstance(segm, dict):
        rle = segm
    else:
        raise InputError(f'unsupported COCO segmentation of type {type(segm).__name__}')
    return mask_utils.decode(rle).astype(np.uint8)


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

    def __init__(self, key: str = 'gt_mask', path_key: str = 'mask_path',
                 check_size: bool = True):
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
    """

    def __init__(self, load_coarse: bool = True, expand_prob: float = 0.5,
                 seed: Optional[int] = None, fixed_per_sample: bool = False):
        if not 0 <= expand_prob <= 1:
            raise ValueError(f'expand_prob must be in [0, 1], got {expand_prob}')
        self.load_coarse = load_coarse
        self.expand_prob = expand_prob
        self.rng = SampleRNG(seed, fixed_per_sample)

    def _load_gt(self, results: dict, img_shape) -> np.ndarray:
        img_name = results['img_path']
        if results.get('mask_path'):
            mask = maskread_checked(results['mask_path'], name='mask').astype(np.uint8)
            _check_same_size(mask, img_shape, results['mask_path'], img_name)
            return mask
        if 'mask_ann' in results:
            h, w = results.get('height', img_shape[0]), results.get('width', img_shape[1])
            mask = decode_coco_segmentation(results['mask_ann'], h, w)
            _check_same_size(mask, img_shape, f'annotation of {img_name} ({w}x{h})', img_name)
            return mask
        raise KeyError(f'sample {img_name} has neither mask_path nor mask_ann')

    def _load_coarse(self, results: dict, img_shape) -> None:
        use_expanded = bool(results.get('expanded_path')) and \
            self.rng(results, 'LoadImageAndMask').random() < self.expand_prob
        path, mode = ((results['expanded_path'], 'expanded') if use_expanded else
                      (results.get('coarse_path'), 'offline'))
        if path:
            mask = maskread_checked(path, name='coarse mask').astype(np.uint8)
            _check_same_size(mask, img_shape, path, results['img_path'])
            results['coarse_mask'], results['coarse_mode'] = mask, mode

    def transform(self, results: dict) -> dict:
        img = imread_checked(results['img_path'])
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        results['gt_mask'] = self._load_gt(results, img.shape)
        if self.load_coarse:
            self._load_coarse(results, img.shape)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(load_coarse={self.load_coarse}, '
                f'expand_prob={self.expand_prob})')
