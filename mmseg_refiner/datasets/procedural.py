"""Procedural images with exact masks: random shapes on random textures.

People and hair are two object classes; a refiner that should fix the masks of any object
also needs boundaries it has never seen: straight and curved, convex and concave, thin
structures one to a few pixels wide, holes, hard (in focus) and soft (defocused, motion)
edges, on backgrounds from flat colour to busy texture. :func:`random_shape_mask` draws the
shape, :func:`random_texture` the fill of the object and of the background (or a crop of a
real photo, :class:`ProceduralDataset` ``photo_prob``), and :func:`render_procedural`
composes them. The shape is drawn at ``supersample`` times the size and area-averaged, so
hard edges are anti-aliased like a photo's and the mask (coverage >= 0.5) is exact.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from mmseg_refiner.registry import DATASETS

from .generated import GeneratedDataset

TEXTURES = ('flat', 'gradient', 'stripes', 'noise', 'checker')
SHAPES = ('polygon', 'ellipse', 'blob', 'thin')


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """(h, w) float32 noise in [0, 1] with features about ``cell`` pixels across."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.random((gh, gw)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _ramp(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Coordinate along a random direction, (h, w) float32 in pixels."""
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    return xs * np.cos(angle) + ys * np.sin(angle)


def random_texture(rng: np.random.Generator, h: int, w: int,
                   kinds: Sequence[str] = TEXTURES) -> np.ndarray:
    """An (h, w, 3) float32 BGR texture in [0, 255]: two colours mixed by a pattern.

    Patterns: flat, linear gradient, stripes (soft or hard, period 4-48 px), smooth noise
    (features 2-48 px) and checkerboard (cells 3-32 px); plus pixel noise of std 0-12.
    """
    kind = kinds[int(rng.integers(len(kinds)))]
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == 'flat':
        t = np.zeros((h, w), np.float32)
    elif kind == 'gradient':
        r = _ramp(rng, h, w)
        t = (r - r.min()) / max(float(r.max() - r.min()), 1e-6)
    elif kind == 'stripes':
        t = 0.5 + 0.5 * np.sin(2 * np.pi * _ramp(rng, h, w) / rng.uniform(4, 48) +
                               rng.uniform(0, 2 * np.pi))
        t = (t > 0.5).astype(np.float32) if rng.random() < 0.5 else t
    elif kind == 'noise':
        t = _smooth_noise(rng, h, w, np.exp(rng.uniform(np.log(2), np.log(48))))
    elif kind == 'checker':
        cell = int(rng.integers(3, 33))
        ys, xs = np.mgrid[:h, :w]
        t = ((ys // cell + xs // cell) % 2).astype(np.float32)
    else:
        raise ValueError(f'unknown texture {kind!r}; valid: {TEXTURES}')
    t = t.astype(np.float32, copy=False)
    tex = c1.astype(np.float32) + t[..., None] * (c2 - c1).astype(np.float32)
    noise = rng.standard_normal((h, w, 1 if rng.random() < 0.5 else 3), dtype=np.float32)
    tex += noise * np.float32(rng.uniform(0, 12))
    return np.clip(tex, 0, 255, out=tex)


def _draw_polygon(canvas, rng, cx, cy, r, value):
    n = int(rng.integers(3, 13))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.35, 1.0, n)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], value)


def _draw_ellipse(canvas, rng, cx, cy, r, value):
    axes = (max(1, int(r * rng.uniform(0.3, 1))), max(1, int(r * rng.uniform(0.3, 1))))
    cv2.ellipse(canvas, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, value,
                cv2.FILLED)


def _draw_blob(canvas, rng, cx, cy, r, value, grid=4):
    """A noisy disc: radial falloff plus smooth noise, thresholded (computed on a coarser
    grid and interpolated: the field is smooth, the threshold keeps the edge sharp)."""
    h, w = canvas.shape
    gh, gw = -(-h // grid), -(-w // grid)
    ys, xs = np.mgrid[:gh, :gw].astype(np.float32) * grid
    falloff = 1 - np.sqrt((xs - cx)**2 + (ys - cy)**2) / r
    field = falloff + 0.6 * (_smooth_noise(rng, gh, gw, r * rng.uniform(0.3, 0.8) / grid) - 0.5)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)
    canvas[field > rng.uniform(0.1, 0.4)] = value


def _draw_thin(canvas, rng, cx, cy, r, value, scale=1):
    """A polyline or a curve through random points, 1-4 px (at output scale) wide."""
    n = int(rng.integers(2, 6))
    pts = np.stack([cx + rng.uniform(-r, r, n), cy + rng.uniform(-r, r, n)], 1)
    if rng.random() < 0.5 and n >= 3:  # a smooth curve: interpolate, then moving average
        idx = np.linspace(0, n - 1, 12 * n)
        pts = np.stack([
            np.convolve(np.pad(np.interp(idx, np.arange(n), pts[:, k]), 4, mode='edge'),
                        np.ones(9) / 9, 'valid') for k in range(2)
        ], 1)
    thickness = max(1, int(round(rng.uniform(1, 4) * scale)))
    cv2.polylines(canvas, [np.round(pts).astype(np.int32)], False, value, thickness)


_DRAW = dict(polygon=_draw_polygon, ellipse=_draw_ellipse, blob=_draw_blob, thin=_draw_thin)


