"""Seeded per-sample random generators for the training transforms.

A transform with ``seed=None`` draws from one ``np.random.default_rng()`` per process (OS
entropy; created lazily after the data-loader workers fork, so workers never share a state).

With an integer ``seed`` every call gets its own generator seeded from
``(seed, transform name, sample key[, visit, worker id, rank])``:

* ``fixed_per_sample=True`` (validation): the key alone, so a sample gets the same random
  draws every time it is loaded, in any process and any order.
* ``fixed_per_sample=False`` (training): the key plus how many times this process has seen
  the sample, the data-loader worker id and the distributed rank, so each epoch draws anew
  and a run with the same seed, worker count and sampler order is reproducible.

The sample key is ``results['sample_key']`` when a dataset provides it, else
``img_path`` + ``sample_id`` (+ ``crop_mode``). A resumed training run adds a *run salt*
(:func:`set_run_salt`, set by :class:`~mmseg_refiner.engine.loops.ReseedingIterBasedTrainLoop`)
so it does not replay the first run's draws. The generators come from
:func:`mmseg_refiner.utils.rng.keyed_generator`, the package's one recipe.
"""
import os
from collections import defaultdict
from typing import Optional

import numpy as np
import torch.utils.data
from mmengine.dist import get_rank

from mmseg_refiner.utils.rng import keyed_generator

_RUN = {'salt': 0}


def set_run_salt(salt: int) -> None:
    """Mix ``salt`` into every training draw from now on (0, the default, mixes nothing).

    Set it in the main process before the data-loader workers start (they inherit it).
    """
    if not isinstance(salt, int) or salt < 0:
        raise ValueError(f'salt must be a non-negative int, got {salt!r}')
    _RUN['salt'] = salt


def sample_key(results: dict) -> str:
    """The string that identifies a sample across datasets (see module docstring)."""
    if 'sample_key' in results:
        return str(results['sample_key'])
    parts = [results.get('img_path'), results.get('sample_id'), results.get('crop_mode')]
    key = '|'.join(str(p) for p in parts if p is not None)
    return key or str(results.get('sample_idx', ''))


class SampleRNG:
    """Gives a transform ``self.rng(results) -> np.random.Generator`` (see module docstring).

    Args:
        seed (int, optional): Base seed; None uses OS entropy. Defaults to None.
        fixed_per_sample (bool): Same draws for a sample every time. Defaults to False.
    """

    def __init__(self, seed: Optional[int] = None, fixed_per_sample: bool = False):
        if seed is not None and (not isinstance(seed, int) or seed < 0):
            raise ValueError(f'seed must be a non-negative int or None, got {seed!r}')
        self.seed = seed
        self.fixed_per_sample = fixed_per_sample
        self._pid = None
        self._default = None
        self._visits = defaultdict(int)

    def __call__(self, results: dict, salt: str) -> np.random.Generator:
        """A generator for one call on ``results``; ``salt`` separates transforms."""
        if self._pid != os.getpid():  # fresh state in each forked worker
            self._pid, self._default, self._visits = os.getpid(), None, defaultdict(int)
        if self.seed is None:
            if self._default is None:
                self._default = np.random.default_rng()
            return self._default
        key = sample_key(results)
        parts = [self.seed, salt, key]
        if not self.fixed_per_sample:
            worker = torch.utils.data.get_worker_info()
            parts += [self._visits[key], worker.id if worker else 0, get_rank()]
            parts += [_RUN['salt']] if _RUN['salt'] else []
            self._visits[key] += 1
        return keyed_generator(*parts)
