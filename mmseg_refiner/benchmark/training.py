"""Training throughput of a refiner: samples/s of full optimizer steps on random batches."""
from typing import List, Sequence

import torch

from mmseg_refiner.benchmark.timing import check_positive, peak_memory_mb, time_call

# training variants: (optimizer wrapper, channels_last)
TRAIN_VARIANTS = {
    'fp32': ('OptimWrapper', False), 'bf16': ('AutocastOptimWrapper', False), 'bf16_cl':
    ('AutocastOptimWrapper', True)
}


def _random_batch(batch: int, size: int, device, seed: int = 0):
    """Normalized images (B, 3, size, size) and data samples with gt/coarse masks."""
    from mmengine.structures import BaseDataElement, PixelData
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, 3, size, size, generator=gen).to(device)
    samples = []
    for _ in range(batch):
        gt = (torch.rand(1, size, size, generator=gen) > 0.5).float()
        coarse = (torch.rand(1, size, size, generator=gen) > 0.5).float()
        samples.append(
            BaseDataElement(gt_mask=PixelData(data=gt), coarse_mask=PixelData(data=coarse)))
    return inputs, samples


def _wrapper(model, variant: str, lr: float = 1e-4):
    from mmengine.optim import OptimWrapper

    from mmseg_refiner.engine import AutocastOptimWrapper
    kind, channels_last = TRAIN_VARIANTS[variant]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    if kind == 'OptimWrapper':
        return OptimWrapper(optimizer=optimizer)
    return AutocastOptimWrapper(optimizer=optimizer, channels_last=channels_last)


def train_speed(refiner, batch: int = 8, size: int = 128,
                variants: Sequence[str] = ('fp32', 'bf16', 'bf16_cl'), iters: int = 3,
                warmup: int = 1, seed: int = 0) -> List[dict]:
    """Samples/s of training steps (forward, losses, backward, AdamW) per variant.

    The shipped recipe trains on 128x128 windows in batches of 4-8 with ``--amp``
    (:class:`AutocastOptimWrapper`). ``refiner`` is trained in place (its weights change).

    Returns:
        list[dict]: variant, batch, size, ms (per step), samples_per_s, peak memory.
    """
    unknown = [v for v in variants if v not in TRAIN_VARIANTS]
    if unknown:
        raise ValueError(f'unknown training variants {unknown}; choose from '
                         f'{list(TRAIN_VARIANTS)}')
    check_positive(batch=batch, size=size, iters=iters)
    device = next(refiner.parameters()).device
    inputs, samples = _random_batch(batch, size, device, seed)
    refiner.train()
    rows = []
    for variant in variants:
        if hasattr(refiner.backbone, 'set_channels_last'):
            refiner.backbone.set_channels_last(False)
        wrapper = _wrapper(refiner, variant)

        def step():
            with wrapper.optim_context(refiner):
                losses = refiner.loss(inputs, samples)
            loss, _ = refiner.parse_losses(losses)
            wrapper.update_params(loss)

        sec = time_call(step, device, iters, warmup)
        rows.append(
            dict(variant=variant, batch=batch, size=size, ms=sec * 1e3, samples_per_s=batch / sec,
                 **peak_memory_mb(device)))
    refiner.eval()
    return rows