def random_shape_mask(rng: np.random.Generator, h: int, w: int, supersample: int = 4,
                      shapes: Sequence[str] = SHAPES, hole_prob: float = 0.2,
                      whisker_prob: float = 0.3) -> np.ndarray:
    """Coverage (h, w) float32 in [0, 1] of a union of 1-3 random shapes.

    Shapes: star-shaped polygons (3-12 vertices), ellipses, noise blobs and thin
    structures (lines / curves 1-4 px wide); with ``hole_prob`` a hole is cut, with
    ``whisker_prob`` 1-3 thin structures are attached. Drawn at ``supersample`` x the size
    and area-averaged.
    """
    s = supersample
    canvas = np.zeros((h * s, w * s), np.uint8)
    size = min(h, w) * s
    for _ in range(int(rng.integers(1, 4))):
        kind = shapes[int(rng.integers(len(shapes)))]
        cx, cy = rng.uniform(0.25, 0.75) * w * s, rng.uniform(0.25, 0.75) * h * s
        r = rng.uniform(0.12, 0.4) * size
        args = (canvas, rng, cx, cy, r, 255) + ((s, ) if kind == 'thin' else ())
        _DRAW[kind](*args)
    ys, xs = np.nonzero(canvas)
    if ys.size and rng.random() < hole_prob:
        i = int(rng.integers(ys.size))
        _draw_ellipse(canvas, rng, xs[i], ys[i], rng.uniform(0.03, 0.12) * size, 0)
    if ys.size and rng.random() < whisker_prob:
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(ys.size))
            _draw_thin(canvas, rng, xs[i], ys[i], rng.uniform(0.1, 0.3) * size, 255, s)
    # Area averaging of 0/255 gives the coverage in steps of 1/255.
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def render_procedural(rng: np.random.Generator, size_range: Tuple[int, int] = (192, 384),
                      soft_prob: float = 0.4, soft_sigma: Tuple[float, float] = (0.6, 3.0),
                      camera_blur_prob: float = 0.3, fg: Optional[np.ndarray] = None,
                      bg: Optional[np.ndarray] = None, **shape_kwargs):
    """A procedural image and its exact mask.

    The object (coverage from :func:`random_shape_mask`) is blended over the background
    with the coverage as alpha; with ``soft_prob`` the alpha is blurred (a defocused or
    moving object: sigma from ``soft_sigma``) while the mask stays the sharp shape; with
    ``camera_blur_prob`` the whole image gets a light blur (sigma 0.3-1.2).

    Args:
        rng (np.random.Generator): Random source.
        size_range (tuple[int, int]): Side lengths (px), drawn per side. Defaults to
            (192, 384).
        fg, bg (np.ndarray, optional): (H, W, 3) float32 fills of the object / background
            (any size; resized); None draws :func:`random_texture`.

    Returns:
        tuple: (image (H, W, 3) uint8 BGR, mask (H, W) uint8 0/1).
    """
    h, w = (int(rng.integers(size_range[0], size_range[1] + 1)) for _ in range(2))
    cover = random_shape_mask(rng, h, w, **shape_kwargs)
    mask = (cover >= 0.5).astype(np.uint8)
    fills = [
        random_texture(rng, h, w) if t is None else cv2.resize(t,
                                                               (w,
                                                                h), interpolation=cv2.INTER_LINEAR)
        for t in (fg, bg)
    ]
    alpha = cover
    if rng.random() < soft_prob:
        alpha = cv2.GaussianBlur(cover, (0, 0), rng.uniform(*soft_sigma))
    img = alpha[..., None] * fills[0] + (1 - alpha[..., None]) * fills[1]
    if rng.random() < camera_blur_prob:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), mask


@DATASETS.register_module()
class ProceduralDataset(GeneratedDataset):
    """Procedural images (random shapes on random textures) with exact masks.

    With ``sources`` (image + mask datasets) and probability ``photo_prob`` per fill, the
    object or the background is filled with a random crop of a real photo instead of a
    synthetic texture: the shape then is the only boundary cue, on natural image content.

    Added Keys:

    - img (np.uint8 (H, W, 3), BGR), gt_mask (np.uint8 (H, W) 0/1)
    - img_path (``'ProceduralDataset/<idx>'``), sample_key, sample_idx, img_shape, ori_shape

    Args:
        length (int): Samples per epoch.
        sources (Sequence[dict]): Datasets whose photos may fill shapes. Defaults to ().
        photo_prob (float): Probability that a fill is a photo crop. Defaults to 0.3.
        render_cfg (dict, optional): Keyword arguments of :func:`render_procedural`.
        **kwargs: :class:`~mmseg_refiner.datasets.generated.GeneratedDataset` arguments.
    """

    def __init__(self, length: int, sources: Sequence[dict] = (), photo_prob: float = 0.3,
                 render_cfg: Optional[dict] = None, **kwargs):
        if not 0 <= photo_prob <= 1:
            raise ValueError(f'photo_prob must be in [0, 1], got {photo_prob}')
        self.photo_prob = photo_prob if sources else 0.0
        self.render_cfg = dict(render_cfg or {})
        super().__init__(length, sources=sources, **kwargs)

    def _photo_crop(self, rng: np.random.Generator) -> np.ndarray:
        img, _ = self.read_item(int(rng.integers(len(self.items))), with_mask=False)
        h, w = img.shape[:2]
        ch, cw = (int(n * rng.uniform(0.2, 0.8)) + 1 for n in (h, w))
        y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        return img[y:y + ch, x:x + cw].astype(np.float32)

    def generate(self, rng: np.random.Generator) -> dict:
        fills = [
            self._photo_crop(rng) if self.items and rng.random() < self.photo_prob else None
            for _ in range(2)
        ]
        img, mask = render_procedural(rng, fg=fills[0], bg=fills[1], **self.render_cfg)
        return dict(img=img, gt_mask=mask)
