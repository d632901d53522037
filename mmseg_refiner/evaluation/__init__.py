"""Mask-quality metrics (IoU, mBA, Boundary IoU, Boundary AP) and their mmengine wrappers."""
from .functional import (BoundaryCOCOeval, boundary_ap, boundary_dilation, boundary_iou,
                         coco_stat_names, coco_stats, mask_iou, mask_to_boundary, mba, mba_band,
                         mba_radii, rle_to_boundary_rle)
from .metrics import BoundaryAPMetric, RefinerMetric, score_masks

__all__ = [
    'mask_iou', 'mba', 'mba_radii', 'mba_band', 'boundary_iou', 'boundary_dilation',
    'mask_to_boundary', 'rle_to_boundary_rle', 'BoundaryCOCOeval', 'boundary_ap',
    'coco_stat_names', 'coco_stats', 'RefinerMetric', 'BoundaryAPMetric', 'score_masks'
]
