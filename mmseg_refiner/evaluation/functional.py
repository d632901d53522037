"""Mask-quality metrics as the refinement papers compute them: pure numpy / OpenCV.

Every function scores ONE prediction against ONE ground truth, takes (H, W) masks (bool, or
any integer/float array where non-zero is foreground) and returns a float in [0, 1]. The
degenerate cases where the published formulas divide by zero (empty masks, a ground truth
without boundary) have defined results, listed in each docstring.

References:
    - mBA: Cheng et al., "CascadePSP: Toward Class-Agnostic and Very High-Resolution
      Segmentation via Global and Local Refinement", CVPR 2020
      (``util/compute_boundary_acc.py`` of the official code).
    - Boundary IoU / Boundary AP: Cheng et al., "Boundary IoU: Improving Object-Centric Image
      Segmentation Evaluation", CVPR 2021 (``boundary_iou/utils/boundary_utils.py`` and
      ``coco_instance_api/cocoeval.py`` of boundary-iou-api).
"""
import contextlib
import io
import math
from typing import Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmseg_refiner.utils import masks
from mmseg_refiner.utils.io import is_number

MBA_NUM_STEPS = 5
MBA_MIN_RADIUS = 1


def _as_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Validate one (H, W) mask and return it as bool."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'{name} must be a 2-D (H, W) mask, got shape {mask.shape}')
    return mask.astype(bool, copy=False)


def _as_pair(pred: np.ndarray, gt: np.ndarray):
    """Validate a prediction / ground-truth pair of equal (H, W) shape."""
    pred, gt = _as_mask(pred, 'pred'), _as_mask(gt, 'gt')
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt must have the same shape, got {pred.shape} and {gt.shape}')
    return pred, gt


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two binary masks.

    IoU = |P & G| / |P | G| (:func:`mmseg_refiner.utils.masks.mask_iou`, the one copy).

    Args:
        pred (np.ndarray): (H, W) predicted mask, non-zero = foreground.
        gt (np.ndarray): (H, W) ground-truth mask, non-zero = foreground.

    Returns:
        float: IoU in [0, 1]. Both masks empty: 1.0 (nothing to find, nothing found);
        exactly one empty: 0.0.
    """
    pred, gt = _as_pair(pred, gt)
    return masks.mask_iou(pred, gt)


def mba_radii(height: int, width: int) -> List[int]:
    """The five band radii of CascadePSP's mBA for an image of the given size.

    r_i = 1 + int((max_r - 1) / 5 * i), i = 0..4, with max_r = (h + w) / 300. ``int``
    truncates towards zero, so images smaller than 300 px (max_r < 1) use r = 1 throughout.

    Args:
        height (int): Image height H.
        width (int): Image width W.

    Returns:
        list[int]: 5 radii, non-decreasing, each >= 1.
    """
    max_radius = (width + height) / 300
    return [
        MBA_MIN_RADIUS + int((max_radius - MBA_MIN_RADIUS) / MBA_NUM_STEPS * i)
        for i in range(MBA_NUM_STEPS)
    ]


def mba_band(gt: np.ndarray, radius: int) -> np.ndarray:
    """CascadePSP's boundary band: morphological gradient of the GT with an elliptic kernel.

    Args:
        gt (np.ndarray): (H, W) ground-truth mask, non-zero = foreground.
        radius (int): Kernel radius r; the kernel is the (2r+1) x (2r+1) ellipse of
            ``cv2.getStructuringElement(cv2.MORPH_ELLIPSE, ...)``.

    Returns:
        np.ndarray: (H, W) bool, True within about r pixels of the GT boundary (dilation
        minus erosion; the image border is not a boundary).
    """
    gt = _as_mask(gt, 'gt').astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.morphologyEx(gt, cv2.MORPH_GRADIENT, kernel) > 0


def mba(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean boundary accuracy (mBA) exactly as CascadePSP computes it.

    For each radius r of :func:`mba_radii` the band is :func:`mba_band` of the GT, and the
    accuracy is the share of band pixels where the prediction equals the GT; mBA is the
    mean of the five accuracies.

    Args:
        pred (np.ndarray): (H, W) predicted mask, non-zero = foreground.
        gt (np.ndarray): (H, W) ground-truth mask, non-zero = foreground.

    Returns:
        float: mBA in [0, 1]. A GT without boundary (empty or full: every band is empty,
        where CascadePSP divides by zero) gives 1.0 if the prediction equals the GT
        everywhere and 0.0 otherwise, matching :func:`mask_iou` for empty masks.
    """
    pred, gt = _as_pair(pred, gt)
    if gt.all() or not gt.any():
        return float(np.array_equal(pred, gt))
    correct = pred == gt
    accs = []
    for radius in mba_radii(*gt.shape):
        band = mba_band(gt, radius)
        accs.append(np.count_nonzero(correct & band) / np.count_nonzero(band))
    return float(sum(accs) / MBA_NUM_STEPS)


