"""ReseedingIterBasedTrainLoop._reseed on a real DataLoader (no Runner needed)."""
import logging

import pytest
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader

from mmseg_refiner.datasets.transforms.rng import set_run_salt
from mmseg_refiner.engine.loops import ReseedingIterBasedTrainLoop


@pytest.fixture(autouse=True)
def no_salt_left_behind():
    """_reseed sets the process-wide run salt: later tests must not inherit it."""
    yield
    set_run_salt(0)


class _Runner:
    logger = logging.getLogger('test_engine_loops')


def _loop(seed, num_workers=0):
    data = list(range(20))
    loader = DataLoader(data, batch_size=4, sampler=InfiniteSampler(data, shuffle=True, seed=seed),
                        num_workers=num_workers, persistent_workers=num_workers > 0)
    loop = ReseedingIterBasedTrainLoop.__new__(ReseedingIterBasedTrainLoop)
    loop.dataloader, loop._runner = loader, _Runner()
    loop.dataloader_iterator = _InfiniteDataloaderIterator(loader)
    return loop


def _draw(loop, skip, n=10):
    for _ in range(skip):
        assert next(loop.dataloader_iterator) is None  # the base loop's fast-forward: free
    return torch.cat([next(loop.dataloader_iterator) for _ in range(n)]).tolist()


def test_reseed_draws_the_offset_seeds_stream_and_never_ends():
    reference = _loop(7 + 5)
    expected = torch.cat([next(reference.dataloader_iterator) for _ in range(10)]).tolist()
    for workers in (0, 2):
        loop = _loop(7, workers)
        first = next(loop.dataloader_iterator).tolist()  # the workers of the run before
        loop._reseed(5)
        assert loop.dataloader.sampler.seed == 12
        # 10 batches = 2 epochs of 20 items, more than the workers had prefetched
        assert _draw(loop, 5) == expected, workers
        assert first != expected[:4]
