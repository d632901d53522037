"""Tests of mmseg_refiner.evaluation.functional against hand-computed values and brute force."""
import copy
import math

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmseg_refiner.evaluation.functional import (boundary_ap, boundary_dilation, boundary_iou,
                                                 mask_iou, mask_to_boundary, mba, mba_band,
                                                 mba_radii)


def _square(size=40, top=10, left=10, side=10):
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


# ---------------------------------------------------------------- hand-computed small cases
def test_perfect_prediction_scores_one():
    gt = _square()
    assert mask_iou(gt, gt) == 1.0
    assert mba(gt, gt) == 1.0
    assert boundary_iou(gt, gt) == 1.0


def test_empty_masks_have_defined_scores():
    empty, gt = np.zeros((40, 40), bool), _square()
    for fn in (mask_iou, mba, boundary_iou):
        assert fn(empty, empty) == 1.0
    assert mask_iou(empty, gt) == 0.0
    assert boundary_iou(empty, gt) == 0.0
    assert boundary_iou(gt, empty) == 0.0
    # A GT without boundary (empty or full) has an empty mBA band.
    assert mba(gt, empty) == 0.0
    assert mba(np.ones_like(gt), np.ones_like(gt)) == 1.0
    assert mba(gt, np.ones_like(gt)) == 0.0


def test_shifted_square_hand_computed():
    """10x10 square shifted right by 1 px in a 40x40 image (boundary width d = 1)."""
    gt, pred = _square(), _square(left=11)
    assert mask_iou(pred, gt) == pytest.approx(90 / 110)
    # Rings of 36 px each; they share 9 px on the top row and 9 on the bottom row.
    assert boundary_iou(pred, gt) == pytest.approx(18 / 54)
    # All radii are 1 (3x3 cross). GT band: 40 px added by dilation + 36 px ring = 76;
    # the 20 wrong pixels (columns 10 and 20, rows 10..19) all lie in it.
    assert mba_radii(40, 40) == [1] * 5
    assert np.count_nonzero(mba_band(gt, 1)) == 76
    assert mba(pred, gt) == pytest.approx(56 / 76)


def test_shift_by_two_iou():
    gt, pred = _square(), _square(left=12)
    assert mask_iou(pred, gt) == pytest.approx(80 / 120)
    assert mask_iou(pred, gt) == mask_iou(gt, pred)


def test_one_pixel_boundary():
    """A 1-px-wide mask is all boundary; a 3x3 square's band is its 8-px ring."""
    line = np.zeros((40, 40), bool)
    line[20, 5:30] = True
    assert np.array_equal(mask_to_boundary(line), line)
    square = _square(side=3)
    ring = square.copy()
    ring[11, 11] = False
    assert np.array_equal(mask_to_boundary(square), ring)
    # A mask touching the image border has a boundary along the border.
    full = np.ones((40, 40), bool)
    assert np.count_nonzero(mask_to_boundary(full)) == 40 * 40 - 38 * 38


def test_mba_radii_formula():
    assert mba_radii(600, 900) == [1, 1, 2, 3, 4]  # max_r = 5
    assert mba_radii(3000, 3000) == [1, 4, 8, 12, 16]  # max_r = 20
    assert mba_radii(10, 10) == [1] * 5  # max_r < 1 truncates towards zero


def test_inputs_are_validated():
    with pytest.raises(ValueError, match='same shape'):
        mask_iou(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match='2-D'):
        mba(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match='dilation_ratio'):
        boundary_iou(np.zeros((4, 4)), np.zeros((4, 4)), dilation_ratio=0)


def test_non_bool_inputs_are_binarized():
    gt = _square()
    assert mask_iou(gt.astype(np.uint8) * 255, gt.astype(np.float32)) == 1.0


# ---------------------------------------------------------------- brute-force references
def _ellipse_offsets(radius):
    """Offsets of OpenCV's MORPH_ELLIPSE kernel: row dy spans |dx| <= round(sqrt(r^2-dy^2))."""
    offsets = []
    for dy in range(-radius, radius + 1):
        half = int(math.floor(math.sqrt(radius * radius - dy * dy) + 0.5))
        offsets += [(dy, dx) for dx in range(-half, half + 1)]
    return offsets


def _brute_mba(pred, gt):
    """CascadePSP's mBA, pixel by pixel: band = neighbourhood holds both classes."""
    h, w = gt.shape
    max_r = (h + w) / 300
    accs = []
    for i in range(5):
        radius = 1 + int((max_r - 1) / 5 * i)
        offsets = _ellipse_offsets(radius)
        n_band = n_good = 0
        for y in range(h):
            for x in range(w):
                values = {
                    gt[y + dy, x + dx]
                    for dy, dx in offsets if 0 <= y + dy < h and 0 <= x + dx < w
                }
                if len(values) == 2:
                    n_band += 1
                    n_good += pred[y, x] == gt[y, x]
        accs.append(n_good / n_band)
    return sum(accs) / 5


