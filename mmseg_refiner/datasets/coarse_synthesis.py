"""Synthetic coarse masks: what a segmentation model might have predicted for a ground truth.

The reference SegRefiner makes its training inputs with CascadePSP's boundary perturbation:
contour modification (:func:`modify_boundary`) followed by random dilate/erode rounds until
the IoU with the ground truth drops below a target (:func:`perturb_until`). We add the
degradations real models produce: down-then-up sampling (:func:`degrade_lowres`), polygon
simplification (:func:`degrade_polygon`), blur-threshold (:func:`degrade_blur`), holes /
islands (:func:`degrade_holes_islands`), filled concavities (:func:`degrade_hull`: the wedge
of background between a head and a helmet), a uniformly grown or shrunk outline
(:func:`degrade_morph`) and a smoothly jittered boundary (:func:`degrade_jitter`).
:func:`synthesize_coarse` combines them;
:func:`fill_outer_contours` makes the source of the reference's "expanded" HR coarse masks.

All functions take and return uint8 0/1 (H, W) arrays and draw every random number from an
explicit ``np.random.Generator``.
"""
import math
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from mmseg_refiner.utils.masks import mask_iou

FloatRange = Tuple[float, float]  # (low, high) of a uniformly drawn parameter
IntRange = Tuple[int, int]

DEGRADATIONS = ('reference', 'lowres', 'polygon', 'blur', 'holes_islands', 'hull', 'morph',
                'jitter')


