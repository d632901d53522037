"""Runner components: the hook that refines mmdet / mmseg predictions in val/test loops, the
CPU mixed-precision optimizer wrapper, the training loop / time budget of long runs, and the
``atomic_local`` file backend that writes checkpoints atomically."""
from .atomic_backend import AtomicLocalBackend
from .hooks import SegRefinerHook
from .loops import ReseedingIterBasedTrainLoop
from .optim_wrapper import AutocastOptimWrapper
from .time_budget import TimeBudgetHook

__all__ = [
    'SegRefinerHook', 'AutocastOptimWrapper', 'ReseedingIterBasedTrainLoop', 'TimeBudgetHook',
    'AtomicLocalBackend'
]
