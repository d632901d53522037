"""Speed benchmark: hardware peaks, U-Net forward, end to end, training, memory.

Everything is measured in one run on the machine at hand, and compared as ratios within the
run: the U-Net's GFLOP/s as a share of the same run's conv3x3 rate of the matching dtype and
layout, the end-to-end time against (U-Net calls x U-Net time).
"""
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmseg_refiner.benchmark.coarse import make_coarse
from mmseg_refiner.benchmark.timing import (UNetCallCounter, check_positive, count_flops,
                                            peak_memory_mb, time_call)

# U-Net variants: (autocast dtype, channels_last, torch.compile)
UNET_VARIANTS = {
    'fp32': (None, False, False),
    'fp32_cl': (None, True, False),
    'bf16': (torch.bfloat16, False, False),
    'bf16_cl': (torch.bfloat16, True, False),
    'compiled': (torch.bfloat16, True, True),
}
# the conv3x3 peak a U-Net variant is compared with: (dtype, layout)
MATCHING_PEAK = {
    'fp32': ('fp32', 'nchw'), 'fp32_cl': ('fp32', 'channels_last'), 'bf16': ('bf16', 'nchw'),
    'bf16_cl': ('bf16', 'channels_last'), 'compiled': ('bf16', 'channels_last')
}
_DTYPES = dict(fp32=torch.float32, bf16=torch.bfloat16)


# ------------------------------------------------------------------ hardware peaks
def matmul_rate(dtypes: Sequence[str] = ('fp32', 'bf16'), n: int = 2048, iters: int = 3,
                device='cpu') -> Dict[str, float]:
    """The machine's dense matmul rate (GFLOP/s) for an n x n product, per dtype."""
    rates = {}
    for dtype in dtypes:
        a = torch.randn(n, n, device=device).to(_DTYPES[dtype])
        b = torch.randn(n, n, device=device).to(_DTYPES[dtype])
        sec = time_call(lambda: a @ b, torch.device(device), iters, warmup=1)
        rates[dtype] = 2 * n**3 / sec / 1e9
    return rates


def conv_rate(dtypes: Sequence[str] = ('fp32', 'bf16'),
              layouts: Sequence[str] = ('nchw', 'channels_last'), channels: int = 64,
              size: int = 192, iters: int = 3, device='cpu') -> Dict[str, Dict[str, float]]:
    """GFLOP/s of a 3x3 convolution (``channels`` in and out, ``size``², batch 1).

    Returns:
        dict: ``{dtype: {layout: GFLOP/s}}``; bf16 runs under autocast, as the U-Net does.
    """
    device = torch.device(device)
    flops = 2 * 9 * channels * channels * size * size
    rates = {}
    for dtype in dtypes:
        for layout in layouts:
            fmt = torch.channels_last if layout == 'channels_last' else torch.contiguous_format
            conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, memory_format=fmt)
            x = torch.randn(1, channels, size, size, device=device).contiguous(memory_format=fmt)

            def run():
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                     enabled=dtype == 'bf16'):
                    return conv(x)

            rates.setdefault(dtype, {})[layout] = flops / time_call(run, device, iters) / 1e9
    return rates


# ------------------------------------------------------------------ U-Net forward
def _unet_inputs(backbone, size: int, batch: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, backbone.in_channels, size, size, generator=gen).to(device)
    t = torch.full((batch, ), backbone.num_timesteps - 1, dtype=torch.long, device=device)
    return x, t


def _unet_forward(backbone, x, t, dtype):
    """One forward under autocast ``dtype`` ('fp32' / 'bf16' / a torch dtype / None)."""
    dtype = _DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
    with torch.no_grad(), torch.autocast(
            x.device.type, dtype=torch.bfloat16 if dtype in (None, torch.float32) else dtype,
            enabled=dtype not in (None, torch.float32)):
        return backbone(x, t)


class _Compiled:
    """``torch.compile`` of a backbone, built lazily; ``build_s`` = the first call's time."""

    def __init__(self, backbone):
        self.fn, self.build_s = torch.compile(backbone), None

    def __call__(self, x, t, dtype):
        if self.build_s is None:
            start = time.perf_counter()
            _unet_forward(self.fn, x, t, dtype)
            self.build_s = time.perf_counter() - start
        return _unet_forward(self.fn, x, t, dtype)


def _time_variant(backbone, variant: str, x, t, iters: int, warmup: int,
                  compiled: Optional[_Compiled]) -> float:
    dtype, channels_last, use_compile = UNET_VARIANTS[variant]
    if hasattr(backbone, 'set_channels_last'):
        backbone.set_channels_last(channels_last)
    elif channels_last:
        raise ValueError(f'variant {variant!r} needs a backbone with set_channels_last')
    if use_compile:
        return time_call(lambda: compiled(x, t, dtype), x.device, iters, warmup)
    return time_call(lambda: _unet_forward(backbone, x, t, dtype), x.device, iters, warmup)


