"""Speed and quality benchmarks of a refiner (``tools/benchmark.py``, ``mmseg-refiner benchmark``).

``speed``: U-Net forward time per input size, batch and dtype with the achieved GFLOP/s
(FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``), end-to-end
:func:`~mmseg_refiner.apis.refine_mask` time per mode against (U-Net calls x U-Net time), and
peak memory.

``quality``: for a folder ``<root>/images/<id>.jpg`` + ``<root>/masks/<id>.png`` (optional
split file of ids), makes deterministic coarse masks of three kinds (:data:`COARSE_KINDS`),
refines them (skipped with ``--coarse-only``) for each refinement variant (growth guard on or
off, fixed schedule or adaptive stopping: :func:`parse_variant`) and number of reverse steps,
and reports per kind and variant: before / after IoU, mBA and Boundary IoU, the share of
images made worse by more than 2 IoU points, mean U-Net calls per mask and seconds per image.
Per-image results are cached in the output folder, so an interrupted run continues where it
stopped.
"""
import argparse
import contextlib
import hashlib
import json
import os
import os.path as osp
import re
import resource
import statistics
import sys
import time
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from mmseg_refiner.evaluation import score_masks
from mmseg_refiner.inference.guard import resolve_guard
from mmseg_refiner.utils.io import InputError, atomic_write

COARSE_KINDS = ('lowres', 'polygon', 'perturb')
LOWRES_FACTOR = 8  # 'lowres': area down-sampling x8, bilinear up-sampling, threshold 0.5
POLYGON_EPS = 0.01  # 'polygon': Douglas-Peucker tolerance, fraction of each contour's length
PERTURB_IOU = 0.8  # 'perturb': the reference training perturbation's IoU target
METRICS = ('IoU', 'mBA', 'BIoU')
WORSE_POINTS = 2.0
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


# ================================================================== speed
class UNetCallCounter:
    """Context manager counting (and timing) the forward calls of a module.

    Attributes:
        calls (int): Forward invocations.
        samples (int): Sum of their batch sizes.
        seconds (float): Wall time inside them (CUDA-synchronized).
    """

    def __init__(self, module: torch.nn.Module):
        self.module, self.calls, self.samples, self.seconds = module, 0, 0, 0.0
        self._handles, self._start = [], 0.0

    def _pre(self, module, inputs):
        _sync(inputs[0].device)
        self._start = time.perf_counter()

    def _post(self, module, inputs, output):
        _sync(inputs[0].device)
        self.seconds += time.perf_counter() - self._start
        self.calls += 1
        self.samples += int(inputs[0].shape[0])

    def __enter__(self):
        self._handles = [self.module.register_forward_pre_hook(self._pre),
                         self.module.register_forward_hook(self._post)]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()


