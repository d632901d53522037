"""Data transforms of the refiner pipelines (registered in the ``mmseg_refiner`` scope)."""
from .coarse import GenerateCoarseMask
from .crop import CropAroundObject, RefinerRandomFlip
from .formatting import PackRefinerInputs
from .loading import LoadImageAndMask, LoadMaskFromFile
from .rng import SampleRNG

__all__ = [
    'GenerateCoarseMask', 'CropAroundObject', 'RefinerRandomFlip', 'PackRefinerInputs',
    'LoadImageAndMask', 'LoadMaskFromFile', 'SampleRNG'
]
