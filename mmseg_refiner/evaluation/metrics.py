"""mmengine metrics: the refiner's validation scores and COCO Boundary AP (beside CocoMetric)."""
import contextlib
import io
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger
from pycocotools.coco import COCO

from mmseg_refiner.registry import METRICS
from mmseg_refiner.utils.io import InputError
from mmseg_refiner.utils.masks import rle_encode

from .functional import (boundary_ap, boundary_iou, check_dilation_ratio, coco_stat_names,
                         mask_iou, mba)
from .summary import iou_counts, pooled_iou


def _mask_array(field, name: str) -> np.ndarray:
    """(H, W) bool numpy mask from a PixelData-as-dict / PixelData / tensor / array field."""
    data = field['data'] if isinstance(field, dict) else getattr(field, 'data', field)
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise ValueError(f'{name} must be (1, H, W) or (H, W), got shape {data.shape}')
    return data > 0.5 if data.dtype != bool else data


def score_masks(pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = 0.02,
                prefix: str = '') -> Dict[str, float]:
    """IoU, mBA and Boundary IoU of one (H, W) mask against its ground truth, in percent.

    Args:
        pred (np.ndarray): (H, W) predicted mask.
        gt (np.ndarray): (H, W) ground-truth mask.
        dilation_ratio (float): Boundary IoU band width (fraction of the diagonal).
            Defaults to 0.02.
        prefix (str): Prepended to the keys (e.g. ``'coarse_'``). Defaults to ''.

    Returns:
        dict: ``{prefix}IoU``, ``{prefix}mBA``, ``{prefix}BIoU`` in [0, 100].
    """
    return {
        f'{prefix}IoU': 100 * mask_iou(pred, gt),
        f'{prefix}mBA': 100 * mba(pred, gt),
        f'{prefix}BIoU': 100 * boundary_iou(pred, gt, dilation_ratio),
    }


@METRICS.register_module()
class RefinerMetric(BaseMetric):
    """Per-sample IoU / mBA / Boundary IoU of the refined and the coarse mask, averaged.

    Reads ``pred_mask``, ``gt_mask`` and (when present) ``coarse_mask`` of each data sample
    (PixelData, (1, H, W)), as :meth:`DiffusionRefiner.predict` leaves them. Reports, in
    percent, ``IoU``, ``mBA``, ``BIoU`` of the refined masks and ``coarse_IoU``,
    ``coarse_mBA``, ``coarse_BIoU`` of the inputs, so the log shows the gain. Definitions
    in :mod:`mmseg_refiner.evaluation.functional`. With ``pooled=True`` also
    ``pooled_IoU`` (and ``coarse_pooled_IoU``): sum of intersections / sum of unions over
    the data set, as BIG / DIS results are published (:mod:`.summary`).

    Args:
        dilation_ratio (float): Boundary IoU band width. Defaults to 0.02.
        pooled (bool): Also report the pooled IoU. Defaults to False.
        collect_device (str): 'cpu' or 'gpu' for distributed collection. Defaults to 'cpu'.
        prefix (str, optional): Key prefix. Defaults to ``'refiner'``.
    """
    default_prefix: Optional[str] = 'refiner'

    def __init__(self, dilation_ratio: float = 0.02, pooled: bool = False,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.dilation_ratio = check_dilation_ratio(dilation_ratio, 'RefinerMetric', 1)
        self.pooled = pooled

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score each sample; store one dict of per-sample values in ``self.results``."""
        for i, sample in enumerate(data_samples):
            for key in ('pred_mask', 'gt_mask'):
                if key not in sample:
                    raise KeyError(f'RefinerMetric: data sample {i} has no {key!r} '
                                   f'(keys: {sorted(sample)})')
            gt = _mask_array(sample['gt_mask'], 'gt_mask')
            scores = self._scores(self._checked(sample, 'pred_mask', gt), gt, '')
            if 'coarse_mask' in sample:
                scores.update(self._scores(self._checked(sample, 'coarse_mask', gt), gt,
                                           'coarse_'))
            self.results.append(scores)

    def _scores(self, mask: np.ndarray, gt: np.ndarray, prefix: str) -> Dict[str, float]:
        scores = score_masks(mask, gt, self.dilation_ratio, prefix=prefix)
        return {**scores, **iou_counts(mask, gt, prefix)} if self.pooled else scores

    @staticmethod
    def _checked(sample: dict, key: str, gt: np.ndarray) -> np.ndarray:
        mask = _mask_array(sample[key], key)
        if mask.shape != gt.shape:
            raise ValueError(f'RefinerMetric: {key} shape {mask.shape} differs from gt_mask '
                             f'shape {gt.shape} (sample {sample.get("img_path", "?")})')
        return mask

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Mean of every per-sample score over the samples that have it (+ pooled IoU)."""
        keys = list(OrderedDict.fromkeys(k for r in results for k in r))
        out = {
            k: float(np.mean([r[k] for r in results if k in r]))
            for k in keys if k not in ('inter', 'union', 'coarse_inter', 'coarse_union')
        }
        if self.pooled:
            out['pooled_IoU'] = pooled_iou(results)
            with_coarse = [r for r in results if 'coarse_inter' in r]
            if with_coarse:
                out['coarse_pooled_IoU'] = pooled_iou(with_coarse, 'coarse_')
        return out


def _encode(masks) -> list:
    """RLEs of (N, H, W) masks (tensor or array); RLE lists pass through."""
    if isinstance(masks, (list, tuple)):
        return list(masks)
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f'pred_instances.masks must be (N, H, W), got shape {masks.shape}')
    return [rle_encode(m) for m in masks]


