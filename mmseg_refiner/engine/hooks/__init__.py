from . import adapters
from .refiner_hook import SegRefinerHook

__all__ = ['SegRefinerHook', 'adapters']
