"""Training data throughput: what one data-loader worker spends per sample, step by step.

A training config's dataset (``train_dataloader.dataset``, a :class:`ConcatDataset` of
folders, composites and procedural images included) is built in this process and
``samples`` samples are drawn from its parts in proportion to their lengths, as the
infinite sampler does. Every pipeline transform is timed where it runs; what is left of a
sample's time is the dataset's own work (generating a composite or a procedural image).
Each sample is drawn twice: the first pass decodes the photos, the second finds them in the
per-process decoded-image cache (:mod:`mmseg_refiner.datasets.cache`), as persistent
workers do after their first epoch; generated datasets draw new samples on the second pass.

On a machine whose cores also run the U-Net, data-loader workers take CPU time from the
training step: the report therefore sets the data CPU time per sample against the training
step's time per sample (:func:`~mmseg_refiner.benchmark.training.train_speed` with the
config's batch size, window size and precision, on randomly initialised weights).
"""
import os.path as osp
import time
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np

from mmseg_refiner.benchmark.report import markdown_table


class _TimedTransform:
    """Calls ``transform`` and adds its seconds to ``totals[name]``."""

    def __init__(self, transform, name: str, totals: Dict[str, float]):
        self.transform, self.name, self.totals = transform, name, totals

    def __call__(self, results):
        start = time.perf_counter()
        try:
            return self.transform(results)
        finally:
            self.totals[self.name] = self.totals.get(self.name, 0.0) + time.perf_counter() - start

    def __repr__(self) -> str:
        return f'timed {self.transform!r}'


def leaf_datasets(dataset) -> list:
    """The datasets with a pipeline inside ``dataset`` (through Concat / Repeat wrappers)."""
    inner = getattr(dataset, 'datasets', None)
    if inner is not None:
        return [leaf for d in inner for leaf in leaf_datasets(d)]
    if getattr(dataset, 'pipeline', None) is None and hasattr(dataset, 'dataset'):
        return leaf_datasets(dataset.dataset)
    return [dataset]


def part_name(leaf) -> str:
    """``MaskFolderDataset (people)``: the class, and the data folder where there is one."""
    root = getattr(leaf, 'data_root', None)
    name = type(leaf).__name__
    return f'{name} ({osp.basename(osp.normpath(root))})' if root else name


def _instrument(leaf) -> Dict[str, float]:
    """Wrap each transform of ``leaf.pipeline`` with a timer; return the totals dict."""
    totals: Dict[str, float] = OrderedDict()
    transforms = leaf.pipeline.transforms
    for i, t in enumerate(transforms):
        name = type(t).__name__
        totals[name] = 0.0
        transforms[i] = _TimedTransform(t, name, totals)
    return totals


def _draws(lengths: List[int], samples: int) -> List[int]:
    """Samples per part, proportional to the parts' lengths, at least one each."""
    total = float(sum(lengths))
    return [max(1, int(round(samples * n / total))) for n in lengths]


def data_speed(dataset, samples: int = 48, passes: int = 2) -> List[dict]:
    """Time ``samples`` samples of ``dataset`` (built), per part and pass.

    Args:
        dataset: A built dataset (``DATASETS.build(cfg.train_dataloader.dataset)``).
        samples (int): Samples per pass over all parts. Defaults to 48.
        passes (int): Passes over the same indices (1: decode; 2: also cached). Defaults
            to 2.

    Returns:
        list[dict]: One row per part and pass (``dataset``, ``share``, ``pass``,
        ``samples``, ``ms_per_sample``, ``steps``: {transform or 'generate': ms/sample}),
        then one ``all`` row per pass weighted by the parts' shares.
    """
    if samples <= 0 or passes <= 0:
        raise ValueError(f'samples and passes must be positive, got {samples} and {passes}')
    leaves = leaf_datasets(dataset)
    for leaf in leaves:
        if hasattr(leaf, 'full_init'):
            leaf.full_init()
    lengths = [len(leaf) for leaf in leaves]
    counts = _draws(lengths, samples)
    shares = [n / float(sum(lengths)) for n in lengths]
    timers = [_instrument(leaf) for leaf in leaves]
    rows = []
    for pass_ in range(1, passes + 1):
        pass_rows = []
        for leaf, n, share, totals in zip(leaves, counts, shares, timers):
            for key in totals:
                totals[key] = 0.0
            indices = np.linspace(0, len(leaf) - 1, n).round().astype(int)
            start = time.perf_counter()
            for idx in indices:
                leaf[int(idx)]
            seconds = time.perf_counter() - start
            steps = OrderedDict((k, 1e3 * v / n) for k, v in totals.items())
            own = 1e3 * seconds / n - sum(steps.values())
            if own > 0.05 or not steps:
                steps['generate'] = own  # the dataset's own work outside its pipeline
            pass_rows.append(
                dict(dataset=part_name(leaf), share=share, passes=pass_, samples=n,
                     ms_per_sample=1e3 * seconds / n, steps=steps))
        mean = sum(r['ms_per_sample'] * r['share'] for r in pass_rows)
        rows += pass_rows + [
            dict(dataset='all', share=1.0, passes=pass_, samples=sum(counts), ms_per_sample=mean,
                 steps={})
        ]
    return rows


def add_step_shares(rows: List[dict], step_ms_per_sample: Optional[float]) -> None:
    """Add ``samples_per_s`` (one worker) and ``of_step`` (data CPU / training step CPU)."""
    for row in rows:
        row['samples_per_s'] = 1e3 / row['ms_per_sample'] if row['ms_per_sample'] > 0 else None
        row['of_step'] = (row['ms_per_sample'] /
                          step_ms_per_sample if step_ms_per_sample else None)


DATA_COLUMNS = [('dataset', 'part', ''), ('share', 'share', '.0%'), ('passes', 'pass', 'd'),
                ('samples', 'samples', 'd'), ('ms_per_sample', 'ms / sample', '.1f'),
                ('samples_per_s', 'samples/s (1 worker)', '.1f'),
                ('of_step', 'of a training sample\'s step time', '.0%')]


def data_markdown(rows: List[dict], header: str, step: Optional[dict], top: int = 12) -> str:
    """Markdown: per part and pass, then the ``top`` slowest steps of the last pass."""
    out = f'{header}\n\n### Data pipeline (one worker, this process)\n\n'
    out += markdown_table(rows, DATA_COLUMNS) + '\n'
    last = max(r['passes'] for r in rows)
    steps = [
        dict(dataset=r['dataset'], step=k, ms=v) for r in rows
        if r['passes'] == last and r['dataset'] != 'all' for k, v in r['steps'].items()
    ]
    steps = sorted(steps, key=lambda s: -s['ms'])[:top]
    out += (f'\n### Slowest steps, pass {last} (ms per sample of that part)\n\n' +
            markdown_table(steps, [('dataset', 'part', ''), ('step', 'step', ''),
                                   ('ms', 'ms / sample', '.2f')]) + '\n')
    if step:
        out += (f"\nTraining step ({step['variant']}, batch {step['batch']}, "
                f"{step['size']}x{step['size']}): {step['ms']:.0f} ms = "
                f"{step['ms'] / step['batch']:.1f} ms per sample, {step['samples_per_s']:.2f} "
                f"samples/s.\n")
    return out
