"""Binary-mask primitives shared by evaluation, data loading and the CLI (the one copy).

* :func:`mask_iou` / :func:`intersection_union`: IoU of two (H, W) masks, and the raw counts
  that pooled (dataset-level) IoU sums.
* :func:`rle_encode`: compressed COCO RLE of a mask, JSON-ready.
* :func:`decode_segmentation`: a COCO / LVIS ``segmentation`` (polygons, RLE, uncompressed RLE)
  as an (H, W) bool mask.
* :func:`check_segmentation`: refuse a ``segmentation`` that pycocotools would decode wrongly
  (from uninitialised memory), crash on, or run out of memory on.

Masks are (H, W) arrays where non-zero is foreground (bool, 0/1, 0/255, float).
"""
from typing import List, Optional, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from mmseg_refiner.utils.io import InputError, is_int, is_number


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

    Polygons are decoded as pycocotools does (use :func:`check_segmentation` first to refuse
    empty, odd or far-away ones); RLE is checked as there.

    Args:
        segm (list | dict): Polygons (one object may have several), compressed RLE
            (``counts`` str/bytes) or uncompressed RLE (``counts`` list).
        height (int): Image height.
        width (int): Image width.
        where (str): Names the annotation in error messages. Defaults to 'segmentation'.
        size_from (str, optional): Where (height, width) came from, for the size error,
            e.g. ``'the annotation file'``.

    Raises:
        InputError: ``segm`` is neither, or its RLE size differs from (height, width), or its
            runs do not add up to height * width.
    """
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm, dict) and 'counts' in segm and 'size' in segm:
        _check_rle(segm, height, width, where, size_from)
        rle = mask_utils.frPyObjects(segm, height, width) \
            if isinstance(segm['counts'], list) else segm
    else:
        raise InputError(f'{where}: "segmentation" is neither RLE nor polygons '
                         f'(got {type(segm).__name__})')
    return mask_utils.decode(rle).astype(bool)


def _rle_string_counts(counts, where: str) -> List[int]:
    """The run lengths of a compressed COCO RLE string, read as pycocotools' ``rleFrString``
    reads them (6 bits a character from '0', 5 of value and a continuation bit; runs from the
    fourth on are stored as the difference to the run two before), but refusing what it reads
    without a check: characters outside '0'..'o', a cut last run and negative runs."""
    if isinstance(counts, str):
        try:
            counts = counts.encode('ascii')
        except UnicodeEncodeError:
            raise InputError(f'{where}: RLE "counts" is not a COCO RLE string (non-ASCII '
                             'characters)') from None
    runs, value, k = [], 0, 0
    for pos, char in enumerate(counts):
        char -= 48
        if not 0 <= char < 64:
            raise InputError(f'{where}: RLE "counts" is not a COCO RLE string (character '
                             f'{chr(char + 48)!r} at {pos})')
        value |= (char & 0x1f) << (5 * k)
        k += 1
        if char & 0x20:
            continue
        if char & 0x10:
            value -= 1 << (5 * k)
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise InputError(f'{where}: RLE "counts" decodes to a negative run length')
        runs.append(value)
        value = k = 0
    if k:
        raise InputError(f'{where}: RLE "counts" string is cut off (its last run is incomplete)')
    return runs


def check_segmentation(segm, height: int, width: int, where: str = 'segmentation',
                       size_from: Optional[str] = None) -> None:
    """Refuse a COCO / LVIS ``segmentation`` that is not a valid mask of a height x width image.

    pycocotools checks little: an RLE whose runs do not add up to height * width is decoded
    from uninitialised memory (or refused with a message naming nothing), an empty or odd
    polygon raises IndexError or "input type is not supported", and a NaN or far-away
    polygon vertex makes it allocate without bound. Rules:

    * polygons: a non-empty list of parts, each a list of an even number (at least 6, three
      x,y points) of finite numbers within one image size of the image (x in [-width,
      2 * width], y in [-height, 2 * height]);
    * RLE: ``size`` is [height, width]; ``counts`` is a list of non-negative integers
      (uncompressed) or a COCO RLE string (compressed); the runs add up to height * width.

    Args:
        segm (list | dict): The ``segmentation``.
        height (int): Image height.
        width (int): Image width.
        where (str): Names the annotation in error messages. Defaults to 'segmentation'.
        size_from (str, optional): Where (height, width) came from, for the size error,
            e.g. ``'the annotation file'``.

    Raises:
        InputError: The first problem found, after ``where``.
    """
    if isinstance(segm, list):
        _check_polygons(segm, height, width, where)
    elif isinstance(segm, dict) and 'counts' in segm and 'size' in segm:
        _check_rle(segm, height, width, where, size_from)
    else:
        raise InputError(f'{where}: "segmentation" is neither RLE nor polygons '
                         f'(got {type(segm).__name__})')


def _check_polygons(segm: list, height: int, width: int, where: str) -> None:
    if not segm:
        raise InputError(f'{where}: "segmentation" is an empty list (no polygon)')
    for j, poly in enumerate(segm):
        if not isinstance(poly, list):
            raise InputError(f'{where}: polygon {j} is a {type(poly).__name__}, not a list of '
                             'x,y coordinates')
        if len(poly) < 6 or len(poly) % 2:
            raise InputError(f'{where}: polygon {j} has {len(poly)} coordinates; a polygon needs '
                             'an even number, at least 6 (three x,y points)')
        for c, value in enumerate(poly):
            if not is_number(value):
                raise InputError(f'{where}: polygon {j} coordinate {c} is {value!r}, not a '
                                 'finite number')
            size = width if c % 2 == 0 else height
            if not -size <= value <= 2 * size:
                raise InputError(f'{where}: polygon {j} {"xy"[c % 2]} coordinate {value} is '
                                 f'more than an image size outside the {width}x{height} (WxH) '
                                 'image')


def _check_rle(segm: dict, height: int, width: int, where: str, size_from: Optional[str]) -> None:
    size = segm['size']
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(map(is_int, size))):
        raise InputError(f'{where}: RLE "size" must be [height, width], got {size!r}')
    if list(size) != [height, width]:
        source = f' in {size_from}' if size_from else ''
        raise InputError(f'{where}: mask size {list(size)} (HxW) differs from the '
                         f'image size [{height}, {width}]{source}')
    counts = segm['counts']
    if isinstance(counts, list):
        for c, run in enumerate(counts):
            if not is_int(run) or run < 0:
                raise InputError(f'{where}: uncompressed RLE "counts" must be non-negative '
                                 f'integers, got {run!r} at {c}')
        kind = 'uncompressed RLE'
    elif isinstance(counts, (str, bytes)):
        counts, kind = _rle_string_counts(counts, where), 'RLE'
    else:
        raise InputError(f'{where}: RLE "counts" must be a string or a list of integers, got '
                         f'{type(counts).__name__}')
    total = sum(counts)
    if total != height * width:
        raise InputError(f'{where}: {kind} counts sum to {total} but the size is '
                         f'{height}x{width} (HxW, {height * width} pixels)')