def instance_record(sample: dict, metric: str) -> dict:
    """``img_id``, RLE ``masks``, ``scores``, ``labels`` of one mmdet data sample.

    Uses ``pred_instances.mask_scores`` when present (as mmdet's CocoMetric), else ``scores``.
    """
    pred = sample['pred_instances']
    if 'masks' not in pred:
        raise KeyError(f'{metric} needs pred_instances.masks (an instance segmentation model)')
    scores = pred.get('mask_scores', pred['scores'])
    return dict(img_id=sample['img_id'], masks=_encode(pred['masks']),
                scores=torch.as_tensor(scores).float().cpu().numpy(),
                labels=torch.as_tensor(pred['labels']).cpu().numpy())


def check_record(record: dict, metric: str, ann_file: str, cat_ids: Sequence[int],
                 imgs: Optional[dict] = None) -> None:
    """Refuse an :func:`instance_record` that the annotation file cannot score.

    Every label must index ``cat_ids`` (the categories its labels map to); with ``imgs`` (the
    annotation file's images by id) the image must be one of them and every mask (an RLE
    with ``size``) must be at its size.

    Raises:
        ValueError: Naming ``metric``, the image id, the label / sizes and ``ann_file``.
    """
    img_id = record['img_id']
    for label in np.unique(np.asarray(record['labels']).reshape(-1)).tolist():
        if not (isinstance(label, int) and 0 <= label < len(cat_ids)):
            raise ValueError(f'{metric}: image {img_id}: label {label!r} has no category '
                             f'({len(cat_ids)} categories map labels 0..{len(cat_ids) - 1} to '
                             f'the categories of {ann_file})')
    if imgs is None:
        return
    img = imgs.get(img_id)
    if img is None:
        raise ValueError(f'{metric}: image id {img_id!r} of a prediction is not an image of '
                         f'{ann_file}')
    for rle in record['masks']:
        size = rle.get('size') if isinstance(rle, dict) else None
        if size is not None and [int(v) for v in size] != [img['height'], img['width']]:
            raise ValueError(f'{metric}: image {img_id}: predicted masks are {size[1]}x{size[0]} '
                             f'(WxH) but the image in {ann_file} is {img["width"]}x'
                             f'{img["height"]}; predict masks at the original image size '
                             '(mmdet: rescale=True)')


def coco_results(records: List[dict], cat_ids: Sequence[int]) -> List[dict]:
    """COCO-format results (``image_id``, ``category_id``, ``score``, ``segmentation``)."""
    for r in records:
        check_record(r, 'coco_results', 'the annotation file', cat_ids)
    return [
        dict(image_id=r['img_id'], category_id=cat_ids[int(label)], score=float(score),
             segmentation=rle) for r in records
        for rle, score, label in zip(r['masks'], r['scores'], r['labels'])
    ]