def unet_speed(backbone: torch.nn.Module, sizes: Sequence[int] = (256, 384),
               batches: Sequence[int] = (1, 8), dtypes: Sequence[str] = ('fp32', 'bf16'),
               iters: int = 3, warmup: int = 1) -> List[dict]:
    """U-Net forward time and achieved GFLOP/s per (size, batch, variant).

    Args:
        backbone (nn.Module): The refiner's U-Net (``forward(x, t)``), in eval mode.
        sizes (list[int]): Square input sizes. Defaults to (256, 384).
        batches (list[int]): Batch sizes. Defaults to (1, 8).
        dtypes (list[str]): Variants of :data:`UNET_VARIANTS`: 'fp32', 'fp32_cl', 'bf16',
            'bf16_cl' (bf16 autocast + channels_last), 'compiled' (bf16_cl +
            ``torch.compile``; slow to build). Defaults to ('fp32', 'bf16').
        iters (int): Timed runs (median). Defaults to 3.
        warmup (int): Untimed runs first. Defaults to 1.

    Returns:
        list[dict]: size, batch, dtype, gflop (per forward), ms, ms_per_sample, gflops_per_s,
        peak memory; ``compile_s`` (the first compiled call) for 'compiled'.
    """
    unknown = [d for d in dtypes if d not in UNET_VARIANTS]
    if unknown:
        raise ValueError(f'unknown U-Net variants {unknown}; choose from {list(UNET_VARIANTS)}')
    check_positive(sizes=list(sizes), batches=list(batches), iters=iters)
    device, rows = next(backbone.parameters()).device, []
    was_cl = getattr(backbone, 'channels_last', False)
    compiled = _Compiled(backbone) if 'compiled' in dtypes else None
    for size in sizes:
        for batch in batches:
            x, t = _unet_inputs(backbone, size, batch, device)
            flops = count_flops(backbone, x, t)
            for variant in dtypes:
                sec = _time_variant(backbone, variant, x, t, iters, warmup, compiled)
                row = dict(size=size, batch=batch, dtype=variant, gflop=flops / 1e9, ms=sec * 1e3,
                           ms_per_sample=sec * 1e3 / batch, gflops_per_s=flops / sec / 1e9,
                           **peak_memory_mb(device))
                if variant == 'compiled':
                    row['compile_s'] = compiled.build_s
                rows.append(row)
    if hasattr(backbone, 'set_channels_last'):
        backbone.set_channels_last(was_cl)
    return rows


def add_peak_shares(rows: List[dict], conv: Dict[str, Dict[str, float]],
                    matmul: Dict[str, float]) -> None:
    """Add ``conv_share`` (of the matching conv3x3 rate) and ``matmul_ratio`` to rows."""
    for row in rows:
        dtype, layout = MATCHING_PEAK[row['dtype']]
        if layout in conv.get(dtype, {}):
            row['conv_share'] = row['gflops_per_s'] / conv[dtype][layout]
        if dtype in matmul:
            row['matmul_ratio'] = row['gflops_per_s'] / matmul[dtype]


# ------------------------------------------------------------------ end to end
def synthetic_sample(height: int, width: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A textured BGR image with an elliptic object and a blocky coarse mask of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    gt = ((yy - height / 2) / (height / 3))**2 + ((xx - width / 2) / (width / 3))**2 < 1
    image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    image[gt] += np.uint8(150)
    coarse = make_coarse(gt, 'lowres', seed, 'synthetic')
    return image, coarse


def _refiner_unet_seconds(refiner, batch: int, iters: int, warmup: int, cfg=None) -> float:
    """One U-Net forward at the crop size with the refiner's own precision and layout."""
    cfg = refiner.test_cfg if cfg is None else cfg
    size = int(cfg['crop_size'])
    x, t = _unet_inputs(refiner.backbone, size, batch, refiner.data_preprocessor.mean.device)
    if hasattr(refiner, 'precision'):
        unet, autocast = refiner._unet(cfg, x.device)
    else:  # refiners before the fast path: autocast None / 'bf16' only
        unet = refiner.backbone
        autocast = torch.autocast(x.device.type, dtype=torch.bfloat16,
                                  enabled=cfg.get('autocast') == 'bf16')

    def run():
        with torch.no_grad(), autocast:
            return unet(x, t)

    return time_call(run, x.device, iters, warmup)


def end_to_end_speed(refiner, modes: Sequence[str] = ('instance', 'global', 'hr'),
                     image_size: Tuple[int, int] = (480, 854), steps=None, iters: int = 2,
                     warmup: int = 1, seed: int = 0) -> List[dict]:
    """``refine_mask`` time per mode against (U-Net calls x one U-Net forward).

    The U-Net calls are counted and timed inside the same ``iters`` runs that give the
    end-to-end time; the single forward uses the refiner's ``test_cfg`` precision.

    Returns:
        list[dict] per mode: ms (end to end, mean per run), unet_calls / unet_samples (per
        run), unet_ms_in_run, calls_x_unet_ms, overhead_ms (ms - unet_ms_in_run),
        e2e_ratio (ms / calls_x_unet_ms), peak memory.
    """
    from mmseg_refiner.apis import refine_mask
    check_positive(image_size=list(image_size), iters=iters)
    image, coarse = synthetic_sample(*image_size, seed=seed)
    device, rows = next(refiner.parameters()).device, []
    for mode in modes:

        def run():
            return refine_mask(refiner, image, coarse, mode=mode, steps=steps, seed=seed)

        time_call(run, device, iters=0, warmup=warmup)
        with UNetCallCounter(refiner.backbone) as counter:
            sec = sum(time_call(run, device, iters=1, warmup=0) for _ in range(iters)) / iters
        calls, samples = counter.calls / iters, counter.samples / iters
        batch = max(1, round(samples / max(1, calls)))
        unet_sec = _refiner_unet_seconds(refiner, batch, iters, warmup)
        rows.append(
            dict(mode=mode, height=image_size[0], width=image_size[1], ms=sec * 1e3,
                 unet_calls=calls, unet_samples=samples,
                 unet_ms_in_run=counter.seconds / iters * 1e3,
                 calls_x_unet_ms=calls * unet_sec * 1e3,
                 overhead_ms=(sec - counter.seconds / iters) * 1e3,
                 e2e_ratio=sec / max(calls * unet_sec, 1e-9), **peak_memory_mb(device)))
    return rows
