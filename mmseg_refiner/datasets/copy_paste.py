"""Copy-paste composites: a ground-truth object blended onto another photo's background.

Only two training sets exist (people, hair); pasting their objects at random scales and
places onto each other's photos gives the refiner new object / background pairs, where the
only cue to the boundary is the object itself (the background's own objects are background
now). A pasted edge that is sharper or blurrier than the photo around it would be a
give-away the refiner learns to look for, so the paste matches the background's blur:
:func:`estimate_blur_sigma` measures it, the object is blurred up to it and the alpha matte
is feathered with a Gaussian of about the same sigma.
"""
import math
from typing import Sequence, Tuple

import cv2
import numpy as np

from mmseg_refiner.inference.crops import mask_to_box
from mmseg_refiner.registry import DATASETS

from .generated import GeneratedDataset


def _grad_mag(gray: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def estimate_blur_sigma(img: np.ndarray, reblur: float = 1.0, quantile: float = 0.9,
                        min_grad: float = 40.0) -> float:
    """Gaussian blur sigma (pixels) of the edges of ``img``, by the re-blur gradient ratio.

    A step edge blurred with sigma ``s`` has a gradient peak proportional to ``1 / s``;
    blurred again with ``reblur`` it drops to ``1 / sqrt(s^2 + reblur^2)``, so the ratio R of
    the two peaks gives ``s = reblur / sqrt(R^2 - 1)`` (Zhuo and Sim, "Defocus map estimation
    from a single image", 2011). The median over the strongest edge ridges (local maxima of
    the gradient magnitude above the ``quantile`` and ``min_grad``) is returned; a perfectly
    sharp edge reads about 0.6 (the Sobel operator's own smoothing).

    Args:
        img (np.ndarray): (H, W) or (H, W, 3) uint8 image.
        reblur (float): Sigma of the second blur. Defaults to 1.0.
        quantile (float): Edge-strength quantile that selects edges. Defaults to 0.9.
        min_grad (float): Smallest Sobel magnitude counted as an edge. Defaults to 40.

    Returns:
        float: The sigma, 0.0 when the image has no edges to measure.
    """
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    gray = gray.astype(np.float32)
    mag = _grad_mag(gray)
    ridge = (mag >= cv2.dilate(mag, np.ones((3, 3), np.uint8))) & (mag >= min_grad)
    if not ridge.any():
        return 0.0
    ridge &= mag >= np.quantile(mag[ridge], quantile)
    ratio = mag[ridge] / np.maximum(_grad_mag(cv2.GaussianBlur(gray, (0, 0), reblur))[ridge], 1e-6)
    ratio = ratio[ratio > 1.001]
    if ratio.size == 0:
        return 0.0
    return float(np.median(reblur / np.sqrt(ratio**2 - 1)))


def _scale_for(obj_wh: Tuple[int, int], bg_hw: Tuple[int, int], rng: np.random.Generator,
               scale_range: Tuple[float, float], max_upscale: float) -> float:
    """Scale that makes the object's long side a log-uniform fraction of the background."""
    frac = math.exp(rng.uniform(math.log(scale_range[0]), math.log(scale_range[1])))
    scale = frac * min(bg_hw) / max(obj_wh)
    fit = min(bg_hw[0] / obj_wh[1], bg_hw[1] / obj_wh[0])
    return min(scale, max_upscale, fit)


def _cut_object(img: np.ndarray, mask: np.ndarray, margin: int):
    """The object's box with ``margin`` pixels of context: (image patch, mask patch)."""
    x0, y0, x1, y1 = mask_to_box(mask > 0)
    h, w = mask.shape
    x0, y0 = max(0, x0 - margin), max(0, y0 - margin)
    x1, y1 = min(w, x1 + margin), min(h, y1 + margin)
    return img[y0:y1, x0:x1], mask[y0:y1, x0:x1]


def paste_object(bg: np.ndarray, fg_img: np.ndarray, fg_mask: np.ndarray, rng: np.random.Generator,
                 scale_range: Tuple[float, float] = (0.2, 0.9), max_upscale: float = 2.0,
                 feather_range: Tuple[float, float] = (0.7, 1.3), min_feather: float = 0.4,
                 margin: int = 8) -> Tuple[np.ndarray, np.ndarray]:
    """Blend the object of ``fg_mask`` onto ``bg`` at a random scale and position.

    1. Cut the object's box (with ``margin`` px of context) and scale it so its long side
       is a log-uniform fraction ``scale_range`` of the background's short side (at most
       ``max_upscale`` times its size and never larger than the background).
    2. Place it uniformly at random, inside the background.
    3. Match the blur: with ``s_bg`` / ``s_fg`` from :func:`estimate_blur_sigma` (the
       background under the paste, the scaled object), blur the object by
       ``sqrt(s_bg^2 - s_fg^2)`` when the background is blurrier, and feather the alpha
       matte (the binary mask) with a Gaussian of sigma ``max(s_bg, min_feather)`` times a
       factor drawn from ``feather_range``.
    4. ``img = alpha * object + (1 - alpha) * background``; the ground truth is the scaled
       binary mask (alpha >= 0.5 up to the feathering's rounding of sharp corners).

    Args:
        bg (np.ndarray): (H, W, 3) uint8 BGR background (not modified).
        fg_img (np.ndarray): (h, w, 3) uint8 BGR image of the object.
        fg_mask (np.ndarray): (h, w) 0/1 mask of the object (not empty).
        rng (np.random.Generator): Random source.

    Returns:
        tuple: (image (H, W, 3) uint8, ground truth (H, W) uint8 0/1).
    """
    patch, mask = _cut_object(fg_img, fg_mask, margin)
    scale = _scale_for((patch.shape[1], patch.shape[0]), bg.shape[:2], rng, scale_range,
                       max_upscale)
    pw, ph = max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(patch, (pw, ph), interpolation=interp).astype(np.float32)
    mask = (cv2.resize(mask.astype(np.float32), (pw, ph), interpolation=cv2.INTER_LINEAR)
            >= 0.5).astype(np.uint8)
    h, w = bg.shape[:2]
    x, y = int(rng.integers(w - pw + 1)), int(rng.integers(h - ph + 1))
    region = bg[y:y + ph, x:x + pw].astype(np.float32)
    s_bg = estimate_blur_sigma(bg[max(0, y - ph // 2):y + ph + ph // 2,
                                  max(0, x - pw // 2):x + pw + pw // 2])
    s_fg = estimate_blur_sigma(patch.astype(np.uint8))
    if s_bg > s_fg + 0.05:
        patch = cv2.GaussianBlur(patch, (0, 0), math.sqrt(s_bg**2 - s_fg**2))
    sigma = max(s_bg, min_feather) * rng.uniform(*feather_range)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)[..., None]
    out = bg.copy()
    out[y:y + ph, x:x + pw] = np.clip(alpha * patch + (1 - alpha) * region + 0.5, 0, 255)
    gt = np.zeros((h, w), np.uint8)
    gt[y:y + ph, x:x + pw] = mask
    return out, gt


@DATASETS.register_module()
class CopyPasteDataset(GeneratedDataset):
    """Composites: an object of one source sample pasted onto another sample's image.

    Each sample draws a foreground item and a different background item from ``sources``
    (image + mask datasets, e.g. the people and hair training splits) and calls
    :func:`paste_object`. Use the samples like loaded ones: the pipeline starts after
    loading (crop around the object, flip, coarse mask, pack).

    Added Keys:

    - img (np.uint8 (H, W, 3), BGR; the background's size), gt_mask (np.uint8 (H, W) 0/1)
    - img_path (the foreground's), bg_path, sample_key, sample_idx, img_shape, ori_shape

    Args:
        length (int): Samples per epoch.
        sources (Sequence[dict]): Image + mask datasets (at least two samples in all).
        scale_range (tuple[float, float]): Object long side / background short side.
            Defaults to (0.2, 0.9).
        max_upscale (float): Largest enlargement of the object. Defaults to 2.0.
        feather_range (tuple[float, float]): Factor on the feathering sigma.
            Defaults to (0.7, 1.3).
        **kwargs: :class:`~mmseg_refiner.datasets.generated.GeneratedDataset` arguments
            (seed, max_side, cache_mb, pipeline, ...).
    """

    def __init__(self, length: int, sources: Sequence[dict],
                 scale_range: Tuple[float, float] = (0.2, 0.9), max_upscale: float = 2.0,
                 feather_range: Tuple[float, float] = (0.7, 1.3), **kwargs):
        if not 0 < scale_range[0] <= scale_range[1] <= 1:
            raise ValueError(f'scale_range must satisfy 0 < low <= high <= 1, got {scale_range}')
        self.paste_kwargs = dict(scale_range=tuple(scale_range), max_upscale=max_upscale,
                                 feather_range=tuple(feather_range))
        super().__init__(length, sources=sources, **kwargs)

    def load_data_list(self):
        data_list = super().load_data_list()
        if len(self.items) < 2:
            raise ValueError(f'CopyPasteDataset needs at least 2 source samples, '
                             f'got {len(self.items)}')
        return data_list

    def generate(self, rng: np.random.Generator) -> dict:
        fi = int(rng.integers(len(self.items)))
        bi = int(rng.integers(len(self.items) - 1))
        bi += bi >= fi  # a different item
        fg_img, fg_mask = self.read_item(fi)
        bg, _ = self.read_item(bi, with_mask=False)
        if not fg_mask.any():  # nothing to paste: the foreground sample as it is
            img, gt = np.array(fg_img), np.array(fg_mask)
        else:
            img, gt = paste_object(bg, fg_img, fg_mask, rng, **self.paste_kwargs)
        return dict(img=img, gt_mask=gt, img_path=self.items[fi]['img_path'],
                    bg_path=self.items[bi]['img_path'])