def check_dilation_ratio(dilation_ratio, owner: str = '', max_ratio: Optional[float] = None):
    """``dilation_ratio`` as a float; ValueError naming it unless a finite number > 0.

    Args:
        dilation_ratio: The value to check.
        owner (str): Names the caller in the message (e.g. ``'BoundaryAPMetric'``).
        max_ratio (float, optional): Also refuse values above this (the metrics use 1).
    """
    where = f'{owner}: ' if owner else ''
    if not is_number(dilation_ratio) or dilation_ratio <= 0 or \
            (max_ratio is not None and dilation_ratio > max_ratio):
        bound = f'in (0, {max_ratio}]' if max_ratio is not None else '> 0'
        raise ValueError(f'{where}dilation_ratio must be a finite number {bound} (a fraction of '
                         f'the image diagonal), got {dilation_ratio!r}')
    return float(dilation_ratio)


def boundary_dilation(height: int, width: int, dilation_ratio: float = 0.02) -> int:
    """Boundary band width d = max(1, round(ratio * image diagonal)) in pixels.

    Capped at max(height, width): a wider band is the whole mask as well, and the erosion
    kernel of an uncapped d (``dilation_ratio=1e4``) would not fit in memory.
    """
    dilation_ratio = check_dilation_ratio(dilation_ratio)
    d = max(1, int(round(dilation_ratio * math.sqrt(height**2 + width**2))))
    return min(d, max(1, height, width))


def mask_to_boundary(mask: np.ndarray, dilation_ratio: float = 0.02) -> np.ndarray:
    """Inner boundary band of a mask, as boundary-iou-api's ``mask_to_boundary``.

    The band is the mask minus its erosion by a (2d+1) x (2d+1) square, d from
    :func:`boundary_dilation` (the API erodes d times with a 3x3 square: the same set).
    Pixels outside the image count as background, so a mask cut by the image border has a
    boundary along it.

    Args:
        mask (np.ndarray): (H, W) mask, non-zero = foreground.
        dilation_ratio (float): Band width as a fraction of the image diagonal.
            Defaults to 0.02.

    Returns:
        np.ndarray: (H, W) bool, the pixels of the mask within d of its contour (G_d & G).
    """
    mask = _as_mask(mask, 'mask')
    h, w = mask.shape
    d = boundary_dilation(h, w, dilation_ratio)
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((2 * d + 1, 2 * d + 1), np.uint8))[1:h + 1, 1:w + 1]
    return mask & (eroded == 0)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = 0.02) -> float:
    """Boundary IoU (Cheng et al. 2021): IoU of the inner boundary bands.

    BIoU = |(G_d & G) & (P_d & P)| / |(G_d & G) | (P_d & P)|, the bands from
    :func:`mask_to_boundary`.

    Args:
        pred (np.ndarray): (H, W) predicted mask, non-zero = foreground.
        gt (np.ndarray): (H, W) ground-truth mask, non-zero = foreground.
        dilation_ratio (float): Band width as a fraction of the image diagonal.
            Defaults to 0.02.

    Returns:
        float: Boundary IoU in [0, 1]. Both masks empty: 1.0; exactly one empty: 0.0.
    """
    pred, gt = _as_pair(pred, gt)
    return masks.mask_iou(mask_to_boundary(pred, dilation_ratio),
                          mask_to_boundary(gt, dilation_ratio))


