from .data_preprocessor import RefinerDataPreprocessor
from .losses import MaskBCELoss, TextureL1Loss
from .refiner import DEFAULT_TEST_CFG, DiffusionRefiner, RefineOutput
from .sampler import TransitionOutput, TransitionSampler
from .unet import SegRefinerUNet

__all__ = [
    'DiffusionRefiner', 'RefineOutput', 'DEFAULT_TEST_CFG', 'SegRefinerUNet', 'TransitionSampler',
    'TransitionOutput', 'RefinerDataPreprocessor', 'MaskBCELoss', 'TextureL1Loss'
]
