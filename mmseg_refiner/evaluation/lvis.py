"""LVIS-style mask AP and Boundary AP: the paper's COCO protocol.

SegRefiner reports COCO val results against LVIS annotations of the COCO val images
restricted to the 80 COCO categories ("cocofied" LVIS, category ids = COCO ids), scored with
the LVIS API: mask AP and Boundary AP (Cheng et al., CVPR 2021). This module runs that
evaluation with the ``lvis`` package from PyPI (``pip install lvis --no-deps``; its declared
``opencv-python`` dependency would sit next to ``opencv-python-headless``).

Boundary AP follows boundary-iou-api: the IoU of a detection with a ground truth is
min(mask IoU, boundary IoU), the boundary band being ``dilation_ratio`` of the diagonal.
"""
import contextlib
import functools
import io
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import pycocotools.mask as mask_utils
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmseg_refiner.registry import METRICS
from mmseg_refiner.utils.io import InputError
from mmseg_refiner.utils.masks import decode_segmentation, rle_encode

from .functional import check_dilation_ratio, rle_to_boundary_rle
from .metrics import check_record, coco_results, instance_record

IOU_TYPES = ('segm', 'boundary')
LVIS_STAT_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')
# Category ids of the 80 COCO classes, in mmdet's label order (label i -> COCO_CAT_IDS[i]).
COCO_CAT_IDS = (list(range(1, 12)) + list(range(13, 26)) + [27, 28] + list(range(31, 45)) +
                list(range(46, 66)) + [67, 70] + list(range(72, 83)) + list(range(84, 91)))


def _lvis_api():
    """``(LVIS, LVISResults, LVISEval)`` with a clear error when ``lvis`` is missing."""
    try:
        from lvis import LVIS, LVISEval, LVISResults
    except ImportError as e:
        raise ImportError('LVIS evaluation needs the `lvis` package: '
                          'pip install lvis --no-deps') from e
    return LVIS, LVISResults, LVISEval


@contextlib.contextmanager
def _numpy_float_alias():
    """``np.float`` while the block runs: lvis 0.5.3 (PyPI) still uses it in ``accumulate``,
    and numpy >= 1.24 removed it. Removed again afterwards; nothing else is patched."""
    added = 'float' not in np.__dict__
    if added:
        np.float = float
    try:
        yield
    finally:
        if added:
            del np.float


@functools.lru_cache(maxsize=None)
def _eval_class():
    """``LVISEval`` subclass with Boundary AP (built lazily: ``lvis`` is optional)."""
    _, _, LVISEval = _lvis_api()

    class BoundaryLVISEval(LVISEval):
        """LVISEval whose IoU is min(mask IoU, boundary IoU) when ``dilation_ratio`` is set."""

        def __init__(self, lvis_gt, lvis_dt, dilation_ratio: Optional[float] = None):
            super().__init__(lvis_gt, lvis_dt, iou_type='segm')
            self.dilation_ratio = dilation_ratio

        def _prepare(self):
            super()._prepare()  # segmentations become RLEs
            if self.dilation_ratio is None:
                return
            for anns in (*self._gts.values(), *self._dts.values()):
                for ann in anns:
                    ann['boundary'] = rle_to_boundary_rle(ann['segmentation'], self.dilation_ratio)

        def compute_iou(self, img_id, cat_id):
            ious = super().compute_iou(img_id, cat_id)
            if self.dilation_ratio is None or len(ious) == 0:
                return ious
            gt, dt = self._get_gt_dt(img_id, cat_id)
            dt = [dt[i] for i in np.argsort([-d['score'] for d in dt], kind='mergesort')]
            b_ious = mask_utils.iou([d['boundary'] for d in dt], [g['boundary'] for g in gt],
                                    [0] * len(gt))
            return np.minimum(np.asarray(ious), np.asarray(b_ious))

    return BoundaryLVISEval


def load_lvis(ann: Union[str, object]):
    """An ``lvis.LVIS`` from a path (an ``LVIS`` passes through), with log output silenced."""
    LVIS, _, _ = _lvis_api()
    if isinstance(ann, LVIS):
        return ann
    with contextlib.redirect_stdout(io.StringIO()):
        return LVIS(ann)


def _results_for(lvis_gt, results: Sequence[dict]) -> List[dict]:
    """Copies of the results on the annotation file's images and categories (the rest is
    not scored, as in the reference's evaluation script), polygons and uncompressed RLE
    turned into compressed RLE (the LVIS API's format); ValueError when none remain."""
    img_ids, cat_ids = set(lvis_gt.get_img_ids()), set(lvis_gt.get_cat_ids())
    kept = [dict(r) for r in results if r['image_id'] in img_ids and r['category_id'] in cat_ids]
    if not kept:
        raise ValueError(f'none of the {len(results)} results is on an image and category of '
                         'the LVIS annotation file (category ids must be its ids, e.g. COCO '
                         'ids for cocofied LVIS)')
    for r in kept:
        segm = r['segmentation']
        if not (isinstance(segm, dict) and isinstance(segm.get('counts'), (str, bytes))):
            img = lvis_gt.imgs[r['image_id']]
            r['segmentation'] = rle_encode(
                decode_segmentation(segm, img['height'], img['width'],
                                    f'result on image {r["image_id"]}'))
    return kept