def rle_to_boundary_rle(rle: dict, dilation_ratio: float = 0.02) -> dict:
    """Boundary band (:func:`mask_to_boundary`) of a COCO RLE mask, as an RLE."""
    return masks.rle_encode(mask_to_boundary(mask_utils.decode(rle), dilation_ratio))


class BoundaryCOCOeval(COCOeval):
    """pycocotools' segm ``COCOeval`` with Boundary IoU in place of mask IoU (Boundary AP).

    As boundary-iou-api's ``coco_instance_api``: the IoU of a detection with a non-crowd
    ground truth is min(mask IoU, boundary IoU); crowd regions keep the mask IoU (their
    matching is by intersection over the detection). Everything else (matching, area
    ranges from the mask ``area``, 101-point precision) is COCOeval's.

    Args:
        coco_gt (COCO): Ground truth.
        coco_dt (COCO): Detections (``coco_gt.loadRes(results)``) with RLE segmentations.
        dilation_ratio (float): Band width as a fraction of the image diagonal.
            Defaults to 0.02.
    """

    def __init__(self, coco_gt: COCO, coco_dt: COCO, dilation_ratio: float = 0.02):
        super().__init__(coco_gt, coco_dt, iouType='segm')
        self.dilation_ratio = dilation_ratio
        # Cached on the annotation dicts (shared by evaluations of one COCO), per ratio.
        self._key = f'_boundary@{dilation_ratio}'

    def _prepare(self):
        """COCOeval's preparation (segmentations become RLEs), then add boundary RLEs."""
        super()._prepare()
        for anns in (*self._gts.values(), *self._dts.values()):
            for ann in anns:
                if self._key not in ann:
                    ann[self._key] = rle_to_boundary_rle(ann['segmentation'], self.dilation_ratio)

    def computeIoU(self, imgId, catId):  # noqa: N802,N803 (COCOeval's API)
        """(D, G) min(mask IoU, boundary IoU) for non-crowd G; mask IoU for crowd G."""
        mask_ious = super().computeIoU(imgId, catId)
        if len(mask_ious) == 0:
            return mask_ious
        gts, dts = self._gt_dt_lists(imgId, catId)
        crowd = [int(g['iscrowd']) for g in gts]
        b_ious = mask_utils.iou([d[self._key] for d in dts], [g[self._key] for g in gts],
                                [0] * len(gts))
        ious = np.array(mask_ious, dtype=np.float64)
        keep = np.array(crowd) == 0
        ious[:, keep] = np.minimum(ious[:, keep], np.asarray(b_ious)[:, keep])
        return ious

    def _gt_dt_lists(self, img_id, cat_id):
        """The gts and the score-sorted, maxDet-truncated dts that ``computeIoU`` used."""
        p = self.params
        if p.useCats:
            gts, dts = self._gts[img_id, cat_id], self._dts[img_id, cat_id]
        else:
            gts = [g for c in p.catIds for g in self._gts[img_id, c]]
            dts = [d for c in p.catIds for d in self._dts[img_id, c]]
        order = np.argsort([-d['score'] for d in dts], kind='mergesort')
        return gts, [dts[i] for i in order][:p.maxDets[-1]]


def coco_stat_names(max_dets: Sequence[int] = (1, 10, 100)) -> List[str]:
    """Names of COCOeval's 12 segm ``stats`` for the given ``params.maxDets``.

    Matches mmdet's CocoMetric for ``max_dets=(100, 300, 1000)``: the AP entries and the
    size-split ARs use the largest ``max_dets``.
    """
    m0, m1, m2 = max_dets
    return [
        'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', f'AR@{m0}', f'AR@{m1}', f'AR@{m2}',
        f'AR_s@{m2}', f'AR_m@{m2}', f'AR_l@{m2}'
    ]


