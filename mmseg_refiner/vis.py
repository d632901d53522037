"""Pictures of what a refiner changed: mask overlays and before / after / GT panels (BGR uint8)."""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

Color = Tuple[int, int, int]
COARSE_COLOR: Color = (0, 140, 255)  # orange (BGR)
REFINED_COLOR: Color = (60, 200, 0)  # green
GT_COLOR: Color = (255, 120, 0)  # blue
GREY = 128


def _check_mask(mask: np.ndarray, shape: Tuple[int, int], name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f'{name} has shape {mask.shape}, expected the image size {tuple(shape)}')
    return mask.astype(bool, copy=False)


def grey_canvas(shape: Tuple[int, int]) -> np.ndarray:
    """A mid-grey (H, W, 3) uint8 image, the backdrop when no photo is at hand."""
    return np.full((shape[0], shape[1], 3), GREY, np.uint8)


def overlay(image_bgr: np.ndarray, mask: np.ndarray, color: Color = REFINED_COLOR,
            alpha: float = 0.45, contour: bool = True) -> np.ndarray:
    """Tint the mask's pixels with ``color`` and outline its contour.

    Args:
        image_bgr (np.ndarray): (H, W, 3) uint8 BGR image (or (H, W) grey).
        mask (np.ndarray): (H, W) mask, non-zero = foreground.
        color (tuple[int]): BGR colour. Defaults to green.
        alpha (float): Tint opacity in [0, 1]. Defaults to 0.45.
        contour (bool): Draw the mask contour at full opacity. Defaults to True.

    Returns:
        np.ndarray: (H, W, 3) uint8, a new image.
    """
    image = np.asarray(image_bgr)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image_bgr must be (H, W, 3) uint8, got {image.shape} {image.dtype}')
    mask = _check_mask(mask, image.shape[:2], 'mask')
    out = image.copy()
    tint = np.array(color, np.float32)
    out[mask] = ((1 - alpha) * image[mask] + alpha * tint).astype(np.uint8)
    if contour:
        thickness = max(1, round(max(image.shape[:2]) / 400))
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, color, thickness)
    return out


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    """Put a black title bar with white text above a panel."""
    bar_h = max(18, panel.shape[0] // 14)
    bar = np.zeros((bar_h, panel.shape[1], 3), np.uint8)
    scale = bar_h / 32
    cv2.putText(bar, title, (4, int(bar_h * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), max(1, round(scale * 1.5)), cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def _fit(image: np.ndarray, max_size: Optional[int]) -> np.ndarray:
    """Shrink so the long side is at most ``max_size`` (never enlarges)."""
    h, w = image.shape[:2]
    if not max_size or max(h, w) <= max_size:
        return image
    s = max_size / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA)


def before_after_panel(image: Optional[np.ndarray], coarse: Optional[np.ndarray],
                       refined: np.ndarray, gt: Optional[np.ndarray] = None,
                       titles: Optional[Sequence[str]] = None,
                       max_size: Optional[int] = 640) -> np.ndarray:
    """Side-by-side overlays: coarse (before), refined (after) and the ground truth.

    Args:
        image (np.ndarray, optional): (H, W, 3) uint8 BGR photo; None draws on grey.
        coarse (np.ndarray, optional): (H, W) input mask; None leaves its panel out.
        refined (np.ndarray): (H, W) refined mask.
        gt (np.ndarray, optional): (H, W) ground truth; None leaves its panel out.
        titles (list[str], optional): One title per panel shown. Defaults to
            'coarse', 'refined', 'ground truth'.
        max_size (int, optional): Long side of each panel in pixels (shrink only).
            Defaults to 640; None keeps the full size.

    Returns:
        np.ndarray: (h + bar, k * w, 3) uint8 BGR, k = number of panels.
    """
    refined = np.asarray(refined)
    if refined.ndim != 2:
        raise ValueError(f'refined must be an (H, W) mask, got shape {refined.shape}')
    base = grey_canvas(refined.shape) if image is None else image
    entries = [(coarse, COARSE_COLOR, 'coarse'), (refined, REFINED_COLOR, 'refined'),
               (gt, GT_COLOR, 'ground truth')]
    entries = [e for e in entries if e[0] is not None]
    titles = list(titles) if titles is not None else [e[2] for e in entries]
    if len(titles) != len(entries):
        raise ValueError(f'{len(entries)} panels but {len(titles)} titles: {titles}')
    panels = [
        _titled(_fit(overlay(base, mask, color), max_size), title)
        for (mask, color, _), title in zip(entries, titles)
    ]
    return np.concatenate(panels, axis=1)
