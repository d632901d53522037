"""Runner components: the hook that refines mmdet / mmseg predictions in val/test loops, and
the CPU mixed-precision optimizer wrapper used for training."""
from .hooks import SegRefinerHook
from .optim_wrapper import AutocastOptimWrapper

__all__ = ['SegRefinerHook', 'AutocastOptimWrapper']
