"""ReseedingIterBasedTrainLoop: resume in seconds, and draw new data instead of replaying it."""
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from mmseg_refiner.datasets.transforms.rng import set_run_salt
from mmseg_refiner.registry import LOOPS


class _SkipFirst:
    """Iterator whose first ``count`` items are None, without touching ``iterator``."""

    def __init__(self, iterator, count: int):
        self.iterator, self.count = iterator, count

    def __iter__(self):
        return self

    def __next__(self):
        if self.count > 0:
            self.count -= 1
            return None
        return next(self.iterator)


@LOOPS.register_module()
class ReseedingIterBasedTrainLoop(IterBasedTrainLoop):
    """:class:`~mmengine.runner.IterBasedTrainLoop` for runs that are resumed many times.

    mmengine's loop resumes at iteration ``n`` by pulling ``n`` batches through the data
    pipeline and dropping them (minutes to hours for a long run with online coarse-mask
    synthesis), and without that it would replay the first run's samples: the sampler and
    the seeded transforms start afresh (their per-sample generators count visits per
    process, see :mod:`~mmseg_refiner.datasets.transforms.rng`). Here a resume at ``n > 0``
    skips no data; instead the sampler's seed is offset by ``n``, ``n`` becomes the
    transforms' run salt (:func:`~mmseg_refiner.datasets.transforms.rng.set_run_salt`) and
    the data loader is restarted so its workers see both: new draws, reproducible for a given
    resume point. A run from iteration 0 is exactly the plain loop.
    """

    def run(self):
        if self._iter > 0:
            self._reseed(self._iter)
        return super().run()

    def _reseed(self, offset: int) -> None:
        set_run_salt(offset)
        sampler = getattr(self.dataloader, 'sampler', None)
        if getattr(sampler, 'seed', None) is not None:
            sampler.seed = sampler.seed + offset
            if hasattr(sampler, '_indices_of_rank'):
                # InfiniteSampler draws from ONE index generator made in __init__ with the
                # old seed, and closing the old workers' iterator closes it: make a new one.
                sampler.indices = sampler._indices_of_rank()
        # The workers were forked when the loop was built (before the checkpoint was loaded):
        # shut them down so that new ones start with the salt and the new sampler seed.
        old = getattr(self.dataloader_iterator, '_iterator', None)
        if hasattr(old, '_shutdown_workers'):
            old._shutdown_workers()
        if getattr(self.dataloader, '_iterator', None) is not None:  # persistent workers
            self.dataloader._iterator = None
        # The base loop's fast-forward then consumes ``offset`` free items.
        self.dataloader_iterator = _SkipFirst(_InfiniteDataloaderIterator(self.dataloader), offset)
        self.runner.logger.info(f'resumed at iteration {offset}: data re-seeded '
                                f'(sampler seed + {offset}, transforms run salt {offset}), '
                                'no batches replayed')
