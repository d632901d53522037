"""GenerateCoarseMask: online synthesis of the refiner's coarse input from the ground truth."""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg_refiner.datasets.coarse_synthesis import (DEGRADATIONS, degrade, fill_outer_contours,
                                                     synthesize_coarse)
from mmseg_refiner.registry import TRANSFORMS
from mmseg_refiner.utils.masks import mask_iou

from .rng import SampleRNG

DEFAULT_MODE_PROBS = dict(reference=0.6, lowres=0.1, polygon=0.1, blur=0.1, holes_islands=0.1)


@TRANSFORMS.register_module()
class GenerateCoarseMask(BaseTransform):
    """Make a coarse mask from the ground truth with an IoU in a target range.

    Per sample: an IoU target is drawn uniformly from ``iou_range``, a mode from
    ``mode_probs`` (the reference's boundary modification, or one of the degradations
    ``lowres`` / ``polygon`` / ``blur`` / ``holes_islands`` / ``hull`` / ``morph`` /
    ``jitter``), then random dilate/erode rounds
    run until the IoU is below the target (see
    :func:`~mmseg_refiner.datasets.coarse_synthesis.synthesize_coarse`). The reference uses
    one target, 0.8 (``iou_range=(0.8, 0.8)``: no lower bound), on full images; place this
    transform after the crop so it works on 256x256 arrays (fast).

    Required Keys:

    - ``src_key`` (np.uint8 (H, W) 0/1; default 'gt_mask')

    Added Keys:

    - ``dst_key`` (np.uint8 (H, W) 0/1; default 'coarse_mask')
    - coarse_iou (float), coarse_mode (str)

    Args:
        iou_range (tuple[float, float]): Range of the per-sample IoU target.
            Defaults to (0.6, 0.9).
        mode_probs (dict[str, float]): Mode -> weight (normalized). Defaults to
            ``DEFAULT_MODE_PROBS``.
        mode_kwargs (dict[str, dict], optional): Mode -> kwargs of its degradation function.
        boundary_modify (bool): Contour modification in 'reference' mode. Defaults to True.
        max_rounds (int): Perturbation rounds. Defaults to 250.
        kernel_range (tuple[int, int]): Dilate/erode kernel sizes. Defaults to (3, 9).
        expand_prob (float): Probability of the reference's "expanded" variant: the source
            is the mask with its outer contours filled (:func:`fill_outer_contours`), and
            the IoU target applies to that filled mask (mode 'expanded'). Defaults to 0.
        keep_existing (bool): Leave an already present ``dst_key`` (an offline coarse mask)
            untouched. Defaults to True.
        src_key (str): Defaults to 'gt_mask'.
        dst_key (str): Defaults to 'coarse_mask'.
        seed (int, optional): See :mod:`~mmseg_refiner.datasets.transforms.rng`.
            Defaults to None (OS entropy).
        fixed_per_sample (bool): Same coarse mask for a sample at every load (validation).
            Defaults to False.
        clean_prob (float): Probability of a *clean* sample: the degradation alone, without
            the perturbation rounds and without the IoU target (mode reported as
            ``'<mode>-clean'``). Real models' masks are often already good (a low-resolution
            mask at 0.98 IoU); a refiner that never sees such inputs learns to change every
            boundary. Defaults to 0 (no extra random draw: earlier seeds replay unchanged).
        clean_modes (dict[str, float], optional): Mode -> weight for clean samples (degradation
            modes only, not 'reference'). Defaults to lowres/polygon/blur equally.
        clean_mode_kwargs (dict[str, dict], optional): Mode -> kwargs of the degradation for
            clean samples (e.g. a milder ``factor_range`` for lowres). Defaults to
            ``mode_kwargs``.
    """

    def __init__(self, iou_range: Sequence[float] = (0.6, 0.9),
                 mode_probs: Optional[Dict[str, float]] = None,
                 mode_kwargs: Optional[Dict[str, dict]] = None, boundary_modify: bool = True,
                 max_rounds: int = 250, kernel_range: Tuple[int, int] = (3, 9),
                 expand_prob: float = 0.0, keep_existing: bool = True, src_key: str = 'gt_mask',
                 dst_key: str = 'coarse_mask', seed: Optional[int] = None,
                 fixed_per_sample: bool = False, clean_prob: float = 0.0,
                 clean_modes: Optional[Dict[str, float]] = None,
                 clean_mode_kwargs: Optional[Dict[str, dict]] = None):
        lo, hi = (float(v) for v in iou_range)
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f'iou_range must satisfy 0 <= low <= high <= 1, got {iou_range}')
        self.iou_range = (lo, hi)
        self.modes, self.probs = self._parse_modes(mode_probs or DEFAULT_MODE_PROBS)
        self.mode_kwargs = mode_kwargs or {}
        self.boundary_modify = boundary_modify
        self.perturb_kwargs = dict(max_rounds=max_rounds, kernel_range=tuple(kernel_range))
        if not 0 <= expand_prob <= 1:
            raise ValueError(f'expand_prob must be in [0, 1], got {expand_prob}')
        self.expand_prob = expand_prob
        if not 0 <= clean_prob <= 1:
            raise ValueError(f'clean_prob must be in [0, 1], got {clean_prob}')
        self.clean_prob = clean_prob
        self.clean_modes, self.clean_probs = self._parse_modes(
            clean_modes or dict(lowres=1.0, polygon=1.0, blur=1.0))
        if 'reference' in self.clean_modes:
            raise ValueError("clean_modes cannot hold 'reference' (it is not a degradation)")
        self.clean_mode_kwargs = self.mode_kwargs if clean_mode_kwargs is None \
            else clean_mode_kwargs
        self.keep_existing = keep_existing
        self.src_key, self.dst_key = src_key, dst_key
        self.rng = SampleRNG(seed, fixed_per_sample)

    @staticmethod
    def _parse_modes(mode_probs: Dict[str, float]):
        unknown = set(mode_probs) - set(DEGRADATIONS)
        if unknown:
            raise ValueError(f'unknown mode(s) {sorted(unknown)} in mode_probs; '
                             f'valid: {DEGRADATIONS}')
        weights = np.array([float(v) for v in mode_probs.values()])
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f'mode_probs need non-negative weights with a positive sum, '
                             f'got {mode_probs}')
        return list(mode_probs), weights / weights.sum()

    def transform(self, results: dict) -> dict:
        if self.keep_existing and results.get(self.dst_key) is not None:
            gt = results[self.src_key]
            results.setdefault('coarse_iou', mask_iou(results[self.dst_key], gt))
            results.setdefault('coarse_mode', 'offline')
            return results
        rng = self.rng(results, 'GenerateCoarseMask')
        gt = results[self.src_key]
        if self.clean_prob > 0 and rng.random() < self.clean_prob:
            coarse, used = self._clean(gt, rng)
        else:
            coarse, used = self._perturbed(gt, rng)
        results[self.dst_key] = coarse
        results['coarse_iou'] = float(mask_iou(coarse, gt))
        results['coarse_mode'] = used
        return results

    def _clean(self, gt: np.ndarray, rng: np.random.Generator):
        """A degradation alone: (coarse, '<mode>-clean')."""
        mode = self.clean_modes[int(rng.choice(len(self.clean_modes), p=self.clean_probs))]
        return degrade(gt, rng, mode, self.clean_mode_kwargs.get(mode)), f'{mode}-clean'

    def _perturbed(self, gt: np.ndarray, rng: np.random.Generator):
        """A degradation perturbed into the IoU range: (coarse, mode used)."""
        lo, hi = self.iou_range
        # A degenerate range (lo == hi) is the reference's single target with no lower bound.
        target, iou_min = (rng.uniform(lo, hi), lo) if hi > lo else (hi, 0.0)
        mode = self.modes[int(rng.choice(len(self.modes), p=self.probs))]
        expanded = self.expand_prob > 0 and rng.random() < self.expand_prob
        source = fill_outer_contours(gt) if expanded else gt
        coarse, _, used = synthesize_coarse(source, rng, iou_target=target, iou_min=iou_min,
                                            mode=mode, mode_kwargs=self.mode_kwargs.get(mode),
                                            boundary_modify=self.boundary_modify,
                                            **self.perturb_kwargs)
        return coarse, 'expanded' if expanded else used

    def __repr__(self):
        return (f'{self.__class__.__name__}(iou_range={self.iou_range}, '
                f'modes={dict(zip(self.modes, self.probs.round(3).tolist()))})')
