from .crops import Box, crop_resize_image, crop_resize_mask, expand_box, mask_to_box, paste_prob
from .strategies import (MODES, PRESETS, StrategyOutput, choose_mode, refine_boxes, refine_global,
                         refine_hr, refine_instances, resolve_cfg, run_strategy)

__all__ = [
    'Box', 'mask_to_box', 'expand_box', 'crop_resize_image', 'crop_resize_mask', 'paste_prob',
    'MODES', 'PRESETS', 'StrategyOutput', 'choose_mode', 'refine_boxes', 'refine_instances',
    'refine_global', 'refine_hr', 'resolve_cfg', 'run_strategy'
]
