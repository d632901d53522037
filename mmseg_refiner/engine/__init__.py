"""Runner components: the hook that refines mmdet / mmseg predictions in val/test loops, the
CPU mixed-precision optimizer wrapper, and the training loop / time budget of long runs."""
from .hooks import SegRefinerHook
from .loops import ReseedingIterBasedTrainLoop
from .optim_wrapper import AutocastOptimWrapper
from .time_budget import TimeBudgetHook

__all__ = [
    'SegRefinerHook', 'AutocastOptimWrapper', 'ReseedingIterBasedTrainLoop', 'TimeBudgetHook'
]
