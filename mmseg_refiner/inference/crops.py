"""Box, crop, resize and paste-back helpers: the one copy used by inference and training.

Boxes are ``(x0, y0, x1, y1)`` integer pixel bounds with exclusive ``x1``/``y1``.
"""
from typing import Optional, Tuple

import mmcv
import numpy as np
import torch
import torch.nn.functional as F

Box = Tuple[int, int, int, int]


def mask_to_box(mask: np.ndarray) -> Optional[Box]:
    """Tight box of a bool (H, W) mask, or ``None`` when it is empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def expand_box(box: Box, pad: int, shape: Tuple[int, int]) -> Box:
    """Grow ``box`` by ``pad`` pixels on each side, clipped to an (H, W) image."""
    x0, y0, x1, y1 = box
    h, w = shape[:2]
    return max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)


def crop_resize_image(image: np.ndarray, box: Box, size: Tuple[int, int]) -> np.ndarray:
    """Crop an (H, W, C) image to ``box`` and resize to ``size`` = (w, h), bilinear."""
    x0, y0, x1, y1 = box
    return mmcv.imresize(image[y0:y1, x0:x1], size, interpolation='bilinear')


def crop_resize_mask(mask: np.ndarray, box: Box, size: Tuple[int, int],
                     thr: float = 0.5) -> np.ndarray:
    """Crop a bool (H, W) mask to ``box``, resize to ``size`` = (w, h) bilinearly, threshold.

    Returns a uint8 0/1 array of shape (size[1], size[0]).
    """
    x0, y0, x1, y1 = box
    crop = mask[y0:y1, x0:x1].astype(np.float32)
    return (mmcv.imresize(crop, size, interpolation='bilinear') >= thr).astype(np.uint8)


def paste_prob(prob: torch.Tensor, box: Box, shape: Tuple[int, int],
               fill: float = 0.0) -> torch.Tensor:
    """Resize a (h, w) probability map to ``box`` and paste it into an (H, W) canvas.

    Pixels outside the box get ``fill``.
    """
    x0, y0, x1, y1 = box
    canvas = prob.new_full(tuple(shape[:2]), fill)
    resized = F.interpolate(prob[None, None].float(), size=(y1 - y0, x1 - x0), mode='bilinear',
                            align_corners=False)[0, 0]
    canvas[y0:y1, x0:x1] = resized
    return canvas
