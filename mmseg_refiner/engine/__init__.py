"""Runner components: the hook that refines mmdet / mmseg predictions in val/test loops."""
from .hooks import SegRefinerHook

__all__ = ['SegRefinerHook']
