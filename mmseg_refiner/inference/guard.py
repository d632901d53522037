"""Growth guard: keep refinement from damaging masks that were already good.

Users of the reference report refined masks that grow regions the coarse mask never had.
The guard confines every change to a band around the coarse mask's boundary whose width
scales with the object (``band_ratio`` x the diagonal of the coarse mask's box, at least
``min_band`` px), and can forbid new connected components that do not touch the coarse mask.

Defaults (``DEFAULT_GUARD``): ``band_ratio=0.05`` and ``min_band=4``: a 400x600 px person may
move its boundary by up to ~36 px, enough for the errors of an x8 low-resolution mask or a
polygon outline, while a wrong blob across the image cannot appear. Set ``test_cfg.guard=None``
(API: ``guard=False``) for the reference behaviour.

:func:`guard_masks` is what the API calls: thresholded refiner masks in, the final masks and
the map of pixels the guard put back to their coarse value out.
"""
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from mmseg_refiner.inference.crops import mask_to_box

DEFAULT_GUARD = dict(band_ratio=0.05, min_band=4, drop_new_components=True, undo_overflow=True)


def boundary_distance(coarse: np.ndarray) -> np.ndarray:
    """Float (H, W): each pixel's L2 distance to the nearest pixel of the other class of the
    bool mask ``coarse`` (exact 5x5 mask; 1 next to the boundary)."""
    m = coarse.astype(np.uint8)
    d_in = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_out = cv2.distanceTransform(1 - m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(coarse, d_in, d_out)


def boundary_band(coarse: np.ndarray, width: float) -> np.ndarray:
    """Bool (H, W): pixels within ``width`` px of the boundary of the bool mask ``coarse``."""
    return boundary_distance(coarse) <= width


def undo_overflowing_changes(refined: np.ndarray, coarse: np.ndarray, dist: np.ndarray,
                             width: float) -> np.ndarray:
    """Undo whole changed regions that reach beyond the band.

    A connected region of added (or removed) pixels that extends further than ``width`` px
    from the coarse boundary is not a boundary correction: it is a neighbouring object being
    annexed (or a part being cut away). Cutting it at the band edge would keep a wrong lump,
    so the whole region goes back to the coarse mask.
    """
    out = refined.copy()
    for changed in (refined & ~coarse, coarse & ~refined):
        n, labels = cv2.connectedComponents(changed.astype(np.uint8), connectivity=8)
        if n < 2:
            continue
        far = np.unique(labels[changed & (dist > width)])
        undo = np.isin(labels, far[far > 0])
        out[undo] = coarse[undo]
    return out


def band_width(coarse: np.ndarray, band_ratio: float, min_band: float) -> float:
    box = mask_to_box(coarse)
    if box is None:
        return 0.0
    diag = float(np.hypot(box[2] - box[0], box[3] - box[1]))
    return max(float(min_band), band_ratio * diag)


def drop_detached_components(refined: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Remove connected components of ``refined`` that share no pixel with ``coarse``."""
    n, labels = cv2.connectedComponents(refined.astype(np.uint8), connectivity=8)
    if n <= 2:
        return refined if n < 2 or (coarse & refined).any() else np.zeros_like(refined)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[coarse & refined])] = True
    keep[0] = False
    return keep[labels]


def apply_guard(refined: np.ndarray, coarse: np.ndarray, band_ratio: float = 0.05,
                min_band: float = 4, drop_new_components: bool = True,
                undo_overflow: bool = True) -> np.ndarray:
    """Confine the changes ``coarse -> refined`` (bool (H, W)) to the boundary band.

    Returns a bool (H, W) mask equal to ``coarse`` outside the band; with ``undo_overflow``,
    changed regions that reach beyond the band are undone entirely (not cut at the band);
    with ``drop_new_components``, components that do not touch ``coarse`` are removed.
    An empty coarse mask yields an empty result.
    """
    if not coarse.any():
        return np.zeros_like(coarse, dtype=bool)
    width = band_width(coarse, band_ratio, min_band)
    dist = boundary_distance(coarse)
    if undo_overflow:
        refined = undo_overflowing_changes(refined, coarse, dist, width)
    out = np.where(dist <= width, refined, coarse)
    return drop_detached_components(out, coarse) if drop_new_components else out


def resolve_guard(guard) -> Optional[dict]:
    """``True``/``None``-like switches to a guard config dict (or ``None`` for off)."""
    if guard is None or guard is False:
        return None
    if guard is True:
        return dict(DEFAULT_GUARD)
    if isinstance(guard, dict):
        unknown = set(guard) - set(DEFAULT_GUARD)
        if unknown:
            raise KeyError(f'unknown guard keys {sorted(unknown)}; valid: {sorted(DEFAULT_GUARD)}')
        return {**DEFAULT_GUARD, **guard}
    raise TypeError(f'guard must be None, a bool or a dict, got {guard!r}')


@dataclass
class GuardResult:
    """Result of :func:`guard_masks`.

    Attributes:
        mask (ndarray): (N, H, W) bool final masks.
        changed (ndarray): (N, H, W) bool, True where the guard overruled the refiner (the
            pixel went back to its coarse value); all False with the guard off.
    """
    mask: np.ndarray
    changed: np.ndarray


def guard_masks(refined: np.ndarray, coarse: np.ndarray, guard) -> GuardResult:
    """Apply the guard ``guard`` (anything :func:`resolve_guard` takes) to N masks.

    Args:
        refined (ndarray): (N, H, W) bool masks from the refiner (thresholded).
        coarse (ndarray): (N, H, W) bool coarse masks they came from.
        guard (None | bool | dict): The guard's switch or options.

    Returns:
        GuardResult: the final masks and the pixels the guard changed.
    """
    options = resolve_guard(guard)
    if options is None:
        return GuardResult(refined.copy(), np.zeros(refined.shape, bool))
    mask = np.stack([apply_guard(r, c, **options) for r, c in zip(refined, coarse)]) \
        if len(refined) else refined.copy()
    return GuardResult(mask, mask != refined)