def coco_stats(coco_eval: COCOeval) -> Dict[str, Union[float, str]]:
    """Run ``evaluate / accumulate / summarize`` quietly; the 12 stats by name.

    Returns:
        dict: ``mAP``, ``mAP_50``, ... (see :func:`coco_stat_names`; fractions, -1 where
        undefined) and ``summary``, the text COCOeval prints.
    """
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    names = coco_stat_names(coco_eval.params.maxDets)
    stats = {name: float(v) for name, v in zip(names, coco_eval.stats)}
    stats['summary'] = buf.getvalue()
    return stats


def _load_results(coco_gt: COCO, results: Union[COCO, Sequence[dict]]) -> COCO:
    """``coco_gt.loadRes`` of segm results, without their boxes (as mmdet's CocoMetric).

    With a ``bbox`` key pycocotools takes the instance area from the box; without, from the
    mask, which is what the COCO area ranges mean for masks.
    """
    if isinstance(results, COCO):
        return results
    if len(results) == 0:
        raise ValueError('boundary_ap: results is empty (no detections to evaluate)')
    results = [{k: v for k, v in r.items() if k != 'bbox'} for r in results]
    with contextlib.redirect_stdout(io.StringIO()):
        return coco_gt.loadRes(results)


def boundary_ap(coco_gt: Union[str, COCO], results: Union[COCO, Sequence[dict]],
                dilation_ratio: float = 0.02, img_ids: Optional[Sequence[int]] = None,
                cat_ids: Optional[Sequence[int]] = None, max_dets: Sequence[int] = (1, 10, 100),
                iou_type: str = 'boundary') -> Dict[str, Union[float, str]]:
    """COCO-style Boundary AP (or plain mask AP with ``iou_type='segm'``, for comparison).

    Args:
        coco_gt (str | COCO): Ground truth: an annotation file or a loaded ``COCO``.
        results (list[dict] | COCO): Detections in COCO result format: ``image_id``,
            ``category_id``, ``score`` and ``segmentation`` (RLE or polygons), or the
            ``COCO`` that ``loadRes`` made of them.
        dilation_ratio (float): Boundary band width as a fraction of the image diagonal.
            Defaults to 0.02.
        img_ids (list[int], optional): Evaluate these images only. Defaults to all images
            of ``coco_gt``.
        cat_ids (list[int], optional): Evaluate these categories only. Defaults to all.
        max_dets (tuple[int]): COCOeval's three ``maxDets``. Defaults to (1, 10, 100), the
            COCO standard; mmdet's CocoMetric uses (100, 300, 1000).
        iou_type (str): ``'boundary'`` (Boundary AP) or ``'segm'`` (mask AP).
            Defaults to ``'boundary'``.

    Returns:
        dict: See :func:`coco_stats`.
    """
    if iou_type not in ('boundary', 'segm'):
        raise ValueError(f"iou_type must be 'boundary' or 'segm', got {iou_type!r}")
    if iou_type == 'boundary':
        dilation_ratio = check_dilation_ratio(dilation_ratio, 'boundary_ap')
    if isinstance(coco_gt, str):
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO(coco_gt)
    coco_dt = _load_results(coco_gt, results)
    if iou_type == 'boundary':
        coco_eval = BoundaryCOCOeval(coco_gt, coco_dt, dilation_ratio)
    else:
        coco_eval = COCOeval(coco_gt, coco_dt, iouType='segm')
    if img_ids is not None:
        coco_eval.params.imgIds = list(img_ids)
    if cat_ids is not None:
        coco_eval.params.catIds = list(cat_ids)
    coco_eval.params.maxDets = list(max_dets)
    return coco_stats(coco_eval)