def random_kernel(rng: np.random.Generator, size_range: IntRange = (3, 9)) -> np.ndarray:
    """A rect, ellipse or half-ellipse structuring element of side ``size_range`` (inclusive)."""
    size = int(rng.integers(size_range[0], size_range[1] + 1))
    shapes = [(cv2.MORPH_RECT, (size, size)), (cv2.MORPH_ELLIPSE, (size, size)),
              (cv2.MORPH_ELLIPSE, (size, max(1, size // 2))),
              (cv2.MORPH_ELLIPSE, (max(1, size // 2), size))]
    shape, ksize = shapes[int(rng.integers(len(shapes)))]
    return cv2.getStructuringElement(shape, ksize)


def _remove_and_sample(contour: np.ndarray, rng: np.random.Generator, regional_rate: float,
                       sample_rate: float) -> np.ndarray:
    """Drop a run of ``regional_rate`` of the points at a narrow place, keep ``sample_rate``.

    Args:
        contour (np.ndarray): (N, 1, 2) int32 contour points.

    Returns:
        np.ndarray: (M, 1, 2) int32 points of the simplified polygon (M may be 0).
    """
    n = contour.shape[0]
    k = int(n * regional_rate)
    # Narrow places: where point i and point i+k are close (a short chord cuts off a bulge).
    dist = ((contour[:n - k, 0] - contour[k:, 0]).astype(np.int64)**2).sum(-1)
    candidates = np.argsort(dist, kind='stable')[:max(1, math.ceil(0.1 * len(dist)))]
    start = int(candidates[rng.integers(len(candidates))])
    contour = np.concatenate([contour[:start], contour[start + k:]], axis=0)
    keep = np.sort(rng.choice(contour.shape[0], int(contour.shape[0] * sample_rate),
                              replace=False))
    return contour[keep]


def modify_boundary(gt: np.ndarray, rng: np.random.Generator, regional_rate: float = 0.1,
                    sample_rate: float = 0.1, min_points: int = 10) -> np.ndarray:
    """The reference's contour modification (CascadePSP ``modify_boundary``, move rate 0).

    Every contour with at least ``min_points`` points loses a run of ``regional_rate`` of its
    points at a narrow place, then keeps a random ``sample_rate`` of the rest; the polygons
    are redrawn filled (holes are filled too, as in the reference).

    Args:
        gt (np.ndarray): (H, W) uint8 0/1 mask.
        rng (np.random.Generator): Random source.

    Returns:
        np.ndarray: (H, W) uint8 0/1 mask; a copy of ``gt`` when no contour qualifies.
    """
    contours, _ = cv2.findContours(gt.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    polygons = [
        _remove_and_sample(c, rng, regional_rate, sample_rate) for c in contours
        if c.shape[0] >= min_points
    ]
    polygons = [p for p in polygons if len(p) > 0]
    if not polygons:
        return (gt > 0).astype(np.uint8)
    out = np.zeros(gt.shape[:2], np.uint8)
    return cv2.drawContours(out, polygons, -1, 1, thickness=cv2.FILLED)


def _random_rect(rng: np.random.Generator, h: int, w: int) -> Tuple[int, int, int, int]:
    """Reference rectangle: a random corner, then a far corner uniform in what is left."""
    x0, y0 = int(rng.integers(w)), int(rng.integers(h))
    return x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))


def perturb_round(seg: np.ndarray, rng: np.random.Generator, num_rects: int = 4,
                  kernel_range: IntRange = (3, 9), flip_prob: float = 0.25) -> None:
    """One in-place round of the reference perturbation on an (H, W) uint8 0/1 mask.

    ``num_rects`` random rectangles are each dilated or eroded with a random kernel; with
    probability ``flip_prob`` the rectangle's centre pixel is first set to 0 or 1, which the
    dilation / erosion grows into an island or a hole.
    """
    h, w = seg.shape
    for _ in range(num_rects):
        x0, y0, x1, y1 = _random_rect(rng, h, w)
        if rng.random() < flip_prob:
            seg[(y0 + y1) // 2, (x0 + x1) // 2] = rng.integers(2)
        op = cv2.dilate if rng.random() < 0.5 else cv2.erode
        seg[y0:y1, x0:x1] = op(seg[y0:y1, x0:x1], random_kernel(rng, kernel_range))


def perturb_until(seg: np.ndarray, gt: np.ndarray, rng: np.random.Generator, iou_target: float,
                  iou_min: float = 0.0, max_rounds: int = 250, **round_kwargs) -> np.ndarray:
    """Perturb ``seg`` round by round until its IoU with ``gt`` is below ``iou_target``.

    A round that would take the IoU below ``iou_min`` is discarded (the range is kept on
    objects where one round can change a lot), so the result lands in
    ``[iou_min, iou_target)`` unless ``max_rounds`` run out first (very small objects).

    Args:
        seg (np.ndarray): (H, W) uint8 0/1 starting mask (not modified).
        gt (np.ndarray): (H, W) uint8 0/1 ground truth.
        rng (np.random.Generator): Random source.
        iou_target (float): Stop once IoU < this.
        iou_min (float): Reject rounds going below this. Defaults to 0.
        max_rounds (int): Round budget (the reference's 250). Defaults to 250.
        **round_kwargs: Passed to :func:`perturb_round`.

    Returns:
        np.ndarray: (H, W) uint8 0/1 perturbed mask.
    """
    seg = seg.copy()
    if min(seg.shape) <= 2:
        return seg
    for _ in range(max_rounds):
        cand = seg.copy()
        perturb_round(cand, rng, **round_kwargs)
        iou = mask_iou(cand, gt)
        if iou < iou_min:
            continue
        seg = cand
        if iou < iou_target:
            break
    return seg


def degrade_lowres(gt: np.ndarray, rng: np.random.Generator,
                   factor_range: FloatRange = (4, 16)) -> np.ndarray:
    """Down-sample by a random factor (area), up-sample bilinearly, threshold at 0.5."""
    h, w = gt.shape
    factor = math.exp(rng.uniform(math.log(factor_range[0]), math.log(factor_range[1])))
    small = cv2.resize(gt.astype(np.float32),
                       (max(1, round(w / factor)), max(1, round(h / factor))),
                       interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return (up >= 0.5).astype(np.uint8)


def degrade_polygon(gt: np.ndarray, rng: np.random.Generator,
                    eps_range: FloatRange = (0.01, 0.05)) -> np.ndarray:
    """Simplify every contour (outer and hole) with Douglas-Peucker.

    The tolerance is a random fraction ``eps_range`` of each contour's perimeter, like the
    polygon annotations / outputs of polygon-based models.
    """
    contours, hierarchy = cv2.findContours(gt.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_NONE)
    if not contours:
        return (gt > 0).astype(np.uint8)
    frac = rng.uniform(*eps_range)
    approx = [cv2.approxPolyDP(c, frac * cv2.arcLength(c, True), True) for c in contours]
    out = np.zeros(gt.shape, np.uint8)
    # With the CCOMP hierarchy, filled drawing leaves the holes open.
    return cv2.drawContours(out, approx, -1, 1, thickness=cv2.FILLED, hierarchy=hierarchy,
                            maxLevel=1)


def degrade_blur(
    gt: np.ndarray, rng: np.random.Generator, sigma_range: FloatRange = (1.5, 6.0),
    thr_range: FloatRange = (0.3, 0.7)
) -> np.ndarray:
    """Gaussian blur then a random threshold: rounded corners, lost thin parts, shifted edges."""
    sigma = rng.uniform(*sigma_range)
    blurred = cv2.GaussianBlur(gt.astype(np.float32), (0, 0), sigmaX=sigma)
    return (blurred >= rng.uniform(*thr_range)).astype(np.uint8)


def degrade_holes_islands(
    gt: np.ndarray, rng: np.random.Generator, count_range: IntRange = (1, 4),
    radius_frac: FloatRange = (0.02, 0.08)
) -> np.ndarray:
    """Punch elliptical holes inside the object and add islands near it.

    Radii are fractions ``radius_frac`` of the mask's shorter side; blob centres are drawn
    from foreground pixels (holes) or from a background band around the object (islands).
    """
    out = (gt > 0).astype(np.uint8)
    h, w = gt.shape
    band = cv2.dilate(out, np.ones((3, 3), np.uint8), iterations=max(1, min(h, w) // 10)) - out
    for _ in range(int(rng.integers(count_range[0], count_range[1] + 1))):
        hole = rng.random() < 0.5
        ys, xs = np.nonzero(out if hole else band)
        if ys.size == 0:
            continue
        i = int(rng.integers(ys.size))
        axes = tuple(max(1, int(rng.uniform(*radius_frac) * min(h, w))) for _ in range(2))
        cv2.ellipse(out, (int(xs[i]), int(ys[i])), axes, float(rng.uniform(0, 180)), 0, 360,
                    0 if hole else 1, thickness=cv2.FILLED)
    return out


def _ellipse(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def degrade_hull(gt: np.ndarray, rng: np.random.Generator, close_frac: FloatRange = (0.05, 0.3),
                 hull_prob: float = 0.25, keep_prob: float = 0.6) -> np.ndarray:
    """Fill concavities: background wedged into the object becomes foreground.

    With probability ``hull_prob`` the filling is each outer contour's convex hull, else a
    morphological closing with an elliptical kernel whose radius is a random fraction
    ``close_frac`` of the object's size (the square root of its area). Each filled region
    (connected component of what was added) is kept with probability ``keep_prob``, the
    largest always, so some concavities stay open. Models that see an object's outline but
    not its gaps (between a head and a helmet, between arm and body) make this error; the
    refiner must learn to remove wrongly included background.
    """
    gt = (gt > 0).astype(np.uint8)
    if rng.random() < hull_prob:
        contours, _ = cv2.findContours(gt, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        filled = cv2.drawContours(gt.copy(), [cv2.convexHull(c) for c in contours], -1, 1,
                                  thickness=cv2.FILLED)
    else:
        radius = max(1, int(rng.uniform(*close_frac) * math.sqrt(gt.sum())))
        pad = radius + 1  # closing near the border must not see the border as foreground
        padded = cv2.copyMakeBorder(gt, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        filled = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, _ellipse(radius))[pad:-pad, pad:-pad]
    added = (filled > 0) & (gt == 0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(added.astype(np.uint8), 4)
    if count <= 1:
        return gt
    keep = rng.random(count) < keep_prob
    keep[0] = False  # label 0 is everything that was not added
    keep[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))] = True
    return (gt | keep[labels]).astype(np.uint8)


def degrade_morph(gt: np.ndarray, rng: np.random.Generator,
                  radius_range: IntRange = (1, 6)) -> np.ndarray:
    """Grow or shrink the whole outline (dilate or erode, even odds) by a random radius."""
    radius = int(rng.integers(radius_range[0], radius_range[1] + 1))
    op = cv2.dilate if rng.random() < 0.5 else cv2.erode
    return op((gt > 0).astype(np.uint8), _ellipse(radius))


def degrade_jitter(
    gt: np.ndarray, rng: np.random.Generator, amp_range: FloatRange = (1.0, 4.0),
    scale_range: FloatRange = (4.0, 16.0)
) -> np.ndarray:
    """Move the boundary by a smooth random displacement field (a wobbly outline).

    The field is white noise blurred with a Gaussian of sigma ``scale_range`` (pixels, the
    wobble's length scale), normalised to a standard deviation of ``amp_range`` pixels.
    """
    h, w = gt.shape
    amp, scale = rng.uniform(*amp_range), rng.uniform(*scale_range)
    field = rng.standard_normal((2, h, w)).astype(np.float32)
    for i in range(2):
        field[i] = cv2.GaussianBlur(field[i], (0, 0), sigmaX=scale)
        field[i] *= amp / max(float(field[i].std()), 1e-6)
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    moved = cv2.remap((gt > 0).astype(np.float32), xs + field[0], ys + field[1],
                      interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return (moved >= 0.5).astype(np.uint8)


def fill_outer_contours(gt: np.ndarray) -> np.ndarray:
    """The reference's "expanded" source: every outer contour of ``gt`` drawn filled.

    Holes and gaps inside an object's outline (between hair strands, wires, chair legs)
    become foreground, like a model that misses thin structures.
    """
    contours, _ = cv2.findContours((gt > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros(gt.shape[:2], np.uint8)
    return cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)


_DEGRADE_FNS = dict(lowres=degrade_lowres, polygon=degrade_polygon, blur=degrade_blur,
                    holes_islands=degrade_holes_islands, hull=degrade_hull, morph=degrade_morph,
                    jitter=degrade_jitter)


def degrade(gt: np.ndarray, rng: np.random.Generator, mode: str,
            mode_kwargs: Optional[Dict] = None) -> np.ndarray:
    """One degradation of :data:`DEGRADATIONS` (not 'reference') applied to binary ``gt``."""
    if mode not in _DEGRADE_FNS:
        raise ValueError(f'unknown degradation {mode!r}; valid: {sorted(_DEGRADE_FNS)}')
    return _DEGRADE_FNS[mode]((gt > 0).astype(np.uint8), rng, **(mode_kwargs or {}))


def synthesize_coarse(gt: np.ndarray, rng: np.random.Generator, iou_target: float,
                      iou_min: float = 0.0, mode: str = 'reference',
                      mode_kwargs: Optional[Dict] = None, boundary_modify: bool = True,
                      **perturb_kwargs) -> Tuple[np.ndarray, float, str]:
    """A coarse mask for ``gt`` whose IoU with it lies in ``[iou_min, iou_target)``.

    ``mode='reference'`` starts from :func:`modify_boundary` (when ``boundary_modify``);
    other modes start from their degradation. A start already below ``iou_min`` is replaced by
    the reference start (mode reported as ``'reference'``) and, failing that, by ``gt``. Then
    :func:`perturb_until` runs until the IoU is below ``iou_target``.

    Args:
        gt (np.ndarray): (H, W) binary ground truth.
        rng (np.random.Generator): Random source.
        iou_target (float): Upper bound (exclusive) of the IoU.
        iou_min (float): Lower bound. Defaults to 0.
        mode (str): One of :data:`DEGRADATIONS`. Defaults to 'reference'.
        mode_kwargs (dict, optional): Keyword arguments of the degradation function.
        boundary_modify (bool): Use the contour modification in 'reference' mode.
            Defaults to True.
        **perturb_kwargs: Passed to :func:`perturb_until` / :func:`perturb_round`.

    Returns:
        tuple: (coarse (H, W) uint8 0/1, its IoU with ``gt``, the mode actually used).
    """
    if mode not in DEGRADATIONS:
        raise ValueError(f'unknown coarse-mask mode {mode!r}; valid: {DEGRADATIONS}')
    gt = (gt > 0).astype(np.uint8)
    if not gt.any():
        return gt.copy(), 1.0, 'empty'
    start = None
    if mode != 'reference':
        start = degrade(gt, rng, mode, mode_kwargs)
        if mask_iou(start, gt) < iou_min:
            start, mode = None, 'reference'
    if start is None and boundary_modify:
        start = modify_boundary(gt, rng)
    if start is None or mask_iou(start, gt) < iou_min:
        start = gt
    coarse = perturb_until(start, gt, rng, iou_target, iou_min, **perturb_kwargs)
    return coarse, mask_iou(coarse, gt), mode