@METRICS.register_module()
class BoundaryAPMetric(BaseMetric):
    """COCO Boundary AP of mmdet instance predictions (Cheng et al., CVPR 2021).

    Sits beside mmdet's ``CocoMetric`` in an evaluator list and uses the same conventions
    (image ids from ``img_id``, label -> category id through ``dataset_meta['classes']``,
    maxDets (100, 300, 1000), mask areas, values rounded to 3 decimals), so its
    ``coco/boundary_mAP`` is directly comparable with ``coco/segm_mAP``::

        val_evaluator = [
            dict(type='CocoMetric', ann_file=ann, metric='segm'),
            dict(type='mmseg_refiner.BoundaryAPMetric', ann_file=ann)]

    Reads ``pred_instances`` (``masks`` bool (N, H, W) or RLEs, ``scores`` (N,), ``labels``
    (N,), optional ``mask_scores``) and ``img_id`` of each data sample.

    Args:
        ann_file (str): COCO-format annotation file with instance masks.
        dilation_ratio (float): Boundary band width (fraction of the image diagonal).
            Defaults to 0.02.
        metric_items (list[str], optional): Keys to report, from
            :func:`coco_stat_names`. Defaults to the six AP values.
        proposal_nums (tuple[int]): COCOeval maxDets. Defaults to (100, 300, 1000).
        backend_args (dict, optional): mmengine file backend for ``ann_file``.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Key prefix. Defaults to ``'coco'``.
    """
    default_prefix: Optional[str] = 'coco'

    def __init__(self, ann_file: str, dilation_ratio: float = 0.02,
                 metric_items: Optional[Sequence[str]] = None,
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 backend_args: Optional[dict] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.dilation_ratio = check_dilation_ratio(dilation_ratio, 'BoundaryAPMetric', 1)
        self.ann_file = ann_file
        self._label_cat_ids: Optional[List[int]] = None
        self.proposal_nums = tuple(proposal_nums)
        names = coco_stat_names(self.proposal_nums)
        self.metric_items = list(metric_items or names[:6])
        unknown = [m for m in self.metric_items if m not in names]
        if unknown:
            raise KeyError(f'BoundaryAPMetric: unknown metric_items {unknown}; '
                           f'choose from {names}')
        with get_local_path(ann_file, backend_args=backend_args) as local_path, \
                contextlib.redirect_stdout(io.StringIO()):
            try:
                self._coco_api = COCO(local_path)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:  # bad json/layout
                raise InputError(f'BoundaryAPMetric: {ann_file} is not a COCO-format '
                                 f'annotation file: {exc!r}') from exc

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Meta info of the dataset; its ``classes`` are checked against the annotation file."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        self._dataset_meta = dataset_meta
        self._label_cat_ids = self._cat_ids()

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Encode each sample's predicted masks as COCO results (RLE, score, label).

        Each is checked against the annotation file at once (image id, labels, mask size),
        not after the whole test loop.
        """
        if self._label_cat_ids is None:
            self._label_cat_ids = self._cat_ids()
        for s in data_samples:
            record = instance_record(s, type(self).__name__)
            check_record(record,
                         type(self).__name__, self.ann_file, self._label_cat_ids,
                         self._coco_api.imgs)
            self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Boundary AP over all images of the annotation file, keys ``boundary_<item>``."""
        logger = MMLogger.get_current_instance()
        cat_ids = self._cat_ids()
        dets = coco_results(results, cat_ids)
        if not dets:
            logger.error('BoundaryAPMetric: the predictions are empty; nothing to evaluate')
            return {}
        stats = boundary_ap(self._coco_api, dets, self.dilation_ratio,
                            img_ids=self._coco_api.getImgIds(), cat_ids=cat_ids,
                            max_dets=self.proposal_nums)
        logger.info('Boundary AP (dilation ratio %s):\n%s', self.dilation_ratio, stats['summary'])
        return {f'boundary_{k}': float(f'{round(stats[k], 3)}') for k in self.metric_items}

    def _cat_ids(self) -> List[int]:
        """Category id of each label index, as mmdet's CocoMetric maps them."""
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:
            return sorted(self._coco_api.getCatIds())
        names = [c['name'] for c in self._coco_api.loadCats(self._coco_api.getCatIds())]
        missing = [c for c in classes if c not in names]
        if missing:
            shown = names[:10] + (['...'] if len(names) > 10 else [])
            raise ValueError(f'BoundaryAPMetric: dataset class(es) {missing} are not categories '
                             f'of {self.ann_file} (its {len(names)} categories: {shown})')
        return self._coco_api.getCatIds(catNms=list(classes))
