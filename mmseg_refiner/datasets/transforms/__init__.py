"""Data transforms of the refiner pipelines (registered in the ``mmseg_refiner`` scope)."""
from .coarse import GenerateCoarseMask
from .crop import CropAroundObject, RandomErrorWindow, RefinerRandomFlip
from .formatting import PackRefinerInputs
from .hr_crop import CropHRSample
from .loading import LoadImageAndMask, LoadMaskFromFile
from .rng import SampleRNG

__all__ = [
    'GenerateCoarseMask', 'CropAroundObject', 'CropHRSample', 'RefinerRandomFlip',
    'PackRefinerInputs', 'LoadImageAndMask', 'LoadMaskFromFile', 'SampleRNG', 'RandomErrorWindow'
]
