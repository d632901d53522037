"""Dataset-level summaries of per-image scores (shared by ``evaluate``, the benchmark, metrics).

Two ways to average IoU over a data set are in use:

* **mean IoU**: the mean of the per-image IoU (``IoU``); every image weighs the same.
* **pooled IoU**: the sum of the intersections over the sum of the unions of all images
  (``pooled_IoU``), as BIG / DIS results are reported by CascadePSP and SegFix and
  SegRefiner's evaluation scripts; large objects weigh more.
"""
from typing import Dict, List, Sequence

import numpy as np

from mmseg_refiner.utils.masks import intersection_union

METRIC_NAMES = ('IoU', 'mBA', 'BIoU')
WORSE_POINTS = 2.0  # "clearly worse": IoU lower by more than this many points
COUNT_KEYS = ('inter', 'union')  # per-image pixel counts for the pooled IoU (not averaged)
IOU_KINDS = {
    'IoU': 'mean over images of the per-image IoU (percent)',
    'pooled_IoU': 'sum of intersections / sum of unions over all images (percent)',
}


def iou_counts(pred: np.ndarray, gt: np.ndarray, prefix: str = '') -> Dict[str, int]:
    """``{prefix}inter``, ``{prefix}union``: the pixel counts that :func:`pooled_iou` sums."""
    inter, union = intersection_union(pred, gt)
    return {f'{prefix}inter': inter, f'{prefix}union': union}


def pooled_iou(rows: Sequence[dict], prefix: str = '') -> float:
    """Pooled IoU in percent: ``sum(inter) / sum(union)`` over ``rows`` (100 if all empty)."""
    inter = sum(int(r[f'{prefix}inter']) for r in rows)
    union = sum(int(r[f'{prefix}union']) for r in rows)
    return 100.0 if union == 0 else 100.0 * inter / union


def _is_count(key: str) -> bool:
    return any(key == k or key.endswith('_' + k) for k in COUNT_KEYS)


def summarize(rows: List[dict], pooled: bool = False) -> Dict[str, float]:
    """Means of every numeric per-image column; pooled IoU; with coarse scores, worse counts.

    Args:
        rows (list[dict]): One dict per image: ``IoU``, ``mBA``, ``BIoU`` (percent), optional
            ``coarse_*`` / ``delta_*`` columns, and for ``pooled`` the counts ``inter``,
            ``union`` (``coarse_inter``, ``coarse_union``) from :func:`iou_counts`. Other
            numeric columns (timings, U-Net calls) are averaged too; strings are skipped.
        pooled (bool): Add ``pooled_IoU`` (and ``coarse_pooled_IoU``,
            ``delta_pooled_IoU``). Defaults to False.

    Returns:
        dict: ``num_images``, the means, the pooled IoU when asked and, with coarse scores,
        ``num_worse`` (IoU dropped), ``num_worse_2pt`` (by more than ``WORSE_POINTS``) and
        ``worse_2pt_share``.
    """
    if not rows:
        raise ValueError('summarize: no per-image rows to summarize')
    keys = [
        k for k, v in rows[0].items()
        if isinstance(v, (int, float, np.number)) and not _is_count(k)
    ]
    out = dict(num_images=len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in keys})
    if pooled:
        out['pooled_IoU'] = pooled_iou(rows)
        if 'coarse_inter' in rows[0]:
            out['coarse_pooled_IoU'] = pooled_iou(rows, 'coarse_')
            out['delta_pooled_IoU'] = out['pooled_IoU'] - out['coarse_pooled_IoU']
    if 'coarse_IoU' in rows[0]:
        delta = [r['IoU'] - r['coarse_IoU'] for r in rows]
        out['num_worse'] = int(sum(d < 0 for d in delta))
        out['num_worse_2pt'] = int(sum(d < -WORSE_POINTS for d in delta))
        out['worse_2pt_share'] = out['num_worse_2pt'] / len(rows)
    return out
