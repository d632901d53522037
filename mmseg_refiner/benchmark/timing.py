"""Timing, FLOP counting and memory helpers of the benchmark."""
import numbers
import resource
import statistics
import time
from typing import Callable, Dict

import torch


def check_positive(**counts) -> None:
    """Raise a ValueError naming the first of ``counts`` (name=value, or a list of values)
    that is not an integer >= 1: a count or size of 0 or less measures nothing."""
    for name, value in counts.items():
        many = isinstance(value, (list, tuple))
        for v in value if many else [value]:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                what = 'integers' if many else 'an integer'
                raise ValueError(f'{name} must be {what} >= 1, got {value!r}')


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
        self._handles = [
            self.module.register_forward_pre_hook(self._pre),
            self.module.register_forward_hook(self._post)
        ]
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
