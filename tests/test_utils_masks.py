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


def _uncompressed(mask):
    """Uncompressed RLE counts of a mask (column-major runs, starting with 0s)."""
    flat = np.asarray(mask, bool).flatten(order='F')
    edges = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if flat[0] else counts


def test_check_segmentation_accepts_valid_ones_and_reads_rle_as_pycocotools():
    from mmseg_refiner.utils.masks import _rle_string_counts, check_segmentation
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = rng.random((9, 13)) < rng.random()
        counts = _uncompressed(mask)
        rle = rle_encode(mask)
        assert _rle_string_counts(rle['counts'], '') == counts  # runs > 2: stored as deltas
        assert _rle_string_counts(rle['counts'].encode(), '') == counts
        check_segmentation(rle, 9, 13)
        check_segmentation(dict(size=[9, 13], counts=counts), 9, 13)
    big = [0, 70000, 3, 2**20, 5] + [1] * 10
    big.append(2000 * 1000 - sum(big))
    packed = mask_utils.frPyObjects(dict(size=[2000, 1000], counts=big), 2000, 1000)['counts']
    assert _rle_string_counts(packed, '') == big  # several characters a run, negative deltas
    # polygons at and a little beyond the border, several parts
    check_segmentation([[0, 0, 12, 0, 12, 10.0], [-3, -2, 20, 5, 4, 15]], 10, 12)


@pytest.mark.parametrize('segm, message', [
    ([], 'empty list'),
    ([[1, 1, 5, 1]], 'polygon 0 has 4 coordinates'),
    ([[1, 1, 5, 1, 5, 5, 1]], 'polygon 0 has 7 coordinates'),
    ([[1, 1, 5, 1, 5, 5], (1, 1, 5, 1, 5, 5)], 'polygon 1 is a tuple'),
    ([[1, 1, 5, 1, 5, float('inf')]], 'coordinate 5 is inf'),
    ([[1, 1, 5, 1, 5, '5']], "coordinate 5 is '5'"),
    ([[1, 1, 5, 1, 5, True]], 'coordinate 5 is True'),
    ([[1, 1, 25, 1, 5, 5]], 'polygon 0 x coordinate 25 is more than an image size outside'),
    ([[1, -11, 5, 1, 5, 5]], 'polygon 0 y coordinate -11 is more than'),
    (dict(size=[10, 12], counts=[0, 100, 1000]), 'uncompressed RLE counts sum to 1100 but the '
     'size is 10x12 (HxW, 120 pixels)'),
    (dict(size=[10, 12], counts=[60, 60.0]), 'got 60.0 at 1'),
    (dict(size=[10, 12], counts=''), 'RLE counts sum to 0'),
    (dict(size=[10, 12], counts='!!!notrle~~~'), "character '!' at 0"),
    (dict(size=[10, 12], counts='0P'), 'cut off'),
    (dict(size=[10, 12], counts='é'), 'non-ASCII'),
    (dict(size=[10, 12], counts=None), 'must be a string or a list of integers'),
    (dict(size=[10], counts='1'), '"size" must be [height, width]'),
    (dict(size=[10, 13], counts=[130]), 'mask size [10, 13] (HxW) differs from the image size '
     '[10, 12] in the annotation file'),
])
def test_check_segmentation_refuses_what_pycocotools_gets_wrong(segm, message):
    from mmseg_refiner.utils.masks import check_segmentation
    with pytest.raises(InputError) as exc:
        check_segmentation(segm, 10, 12, where='r.json: result 3', size_from='the annotation file')
    assert str(exc.value).startswith('r.json: result 3: ') and message in str(exc.value)


def test_rle_string_with_a_negative_run_is_refused():
    from mmseg_refiner.utils.masks import _rle_string_counts
    assert _rle_string_counts('5555', '') == [5, 5, 5, 10]  # the 4th: 5 more than the 2nd
    assert _rle_string_counts('5550', '') == [5, 5, 5, 5]
    # 'J' (26) is -6 in one character: 5 - 6 = -1 (pycocotools reads it as 4294967295)
    with pytest.raises(InputError, match='w: RLE "counts" decodes to a negative run length'):
        _rle_string_counts('555J', 'w')


def test_decode_refuses_an_rle_that_does_not_cover_the_image():
    # pycocotools would fill the rest of the mask from uninitialised memory
    with pytest.raises(InputError, match='counts sum to 1100 but the size is 512x512'):
        decode_segmentation(dict(size=[512, 512], counts=[0, 100, 1000]), 512, 512)
    with pytest.raises(InputError, match='counts sum to 130'):
        decode_segmentation(rle_encode(np.ones((10, 13), bool)) | dict(size=[10, 12]), 10, 12)
