"""Mask-quality metrics (IoU, mBA, Boundary IoU, Boundary AP, LVIS AP) and summaries."""
from .functional import (BoundaryCOCOeval, boundary_ap, boundary_dilation, boundary_iou,
                         check_dilation_ratio, coco_stat_names, coco_stats, mask_iou,
                         mask_to_boundary, mba, mba_band, mba_radii, rle_to_boundary_rle)
from .lvis import LVISMaskMetric, lvis_ap, lvis_mask_and_boundary_ap
from .metrics import BoundaryAPMetric, RefinerMetric, score_masks
from .summary import IOU_KINDS, METRIC_NAMES, WORSE_POINTS, iou_counts, pooled_iou, summarize

__all__ = [
    'mask_iou', 'mba', 'mba_radii', 'mba_band', 'boundary_iou', 'boundary_dilation',
    'check_dilation_ratio', 'mask_to_boundary', 'rle_to_boundary_rle', 'BoundaryCOCOeval',
    'boundary_ap', 'coco_stat_names', 'coco_stats', 'RefinerMetric', 'BoundaryAPMetric',
    'score_masks', 'summarize', 'pooled_iou', 'iou_counts', 'IOU_KINDS', 'METRIC_NAMES',
    'WORSE_POINTS', 'LVISMaskMetric', 'lvis_ap', 'lvis_mask_and_boundary_ap'
]
