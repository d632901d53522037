from .inference import (DEFAULT_CHECKPOINT, init_refiner, load_refiner_weights, refine_label_map,
                        refine_mask, refine_masks)

__all__ = [
    'init_refiner', 'refine_mask', 'refine_masks', 'refine_label_map', 'load_refiner_weights',
    'DEFAULT_CHECKPOINT'
]
