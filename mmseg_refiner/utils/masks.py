"""Binary-mask primitives shared by evaluation, data loading and the CLI (the one copy).

* :func:`mask_iou` / :func:`intersection_union`: IoU of two (H, W) masks, and the raw counts
  that pooled (dataset-level) IoU sums.
* :func:`rle_encode`: compressed COCO RLE of a mask, JSON-ready.
* :func:`decode_segmentation`: a COCO / LVIS ``segmentation`` (polygons, RLE, uncompressed RLE)
  as an (H, W) bool mask.

Masks are (H, W) arrays where non-zero is foreground (bool, 0/1, 0/255, float).
"""
from typing import Optional, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from mmseg_refiner.utils.io import InputError


def _as_pair(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Two (H, W) masks of one shape as bool arrays (ValueError naming the shapes)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f'masks must be 2-D (H, W), got shapes {a.shape} and {b.shape}')
    if a.shape != b.shape:
        raise ValueError(f'masks must have the same shape, got {a.shape} and {b.shape}')
    return a.astype(bool, copy=False), b.astype(bool, copy=False)


def intersection_union(a: np.ndarray, b: np.ndarray) -> Tuple[int, int]:
    """``(|a & b|, |a | b|)`` of two (H, W) masks, in pixels."""
    a, b = _as_pair(a, b)
    return int(np.count_nonzero(a & b)), int(np.count_nonzero(a | b))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union ``|a & b| / |a | b|`` of two (H, W) masks.

    Returns:
        float: IoU in [0, 1]; 1.0 when both masks are empty, 0.0 when exactly one is.
    """
    inter, union = intersection_union(a, b)
    return 1.0 if union == 0 else inter / union


def rle_encode(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of an (H, W) mask with ``counts`` as str (JSON-ready)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'mask must be 2-D (H, W), got shape {mask.shape}')
    rle = mask_utils.encode(np.asfortranarray(mask.astype(bool).astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))


def decode_segmentation(segm, height: int, width: int, where: str = 'segmentation',
                        size_from: Optional[str] = None) -> np.ndarray:
    """(height, width) bool mask of a COCO / LVIS ``segmentation``.

    Args:
        segm (list | dict): Polygons (one object may have several), compressed RLE
            (``counts`` str/bytes) or uncompressed RLE (``counts`` list).
        height (int): Image height.
        width (int): Image width.
        where (str): Names the annotation in error messages. Defaults to 'segmentation'.
        size_from (str, optional): Where (height, width) came from, for the size error,
            e.g. ``'the annotation file'``.

    Raises:
        InputError: ``segm`` is neither, or its RLE size differs from (height, width).
    """
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm, dict) and 'counts' in segm and 'size' in segm:
        if list(segm['size']) != [height, width]:
            source = f' in {size_from}' if size_from else ''
            raise InputError(f'{where}: mask size {list(segm["size"])} (HxW) differs from the '
                             f'image size [{height}, {width}]{source}')
        rle = mask_utils.frPyObjects(segm, height, width) \
            if isinstance(segm['counts'], list) else segm
    else:
        raise InputError(f'{where}: "segmentation" is neither RLE nor polygons '
                         f'(got {type(segm).__name__})')
    return mask_utils.decode(rle).astype(bool)