def lvis_ap(ann: Union[str, object], results: Sequence[dict], iou_type: str = 'segm',
            dilation_ratio: float = 0.02, max_dets: int = 300) -> Dict[str, float]:
    """LVIS AP of COCO-format instance results (RLE ``segmentation``).

    Args:
        ann (str | lvis.LVIS): LVIS-format annotation file (or a loaded ``LVIS``).
        results (list[dict]): ``image_id``, ``category_id``, ``score``, ``segmentation``.
        iou_type (str): 'segm' (mask AP) or 'boundary' (Boundary AP). Defaults to 'segm'.
        dilation_ratio (float): Boundary band width (fraction of the diagonal), for
            'boundary'. Defaults to 0.02.
        max_dets (int): Detections kept per image (LVIS: 300). Defaults to 300.

    Returns:
        dict: :data:`LVIS_STAT_NAMES` (and AR values) as fractions in [0, 1]; -1 where
        undefined (no ground truth in that group).
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f'iou_type must be one of {IOU_TYPES}, got {iou_type!r}')
    _, LVISResults, _ = _lvis_api()
    gt = load_lvis(ann)
    dt = LVISResults(gt, _results_for(gt, results), max_dets=max_dets)
    evaluator = _eval_class()(gt, dt, dilation_ratio if iou_type == 'boundary' else None)
    evaluator.params.max_dets = max_dets
    with _numpy_float_alias():
        evaluator.run()
    return {k: float(v) for k, v in evaluator.get_results().items()}


def lvis_mask_and_boundary_ap(ann: Union[str, object], results: Sequence[dict],
                              dilation_ratio: float = 0.02) -> Dict[str, float]:
    """``segm_AP``, ``segm_AP50``, ... and ``boundary_AP``, ... of one result set (fractions)."""
    gt = load_lvis(ann)
    out = {}
    for iou_type in IOU_TYPES:
        stats = lvis_ap(gt, results, iou_type, dilation_ratio)
        out.update({f'{iou_type}_{k}': stats[k] for k in LVIS_STAT_NAMES})
    return out


@METRICS.register_module()
class LVISMaskMetric(BaseMetric):
    """Mask AP and Boundary AP of mmdet instance predictions against an LVIS annotation file.

    The paper's COCO protocol: run the (refined) detector on COCO val and score it against
    cocofied LVIS annotations (``tools/test.py ... --lvis-ann FILE`` sets this up)::

        test_evaluator = dict(type='mmseg_refiner.LVISMaskMetric',
                              ann_file='data/lvis/annotations/lvis_v1_val_cocofied.json')

    Labels become category ids through ``cat_ids``; by default the 80 COCO ids in mmdet's
    label order when the dataset has 80 classes (cocofied LVIS uses COCO ids), else the
    annotation file's sorted category ids (an LVIS-trained model) when the counts match;
    any other class count is an error at the first batch (give ``cat_ids``).

    Args:
        ann_file (str): LVIS-format annotation file.
        dilation_ratio (float): Boundary band width (fraction of the image diagonal).
            Defaults to 0.02.
        cat_ids (list[int], optional): Category id of each label. Defaults to None (above).
        max_dets (int): Detections kept per image. Defaults to 300 (LVIS).
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Key prefix. Defaults to ``'lvis'``.
    """
    default_prefix: Optional[str] = 'lvis'

    def __init__(self, ann_file: str, dilation_ratio: float = 0.02,
                 cat_ids: Optional[Sequence[int]] = None, max_dets: int = 300,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f'LVISMaskMetric: annotation file {ann_file} not found')
        self.dilation_ratio = check_dilation_ratio(dilation_ratio, 'LVISMaskMetric', 1)
        _lvis_api()  # fail now, not after the whole test loop, if `lvis` is missing
        try:  # parsed now, not after the whole test loop
            self._gt = load_lvis(ann_file)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # bad json/layout
            raise InputError(f'LVISMaskMetric: {ann_file} is not an LVIS-format annotation '
                             f'file: {exc!r}') from exc
        self.ann_file = ann_file
        self.cat_ids, self.max_dets = cat_ids, max_dets

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Encode each sample's predicted masks as COCO results (RLE, score, label).

        Labels without a category are refused at once, not after the whole test loop.
        """
        cat_ids = self._label_cat_ids(self._gt)
        for s in data_samples:
            record = instance_record(s, type(self).__name__)
            check_record(record, type(self).__name__, self.ann_file, cat_ids)
            self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """``segm_AP``, ``segm_AP50``, ..., ``boundary_AP``, ... (fractions, 3 decimals)."""
        logger = MMLogger.get_current_instance()
        gt = self._gt
        dets = coco_results(results, self._label_cat_ids(gt))
        if not dets:
            logger.error('LVISMaskMetric: the predictions are empty; nothing to evaluate')
            return {}
        stats = lvis_mask_and_boundary_ap(gt, dets, self.dilation_ratio)
        logger.info('LVIS mask AP %.3f, boundary AP %.3f (%s)', stats['segm_AP'],
                    stats['boundary_AP'], self.ann_file)
        return {k: round(v, 3) for k, v in stats.items()}

    def _label_cat_ids(self, gt) -> List[int]:
        """Category id of each label; a dataset whose class count fits neither the COCO ids
        nor the file's categories is an error (labels would score as other categories)."""
        classes = (self.dataset_meta or {}).get('classes')
        if self.cat_ids is not None:
            if classes is not None and len(self.cat_ids) != len(classes):
                raise InputError(f'LVISMaskMetric: cat_ids has {len(self.cat_ids)} ids but the '
                                 f'dataset has {len(classes)} classes; give one id per class')
            return list(self.cat_ids)
        if classes is not None and len(classes) == len(COCO_CAT_IDS):
            return COCO_CAT_IDS
        file_ids = sorted(gt.get_cat_ids())
        if classes is not None and len(classes) != len(file_ids):
            raise InputError(
                f'LVISMaskMetric: the dataset has {len(classes)} classes, but {self.ann_file} '
                f'has {len(file_ids)} categories (and 80 classes would mean the COCO ids): '
                'give cat_ids=[...], the category id of each label')
        return file_ids
