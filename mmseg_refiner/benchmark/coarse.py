"""Deterministic coarse masks of the quality benchmark (three kinds of realistic errors)."""
import numpy as np

from mmseg_refiner.utils.rng import keyed_generator

COARSE_KINDS = ('lowres', 'polygon', 'perturb')
LOWRES_FACTOR = 8  # 'lowres': area down-sampling x8, bilinear up-sampling, threshold 0.5
POLYGON_EPS = 0.01  # 'polygon': Douglas-Peucker tolerance, fraction of each contour's length
PERTURB_IOU = 0.8  # 'perturb': the reference training perturbation's IoU target


def _rng(seed: int, sample_id: str, kind: str) -> np.random.Generator:
    """One generator per (seed, sample, kind): results do not depend on the order or limit.

    The stream is the one of the former ``default_rng([seed, crc32(f'{kind}/{sample_id}')])``
    (:func:`keyed_generator` turns a string into its CRC-32), so cached coarse masks stay valid.
    """
    return keyed_generator(seed, f'{kind}/{sample_id}')


def make_coarse(gt: np.ndarray, kind: str, seed: int = 0, sample_id: str = '') -> np.ndarray:
    """A deterministic coarse version of a ground-truth mask.

    Kinds: ``lowres`` (x8 area down-sampling, bilinear up-sampling, threshold 0.5),
    ``polygon`` (Douglas-Peucker simplification of every contour with a tolerance of 1 % of
    its length) and ``perturb`` (the training perturbation of
    :func:`~mmseg_refiner.datasets.coarse_synthesis.synthesize_coarse` in 'reference' mode:
    contour modification then dilate/erode rounds until the IoU drops below 0.8), seeded by
    ``(seed, sample_id, kind)``.

    Args:
        gt (np.ndarray): (H, W) ground truth, non-zero = foreground.
        kind (str): One of :data:`COARSE_KINDS`.
        seed (int): Base seed. Defaults to 0.
        sample_id (str): The sample's id (part of the seed). Defaults to ''.

    Returns:
        np.ndarray: (H, W) bool.
    """
    from mmseg_refiner.datasets import coarse_synthesis as cs
    gt = (np.asarray(gt) > 0).astype(np.uint8)
    rng = _rng(seed, sample_id, kind)
    if kind == 'lowres':
        out = cs.degrade_lowres(gt, rng, factor_range=(LOWRES_FACTOR, LOWRES_FACTOR))
    elif kind == 'polygon':
        out = cs.degrade_polygon(gt, rng, eps_range=(POLYGON_EPS, POLYGON_EPS))
    elif kind == 'perturb':
        out = cs.synthesize_coarse(gt, rng, iou_target=PERTURB_IOU, mode='reference')[0]
    else:
        raise ValueError(f'unknown coarse kind {kind!r}; choose from {COARSE_KINDS}')
    return out > 0