def _sync(device) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def peak_memory_mb(device) -> Dict[str, float]:
    """Peak resident memory of the process (``ru_maxrss``) and, on CUDA, peak allocated."""
    out = dict(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if torch.device(device).type == 'cuda':
        out['peak_cuda_mb'] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def time_call(fn: Callable[[], object], device, iters: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``iters`` runs after ``warmup`` runs.

    ``iters=0`` only warms up (returns 0).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times) if times else 0.0


def count_flops(module: torch.nn.Module, *inputs) -> int:
    """FLOPs of one forward (a multiply-add counts 2), by ``FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


def _unet_forward(backbone, x, t, dtype: str):
    with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16,
                                         enabled=dtype == 'bf16'):
        return backbone(x, t)


def _unet_inputs(backbone, size: int, batch: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, backbone.in_channels, size, size, generator=gen).to(device)
    t = torch.full((batch, ), backbone.num_timesteps - 1, dtype=torch.long, device=device)
    return x, t


def unet_speed(backbone: torch.nn.Module, sizes: Sequence[int] = (128, 256, 512),
               batches: Sequence[int] = (1, 8), dtypes: Sequence[str] = ('fp32', 'bf16'),
               iters: int = 3, warmup: int = 1) -> List[dict]:
    """U-Net forward time and achieved GFLOP/s per (size, batch, dtype).

    Args:
        backbone (nn.Module): The refiner's U-Net (``forward(x, t)``), in eval mode.
        sizes (list[int]): Square input sizes. Defaults to (128, 256, 512).
        batches (list[int]): Batch sizes. Defaults to (1, 8).
        dtypes (list[str]): 'fp32' and/or 'bf16' (autocast). Defaults to both.
        iters (int): Timed runs (median). Defaults to 3.
        warmup (int): Untimed runs first. Defaults to 1.

    Returns:
        list[dict]: size, batch, dtype, gflop (per forward), ms, ms_per_sample, gflops_per_s,
        peak_rss_mb (and peak_cuda_mb on CUDA).
    """
    device, rows, iters = next(backbone.parameters()).device, [], max(1, iters)
    for size in sizes:
        for batch in batches:
            x, t = _unet_inputs(backbone, size, batch, device)
            flops = count_flops(backbone, x, t)
            for dtype in dtypes:
                if dtype not in ('fp32', 'bf16'):
                    raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
                if device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats(device)
                sec = time_call(lambda: _unet_forward(backbone, x, t, dtype), device, iters,
                                warmup)
                rows.append(dict(size=size, batch=batch, dtype=dtype, gflop=flops / 1e9,
                                 ms=sec * 1e3, ms_per_sample=sec * 1e3 / batch,
                                 gflops_per_s=flops / sec / 1e9, **peak_memory_mb(device)))
    return rows


def matmul_rate(dtypes: Sequence[str] = ('fp32', 'bf16'), n: int = 2048, iters: int = 3,
                device='cpu') -> Dict[str, float]:
    """The machine's dense matmul rate (GFLOP/s) for an n x n product, per dtype.

    The U-Net's achieved GFLOP/s is reported against this ceiling.
    """
    rates = {}
    for dtype in dtypes:
        tdtype = dict(fp32=torch.float32, bf16=torch.bfloat16)[dtype]
        a = torch.randn(n, n, device=device).to(tdtype)
        b = torch.randn(n, n, device=device).to(tdtype)
        sec = time_call(lambda: a @ b, torch.device(device), iters, warmup=1)
        rates[dtype] = 2 * n ** 3 / sec / 1e9
    return rates


def synthetic_sample(height: int, width: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A textured BGR image with an elliptic object and a blocky coarse mask of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    gt = ((yy - height / 2) / (height / 3))**2 + ((xx - width / 2) / (width / 3))**2 < 1
    image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    image[gt] += np.uint8(150)
    coarse = make_coarse(gt, 'lowres', seed, 'synthetic')
    return image, coarse


def end_to_end_speed(refiner, modes: Sequence[str] = ('instance', 'global', 'hr'),
                     image_size: Tuple[int, int] = (512, 768), steps=None, iters: int = 2,
                     warmup: int = 1, seed: int = 0) -> List[dict]:
    """``refine_mask`` time per mode against (U-Net calls x one U-Net forward).

    The U-Net calls are counted and timed inside the same ``iters`` runs that give the
    end-to-end time, so ``overhead_ms`` (crop, resize, paste, sampler) is consistent.

    Returns:
        list[dict] per mode: ms (end to end, mean per run), unet_calls / unet_samples (per
        run), unet_ms_in_run (time inside the U-Net per run), calls_x_unet_ms (calls x a
        separately timed forward of the mean call batch at the crop size), overhead_ms
        (ms - unet_ms_in_run), peak memory.
    """
    from mmseg_refiner.apis import refine_mask
    image, coarse = synthetic_sample(*image_size, seed=seed)
    device = next(refiner.parameters()).device
    crop, iters, rows = int(refiner.test_cfg['crop_size']), max(1, iters), []
    for mode in modes:
        def run():
            return refine_mask(refiner, image, coarse, mode=mode, steps=steps, seed=seed)
        time_call(run, device, iters=0, warmup=warmup)
        with UNetCallCounter(refiner.backbone) as counter:
            sec = sum(time_call(run, device, iters=1, warmup=0) for _ in range(iters)) / iters
        calls, samples = counter.calls / iters, counter.samples / iters
        x, t = _unet_inputs(refiner.backbone, crop, max(1, round(samples / max(1, calls))),
                            device)
        unet_sec = time_call(lambda: _unet_forward(refiner.backbone, x, t, 'fp32'), device,
                             iters, warmup)
        rows.append(dict(mode=mode, height=image_size[0], width=image_size[1], ms=sec * 1e3,
                         unet_calls=calls, unet_samples=samples,
                         unet_ms_in_run=counter.seconds / iters * 1e3,
                         calls_x_unet_ms=calls * unet_sec * 1e3,
                         overhead_ms=(sec - counter.seconds / iters) * 1e3,
                         **peak_memory_mb(device)))
    return rows


# ================================================================== quality: data + coarse masks
def list_pairs(root: str, split: Optional[str] = None,
               limit: Optional[int] = None) -> List[Tuple[str, str, str]]:
    """``[(id, image_path, mask_path)]`` of ``<root>/images`` + ``<root>/masks``, sorted by id.

    Args:
        root (str): Dataset folder.
        split (str, optional): File of ids, one a line (a path, or a name inside ``root``).
        limit (int, optional): Keep the first ``limit`` ids.
    """
    img_dir, mask_dir = osp.join(root, 'images'), osp.join(root, 'masks')
    for d in (img_dir, mask_dir):
        if not osp.isdir(d):
            raise InputError(f'{d} not found: expected <root>/images and <root>/masks')
    images = {osp.splitext(f)[0]: osp.join(img_dir, f) for f in os.listdir(img_dir)
              if f.lower().endswith(IMAGE_EXTS)}
    ids = sorted(images)
    if split:
        path = split if osp.isfile(split) else osp.join(root, split)
        if not osp.isfile(path):
            raise InputError(f'split file not found: {split} (nor {path})')
        ids = [line.strip() for line in open(path) if line.strip()]
        missing = [i for i in ids if i not in images]
        if missing:
            raise InputError(f'{len(missing)} ids of {path} have no image in {img_dir}, '
                             f'e.g. {missing[:5]}')
    ids = ids[:limit] if limit else ids
    pairs = [(i, images[i], osp.join(mask_dir, f'{i}.png')) for i in ids]
    missing = [p[2] for p in pairs if not osp.isfile(p[2])]
    if missing:
        raise InputError(f'{len(missing)} masks are missing, e.g. {missing[:3]}')
    return pairs


def _rng(seed: int, sample_id: str, kind: str) -> np.random.Generator:
    """One generator per (seed, sample, kind): results do not depend on the order or limit."""
    return np.random.default_rng([seed, zlib.crc32(f'{kind}/{sample_id}'.encode())])


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


# ================================================================== quality: variants
STOP_CRITERIA = ('coarse', 'change')
DEFAULT_VARIANT = 'guarded'
# 'guarded' | 'unguarded' | ['guarded-' | 'unguarded-'] 'adaptive-' ['coarse-' | 'change-'] THR
_VARIANT_RE = re.compile(r'(?P<alone>guarded|unguarded)'
                         r'|(?:(?P<guard>guarded|unguarded)-)?adaptive-'
                         r'(?:(?P<criterion>coarse|change)-)?(?P<thr>\d*\.?\d+)')


@dataclass(frozen=True)
class Variant:
    """A named refinement setting of the quality benchmark (see :func:`parse_variant`).

    Attributes:
        name (str): The name it was parsed from (shown in the reports).
        guard (bool): Growth guard on (the config's guard options, else ``DEFAULT_GUARD``).
        stop_thr (float): Adaptive stopping threshold in [0, 1]; 0 = the fixed schedule.
        stop_criterion (str): 'coarse' (share of pixels still coarse) or 'change' (share
            changed by the last step); see :meth:`DiffusionRefiner.refine_batch`.
    """
    name: str
    guard: bool = True
    stop_thr: float = 0.0
    stop_criterion: str = 'coarse'


def parse_variant(name: str) -> Variant:
    """Parse a variant name into (guard, stop threshold, stop criterion).

    Syntax: ``guarded`` (guard on, fixed schedule: the default), ``unguarded`` (guard off,
    fixed schedule: the reference behaviour), or
    ``[guarded-|unguarded-]adaptive-[coarse-|change-]THR``: adaptive stopping at threshold
    ``THR`` (a decimal number in [0, 1]), guard on unless ``unguarded-`` is given, criterion
    'coarse' unless ``change-`` is given. Examples: ``adaptive-0.45``,
    ``adaptive-change-0.01``, ``unguarded-adaptive-0.45``. ``adaptive-0`` runs the fixed
    schedule exactly (and shares its cached results with ``guarded``). The 'coarse' share is
    bounded below by the schedule (at least ~84/68/52/36/20 % of the pixels are still coarse
    after 1-5 calls), so only its thresholds above those values stop early; the 'change'
    share after the first call is at most 0.16 x the share the refiner would change, so
    small 'change' thresholds stop after one call (docs/guard_and_adaptive.md).

    Raises:
        ValueError: ``name`` does not follow the syntax or THR is above 1.
    """
    match = _VARIANT_RE.fullmatch(str(name))
    if match is None:
        raise ValueError(f'unknown benchmark variant {name!r}: use guarded, unguarded or '
                         f'[unguarded-]adaptive-[coarse-|change-]THR, e.g. adaptive-change-0.01')
    if match['alone']:
        return Variant(name, guard=match['alone'] == 'guarded')
    thr = float(match['thr'])
    if thr > 1:
        raise ValueError(f'variant {name!r}: the stop threshold is a share of pixels and must '
                         f'be in [0, 1], got {thr}')
    return Variant(name, guard=match['guard'] != 'unguarded', stop_thr=thr,
                   stop_criterion=match['criterion'] or 'coarse')


@contextlib.contextmanager
def stop_criterion_set(refiner, criterion: str):
    """Set ``refiner.test_cfg['stop_criterion']`` inside the block, restore it after."""
    if criterion not in STOP_CRITERIA:
        raise ValueError(f'stop_criterion must be one of {STOP_CRITERIA}, got {criterion!r}')
    old = refiner.test_cfg['stop_criterion']
    refiner.test_cfg['stop_criterion'] = criterion
    try:
        yield refiner
    finally:
        refiner.test_cfg['stop_criterion'] = old


# ================================================================== quality: cache + loop
class ResultCache:
    """Append-only JSON-lines store of per-image results, keyed by string.

    Every record is flushed as written; a line torn by an interruption is ignored on load.
    """

    def __init__(self, path: str):
        self.path, self.records = path, {}
        if osp.isfile(path):
            with open(path) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        self.records[rec['key']] = rec['value']
                    except (ValueError, KeyError, TypeError):
                        continue
            with open(path, 'rb+') as f:  # end a torn last line so appends start clean
                if f.seek(0, os.SEEK_END) > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b'\n':
                        f.write(b'\n')
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> Optional[dict]:
        return self.records.get(key)

    def add(self, key: str, value: dict) -> None:
        self.records[key] = value
        with open(self.path, 'a') as f:
            f.write(json.dumps(dict(key=key, value=value)) + '\n')
            f.flush()


def _read_image(path: str, gt: np.ndarray) -> np.ndarray:
    from mmseg_refiner.utils.io import imread_checked
    image = imread_checked(path)
    if image.shape[:2] != gt.shape:
        raise InputError(f'image {path} is {image.shape[1]}x{image.shape[0]} but its mask is '
                         f'{gt.shape[1]}x{gt.shape[0]} (WxH)')
    return image


def _fingerprint(**fields) -> str:
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]


class QualityRun:
    """The quality benchmark's loop over images x coarse kinds x variants x steps (resumable).

    Args:
        pairs (list[tuple]): ``(id, image_path, mask_path)`` from :func:`list_pairs`.
        out_dir (str): Output folder (holds the cache ``cache.jsonl``).
        kinds (list[str]): Coarse kinds. Defaults to :data:`COARSE_KINDS`.
        refiner (nn.Module, optional): None = coarse masks only.
        steps_list (list[int]): Reverse step counts to sweep. Defaults to [T].
        mode (str): ``refine_mask`` mode. Defaults to 'auto'.
        seed (int): Seed of the coarse masks and the sampling. Defaults to 0.
        dilation_ratio (float): Boundary IoU band. Defaults to 0.02.
        refiner_id (str): Identifies the weights in the cache keys (config + checkpoint).
        variants (list[str | Variant], optional): Refinement settings (:func:`parse_variant`),
            each cached separately. Defaults to ``['guarded']``.
    """

    def __init__(self, pairs, out_dir: str, kinds: Sequence[str] = COARSE_KINDS, refiner=None,
                 steps_list: Optional[Sequence[int]] = None, mode: str = 'auto', seed: int = 0,
                 dilation_ratio: float = 0.02, refiner_id: str = '',
                 variants: Optional[Sequence] = None):
        unknown = [k for k in kinds if k not in COARSE_KINDS]
        if unknown:
            raise ValueError(f'unknown coarse kinds {unknown}; choose from {COARSE_KINDS}')
        self.pairs, self.kinds, self.refiner = pairs, list(kinds), refiner
        default_steps = [refiner.sampler.num_timesteps] if refiner is not None else []
        self.steps_list = list(steps_list or default_steps) if refiner is not None else []
        self.variants = (_unique_variants(variants or [DEFAULT_VARIANT])
                         if refiner is not None else [])
        self.mode, self.seed, self.dilation_ratio = mode, seed, dilation_ratio
        self.cache = ResultCache(osp.join(out_dir, 'cache.jsonl'))
        self._coarse_fp = _fingerprint(seed=seed, ratio=dilation_ratio, lowres=LOWRES_FACTOR,
                                       polygon=POLYGON_EPS, perturb=PERTURB_IOU)
        self._refine_fp = _fingerprint(coarse=self._coarse_fp, refiner=refiner_id, mode=mode)
        self._variant_fp = {v.name: _fingerprint(refine=self._refine_fp,
                                                 **self.refine_kwargs(v)) for v in self.variants}

    def refine_kwargs(self, variant: Variant) -> dict:
        """``guard``, ``stop_thr`` and ``stop_criterion`` of a variant, as run (and keyed).

        The criterion is None for the fixed schedule (``stop_thr=0``), where it has no effect.
        """
        guard = False
        if variant.guard:
            guard = resolve_guard(self.refiner.test_cfg['guard']) or resolve_guard(True)
        return dict(guard=guard, stop_thr=float(variant.stop_thr),
                    stop_criterion=variant.stop_criterion if variant.stop_thr > 0 else None)

    def coarse_key(self, kind, sample_id):
        return f'coarse|{self._coarse_fp}|{kind}|{sample_id}'

    def refined_key(self, kind, variant: Variant, steps, sample_id):
        return f'refined|{self._variant_fp[variant.name]}|{kind}|{steps}|{sample_id}'

    def _todo(self, sample_id: str, kind: str) -> list:
        """Missing work for one (sample, kind): None = coarse scores, (variant, steps) pairs."""
        todo = [] if self.coarse_key(kind, sample_id) in self.cache else [None]
        keys = set(self.cache.records)  # variants of equal settings share a key: run once
        for variant in self.variants:
            for steps in self.steps_list:
                key = self.refined_key(kind, variant, steps, sample_id)
                if key not in keys:
                    keys.add(key)
                    todo.append((variant, steps))
        return todo

    def run(self, progress: bool = True) -> None:
        """Compute and cache everything missing; a finished run returns at once."""
        from mmseg_refiner.utils.io import maskread_checked
        work = [p for p in self.pairs if any(self._todo(p[0], k) for k in self.kinds)]
        for sample_id, img_path, mask_path in tqdm(work, desc='quality', unit='img',
                                                   disable=not progress or not work):
            gt = maskread_checked(mask_path, 'ground-truth mask')
            image = None
            for kind in self.kinds:
                todo = self._todo(sample_id, kind)
                if not todo:
                    continue
                coarse = make_coarse(gt, kind, self.seed, sample_id)
                if None in todo:
                    self.cache.add(self.coarse_key(kind, sample_id),
                                   score_masks(coarse, gt, self.dilation_ratio))
                for variant, steps in (job for job in todo if job is not None):
                    image = image if image is not None else _read_image(img_path, gt)
                    self.cache.add(self.refined_key(kind, variant, steps, sample_id),
                                   self._refine(image, coarse, gt, variant, steps))

    def _refine(self, image, coarse, gt, variant: Variant, steps) -> dict:
        from mmseg_refiner.apis import refine_mask
        kwargs = self.refine_kwargs(variant)
        start = time.perf_counter()
        with UNetCallCounter(self.refiner.backbone) as counter, \
                stop_criterion_set(self.refiner, variant.stop_criterion):
            refined = refine_mask(self.refiner, image, coarse, mode=self.mode, steps=steps,
                                  seed=self.seed, guard=kwargs['guard'],
                                  stop_thr=kwargs['stop_thr'])
        return dict(score_masks(refined, gt, self.dilation_ratio), unet_calls=counter.calls,
                    unet_samples=counter.samples, seconds=time.perf_counter() - start)

    def summary(self) -> List[dict]:
        """One row per kind (coarse only) or per (kind, variant, steps): means over images."""
        rows = []
        for kind in self.kinds:
            coarse = [self.cache.get(self.coarse_key(kind, p[0])) for p in self.pairs]
            coarse_means = {f'coarse_{m}': float(np.mean([c[m] for c in coarse]))
                            for m in METRICS}
            if not self.steps_list:
                rows.append(dict(kind=kind, num_images=len(coarse), **coarse_means))
            for variant in self.variants:
                for steps in self.steps_list:
                    ref = [self.cache.get(self.refined_key(kind, variant, steps, p[0]))
                           for p in self.pairs]
                    rows.append(dict(kind=kind, variant=variant.name, steps=steps,
                                     num_images=len(ref), **coarse_means,
                                     **_refined_means(coarse, ref)))
        return rows


def _unique_variants(variants: Sequence) -> List[Variant]:
    """Parse names (Variant objects pass through), dropping repeated names."""
    unique = {}
    for v in variants:
        v = v if isinstance(v, Variant) else parse_variant(v)
        unique.setdefault(v.name, v)
    return list(unique.values())


def _refined_means(coarse: List[dict], refined: List[dict]) -> dict:
    out = {m: float(np.mean([r[m] for r in refined])) for m in METRICS}
    out.update({f'delta_{m}': out[m] - float(np.mean([c[m] for c in coarse])) for m in METRICS})
    worse = [r['IoU'] < c['IoU'] - WORSE_POINTS for c, r in zip(coarse, refined)]
    out['worse_2pt_share'] = float(np.mean(worse))
    for key in ('unet_calls', 'unet_samples', 'seconds'):
        out[f'mean_{key}'] = float(np.mean([r[key] for r in refined]))
    return out


# ================================================================== reports
def markdown_table(rows: List[dict], columns: Sequence[Tuple[str, str, str]]) -> str:
    """A Markdown table of ``rows``; ``columns`` are (key, header, format spec)."""
    lines = ['| ' + ' | '.join(h for _, h, _ in columns) + ' |',
             '|' + '|'.join('---' if f == '' else '---:' for _, _, f in columns) + '|']
    for row in rows:
        cells = [format(row[k], f) if k in row else '' for k, _, f in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def quality_markdown(rows: List[dict], title: str) -> str:
    """Markdown of the quality summary: coarse only, or before -> after per variant and steps."""
    if 'steps' not in rows[0]:
        cols = [('kind', 'coarse kind', ''), ('num_images', 'images', 'd'),
                ('coarse_IoU', 'IoU', '.2f'), ('coarse_mBA', 'mBA', '.2f'),
                ('coarse_BIoU', 'BIoU', '.2f')]
    else:
        cols = [('kind', 'coarse kind', ''), ('variant', 'variant', ''), ('steps', 'steps', 'd'),
                ('num_images', 'images', 'd')]
        for m in METRICS:
            cols += [(f'coarse_{m}', f'{m} before', '.2f'), (m, f'{m} after', '.2f'),
                     (f'delta_{m}', f'Δ{m}', '+.2f')]
        cols += [('worse_2pt_share', f'worse >{WORSE_POINTS:g} IoU pts', '.1%'),
                 ('mean_unet_calls', 'U-Net calls', '.1f'), ('mean_seconds', 's / image', '.2f')]
    return f'### {title}\n\n{markdown_table(rows, cols)}\n'


def speed_markdown(unet_rows: List[dict], e2e_rows: List[dict]) -> str:
    unet_cols = [('size', 'size', 'd'), ('batch', 'batch', 'd'), ('dtype', 'dtype', ''),
                 ('gflop', 'GFLOP / fwd', '.2f'), ('ms', 'ms / fwd', '.1f'),
                 ('ms_per_sample', 'ms / sample', '.1f'), ('gflops_per_s', 'GFLOP/s', '.1f'),
                 ('matmul_ratio', 'vs matmul', '.0%'), ('peak_rss_mb', 'peak RSS MiB', '.0f'),
                 ('peak_cuda_mb', 'peak CUDA MiB', '.0f')]
    e2e_cols = [('mode', 'mode', ''), ('ms', 'end-to-end ms', '.1f'),
                ('unet_calls', 'U-Net calls', '.1f'), ('unet_samples', 'U-Net samples', '.1f'),
                ('unet_ms_in_run', 'U-Net ms (in run)', '.1f'),
                ('calls_x_unet_ms', 'calls x U-Net ms', '.1f'),
                ('overhead_ms', 'overhead ms', '.1f')]
    out = f'### U-Net forward\n\n{markdown_table(unet_rows, unet_cols)}\n'
    if e2e_rows:
        out += f'\n### End to end (refine_mask)\n\n{markdown_table(e2e_rows, e2e_cols)}\n'
    return out


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, path: str, title: str) -> None:
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, format='png')
    _pyplot().close(fig)


MARKERS = 'osD^vP*X<>'


def plot_quality_vs_steps(rows: List[dict], path: str, title: str = '') -> None:
    """PNG: IoU / mBA / BIoU after refinement vs steps, one line per kind (colour) and
    variant (marker), coarse dashed."""
    fig, axes = _pyplot().subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2))
    variants = list(dict.fromkeys(r['variant'] for r in rows))
    for ax, m in zip(axes, METRICS):
        for i, kind in enumerate(dict.fromkeys(r['kind'] for r in rows)):
            for j, variant in enumerate(variants):
                kr = sorted((r for r in rows if r['kind'] == kind and r['variant'] == variant),
                            key=lambda r: r['steps'])
                label = kind if len(variants) == 1 else f'{kind} / {variant}'
                ax.plot([r['steps'] for r in kr], [r[m] for r in kr], color=f'C{i}',
                        marker=MARKERS[j % len(MARKERS)], ls='-', label=label)
            ax.axhline(kr[0][f'coarse_{m}'], color=f'C{i}', ls='--', lw=1)
        ax.set_xlabel('reverse steps')
        ax.set_ylabel(f'{m} (%)')
        ax.grid(alpha=0.3)
    axes[0].legend(title='coarse kind (dashed: input)', fontsize=7)
    _save_figure(fig, path, title)


def plot_quality_vs_calls(rows: List[dict], path: str, title: str = '') -> None:
    """PNG: mean IoU and mBA vs mean U-Net calls per mask, one row of panels per kind.

    One marker per (variant, steps): a variant's step counts are joined by a line and
    labelled with their steps; the coarse input is the dashed grey line.
    """
    kinds = list(dict.fromkeys(r['kind'] for r in rows))
    variants = list(dict.fromkeys(r['variant'] for r in rows))
    fig, axes = _pyplot().subplots(len(kinds), 2, figsize=(9, 3.2 * len(kinds)), squeeze=False)
    for axrow, kind in zip(axes, kinds):
        for ax, m in zip(axrow, ('IoU', 'mBA')):
            for j, variant in enumerate(variants):
                vr = sorted((r for r in rows if r['kind'] == kind and r['variant'] == variant),
                            key=lambda r: r['mean_unet_calls'])
                xs, ys = [r['mean_unet_calls'] for r in vr], [r[m] for r in vr]
                ax.plot(xs, ys, color=f'C{j}', marker=MARKERS[j % len(MARKERS)], label=variant)
                for x, y, r in zip(xs, ys, vr):
                    ax.annotate(str(r['steps']), (x, y), xytext=(3, 3), fontsize=7,
                                textcoords='offset points')
            ax.axhline(vr[0][f'coarse_{m}'], color='grey', ls='--', lw=1)
            ax.set(title=kind, xlabel='mean U-Net calls per mask', ylabel=f'{m} (%)')
            ax.grid(alpha=0.3)
    axes[0][0].legend(title='variant (labels: steps)', fontsize=7)
    _save_figure(fig, path, title)


def _write_text(text: str, path: str) -> None:
    with atomic_write(path) as tmp, open(tmp, 'w') as f:
        f.write(text)


# ================================================================== command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``speed`` and ``quality`` sub-commands of the benchmark."""
    sub = parser.add_subparsers(dest='part', metavar='PART', required=True)
    speed = sub.add_parser('speed', help='U-Net and end-to-end timing, GFLOP/s, peak memory')
    quality = sub.add_parser('quality', help='before/after IoU, mBA, BIoU on a folder of pairs')
    for p in (speed, quality):
        p.add_argument('--config', help='refiner config (default: the shipped model)')
        p.add_argument('--checkpoint', help='refiner weights (default: the shipped model)')
        p.add_argument('--device', default='cpu', help='torch device (default: cpu)')
        p.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
        p.add_argument('--out', required=True, help='output folder (JSON, Markdown, PNG)')
    speed.add_argument('--sizes', type=int, nargs='+', default=[128, 256, 512])
    speed.add_argument('--batches', type=int, nargs='+', default=[1, 8])
    speed.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'], choices=('fp32', 'bf16'))
    speed.add_argument('--iters', type=int, default=3, help='timed runs, median (default: 3)')
    speed.add_argument('--modes', nargs='*', default=['instance', 'global', 'hr'],
                       help='end-to-end modes (none: skip end to end)')
    speed.add_argument('--e2e-size', type=int, nargs=2, default=[512, 768], metavar=('H', 'W'))
    quality.add_argument('--root', required=True, help='folder with images/ and masks/')
    quality.add_argument('--mode', default='auto', help='refine_mask mode (default: auto)')
    quality.add_argument('--split', help='file of ids (a path or a name inside --root)')
    quality.add_argument('--kinds', nargs='+', default=list(COARSE_KINDS), choices=COARSE_KINDS)
    quality.add_argument('--limit', type=int, help='first N ids only')
    quality.add_argument('--steps', type=int, nargs='+',
                         help='reverse step counts to sweep (default: all T steps)')
    quality.add_argument('--variants', nargs='+', default=[DEFAULT_VARIANT], metavar='VARIANT',
                         help='refinement settings to compare, each cached separately: guarded '
                         '(guard on, fixed schedule), unguarded (the reference), '
                         '[unguarded-]adaptive-[coarse-|change-]THR (adaptive stopping at '
                         'THR in [0, 1], e.g. adaptive-0.45 adaptive-change-0.01); '
                         f'default: {DEFAULT_VARIANT}')
    quality.add_argument('--coarse-only', action='store_true',
                         help='score the coarse masks only (no refiner): the baseline')
    quality.add_argument('--dilation-ratio', type=float, default=0.02)
    quality.add_argument('--name', help='dataset label in the report (default: root/split)')
    quality.add_argument('--no-progress', action='store_true')


def _build_refiner(args):
    from mmseg_refiner.apis import init_refiner
    return init_refiner(args.config, args.checkpoint, device=args.device)


def run_speed(args) -> int:
    refiner = _build_refiner(args)
    torch.manual_seed(args.seed)
    rates = matmul_rate(args.dtypes, device=args.device)
    unet_rows = unet_speed(refiner.backbone, args.sizes, args.batches, args.dtypes, args.iters)
    for row in unet_rows:
        row['matmul_ratio'] = row['gflops_per_s'] / rates[row['dtype']]
    e2e_rows = end_to_end_speed(refiner, args.modes, tuple(args.e2e_size), iters=args.iters,
                                seed=args.seed) if args.modes else []
    text = ('### Matmul 2048x2048\n\n' + ', '.join(f'{k}: {v:.1f} GFLOP/s'
                                                   for k, v in rates.items()) + '\n\n'
            + speed_markdown(unet_rows, e2e_rows))
    _write_text(json.dumps(dict(device=str(args.device), torch=torch.__version__,
                                threads=torch.get_num_threads(), matmul_gflops=rates,
                                unet=unet_rows,
                                end_to_end=e2e_rows), indent=2), osp.join(args.out, 'speed.json'))
    _write_text(text, osp.join(args.out, 'speed.md'))
    print(text)
    return 0


def run_quality(args) -> int:
    variants = _unique_variants(args.variants)  # bad names fail before any work
    pairs = list_pairs(args.root, args.split, args.limit)
    refiner = None if args.coarse_only else _build_refiner(args)
    refiner_id = '' if refiner is None else f'{args.config}|{args.checkpoint}'
    qrun = QualityRun(pairs, args.out, args.kinds, refiner, args.steps, args.mode, args.seed,
                      args.dilation_ratio, refiner_id, variants)
    qrun.run(progress=not args.no_progress)
    rows = qrun.summary()
    name = args.name or (osp.basename(osp.normpath(args.root)) +
                         (f' / {osp.splitext(osp.basename(args.split))[0]}' if args.split else ''))
    text = quality_markdown(rows, f'{name}: {len(pairs)} images'
                            + (' (coarse masks only)' if refiner is None else ''))
    _write_text(json.dumps(dict(root=args.root, split=args.split, limit=args.limit,
                                seed=args.seed, mode=args.mode, config=args.config,
                                checkpoint=args.checkpoint,
                                variants={v.name: qrun.refine_kwargs(v) for v in qrun.variants},
                                rows=rows), indent=2),
                osp.join(args.out, 'quality.json'))
    _write_text(text, osp.join(args.out, 'quality.md'))
    if refiner is not None:
        plot_quality_vs_steps(rows, osp.join(args.out, 'quality_vs_steps.png'), name)
        plot_quality_vs_calls(rows, osp.join(args.out, 'quality_vs_calls.png'), name)
    print(text)
    return 0


def run(args) -> int:
    """Entry point of both ``tools/benchmark.py`` and ``mmseg-refiner benchmark``."""
    return run_speed(args) if args.part == 'speed' else run_quality(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='benchmark', description=__doc__.split('\n\n')[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (InputError, FileNotFoundError, ValueError) as exc:
        print(f'benchmark: error: {exc}', file=sys.stderr)
        return 1
