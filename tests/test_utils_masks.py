"""mmseg_refiner.utils.masks: the one copy of mask IoU, RLE encode and COCO decode."""
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmseg_refiner.utils.io import InputError
from mmseg_refiner.utils.masks import decode_segmentation, intersection_union, mask_iou, rle_encode


def _square(h=10, w=12, x0=2, y0=3, x1=8, y1=9):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_iou_and_counts():
    a, b = _square(), _square(x0=4)
    assert intersection_union(a, b) == (24, 36)
    assert mask_iou(a, b) == pytest.approx(24 / 36)
    assert mask_iou(a.astype(np.uint8) * 255, a.astype(np.float32)) == 1.0
    empty = np.zeros_like(a)
    assert mask_iou(empty, empty) == 1.0 and mask_iou(a, empty) == 0.0
    with pytest.raises(ValueError, match='same shape'):
        mask_iou(a, a[:, :5])
    with pytest.raises(ValueError, match='2-D'):
        mask_iou(a[None], a[None])


def test_rle_round_trip_json_ready():
    a = _square()
    rle = rle_encode(a)
    assert isinstance(rle['counts'], str) and rle['size'] == [10, 12]
    rle = json.loads(json.dumps(rle))
    assert np.array_equal(decode_segmentation(rle, 10, 12), a)
    assert np.array_equal(mask_utils.decode(rle).astype(bool), a)


def test_decode_polygons_and_uncompressed_rle():
    poly = [[2, 3, 8, 3, 8, 9, 2, 9]]
    assert decode_segmentation(poly, 10, 12).sum() > 0
    two = decode_segmentation(poly + [[9, 0, 11, 0, 11, 2, 9, 2]], 10, 12)
    assert two.sum() > decode_segmentation(poly, 10, 12).sum()  # parts are merged
    a = _square()
    counts, prev, run = [], False, 0
    for v in a.flatten(order='F'):  # uncompressed RLE: column-major runs, starting with 0s
        if v != prev:
            counts.append(run)
            prev, run = v, 0
        run += 1
    counts.append(run)
    assert np.array_equal(decode_segmentation(dict(size=[10, 12], counts=counts), 10, 12), a)


def test_decode_errors_name_the_annotation():
    with pytest.raises(InputError, match='result 3: mask size \\[10, 12\\]'):
        decode_segmentation(rle_encode(_square()), 20, 12, where='result 3')
    with pytest.raises(InputError, match='neither RLE nor polygons'):
        decode_segmentation('abc', 10, 12)