def _blob_pair(h, w, seed):
    rng = np.random.default_rng(seed)
    gt = np.zeros((h, w), np.uint8)
    cv2.ellipse(gt, (w // 2, h // 2), (w // 3, h // 3), 20, 0, 360, 1, -1)
    cv2.circle(gt, (w // 5, h // 4), max(2, h // 6), 1, -1)
    flips = (rng.random((h, w)) < 0.3) & (mba_band(gt, 2))
    pred = np.where(flips, 1 - gt, gt).astype(np.uint8)
    return pred.astype(bool), gt.astype(bool)


def test_ellipse_offsets_match_opencv():
    for radius in (1, 2, 3, 5):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mine = np.zeros_like(kernel)
        for dy, dx in _ellipse_offsets(radius):
            mine[dy + radius, dx + radius] = 1
        assert np.array_equal(mine, kernel)


@pytest.mark.parametrize('shape', [(40, 900), (37, 45)])
def test_mba_matches_brute_force(shape):
    pred, gt = _blob_pair(*shape, seed=0)
    assert len(set(mba_radii(*shape))) == (2 if shape[1] == 900 else 1)
    assert mba(pred, gt) == pytest.approx(_brute_mba(pred, gt), abs=1e-12)


def test_boundary_equals_iterated_erosion_of_the_api():
    """Our single (2d+1)^2 erosion equals boundary-iou-api's d-fold 3x3 erosion."""
    _, gt = _blob_pair(120, 160, seed=1)
    d = max(1, int(round(0.02 * math.hypot(120, 160))))
    padded = cv2.copyMakeBorder(gt.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1:121, 1:161]
    assert d == 4
    assert np.array_equal(mask_to_boundary(gt), gt.astype(np.uint8) - eroded > 0)


# ---------------------------------------------------------------- boundary AP
def _coco_from_masks(gt_masks, size=64):
    """In-memory COCO ground truth of (image_id, category_id, mask) triples."""
    anns = []
    for i, (img_id, cat_id, mask) in enumerate(gt_masks):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode()
        anns.append(
            dict(id=i + 1, image_id=img_id, category_id=cat_id, segmentation=rle,
                 area=float(mask.sum()), bbox=list(mask_utils.toBbox(rle)), iscrowd=0))
    coco = COCO()
    coco.dataset = dict(images=[dict(id=k, height=size, width=size) for k in (1, 2)],
                        categories=[dict(id=1, name='a'),
                                    dict(id=2, name='b')], annotations=anns)
    coco.createIndex()
    return coco


def _results(dt_masks):
    out = []
    for img_id, cat_id, score, mask in dt_masks:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        out.append(dict(image_id=img_id, category_id=cat_id, score=score, segmentation=rle))
    return out


def _line(row, col0, col1, size=64, vertical=False):
    mask = np.zeros((size, size), bool)
    mask[row, col0:col1] = True
    return mask.T.copy() if vertical else mask


def test_boundary_ap_equals_mask_ap_for_thin_masks():
    gts = [(1, 1, _line(10, 5, 40)), (1, 2, _line(30, 10, 50, vertical=True)),
           (2, 1, _line(50, 0, 64)), (2, 1, _line(20, 20, 30))]
    dts = [(1, 1, 0.9, _line(10, 8, 40)), (1, 2, 0.8, _line(30, 10, 35, vertical=True)),
           (2, 1, 0.7, _line(50, 0, 60)), (2, 1, 0.95, _line(21, 20, 30)),
           (2, 1, 0.3, _line(20, 22, 30))]
    coco = _coco_from_masks(gts)
    segm = boundary_ap(coco, _results(dts), iou_type='segm')
    bnd = boundary_ap(coco, _results(dts), iou_type='boundary')
    assert 0 < segm['mAP'] < 1
    for key in segm:
        if key != 'summary':
            assert bnd[key] == pytest.approx(segm[key]), key


def test_boundary_ap_is_stricter_on_thick_masks():
    big = _square(64, 8, 8, 48)
    shifted = _square(64, 8, 11, 48)  # mask IoU 0.88, boundary IoU much lower
    coco = _coco_from_masks([(1, 1, big)])
    results = _results([(1, 1, 0.9, shifted)])
    segm = boundary_ap(coco, copy.deepcopy(results), iou_type='segm')
    bnd = boundary_ap(coco, results)
    assert segm['mAP_75'] == pytest.approx(1.0)
    assert bnd['mAP_50'] == pytest.approx(0.0)
    assert bnd['mAP'] < segm['mAP']
    assert 'Average Precision' in bnd['summary']


def test_boundary_band_width_is_capped_and_ratio_checked():
    gt = np.zeros((30, 40), bool)
    gt[5:25, 5:35] = True
    pred = np.roll(gt, 3, axis=1)
    # any band wider than the mask is the whole mask; 1e4 used to allocate a 90 TiB kernel
    assert boundary_dilation(30, 40, 1e4) == 40
    assert boundary_iou(pred, gt, 1e4) == boundary_iou(pred, gt, 1.0) == mask_iou(pred, gt)
    assert np.array_equal(mask_to_boundary(gt, 1e4), gt)
    for ratio in (float('inf'), float('nan'), -1, '0.02', None):
        with pytest.raises(ValueError, match='dilation_ratio must be a finite number > 0'):
            boundary_iou(pred, gt, ratio)
