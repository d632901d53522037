"""Data preprocessor of the refiner: BGR uint8 -> normalized RGB float, masks stacked."""
from typing import Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from mmseg_refiner.registry import MODELS

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)


@MODELS.register_module()
class RefinerDataPreprocessor(BaseDataPreprocessor):
    """Normalize images for the refiner (ImageNet mean/std in RGB).

    Inputs are uint8 BGR tensors (3, H, W) as mmcv loads them; all images of a batch share
    one size (the pipelines resize to the refiner's working size).

    Args:
        mean (Sequence[float]): RGB mean. Defaults to ImageNet's.
        std (Sequence[float]): RGB std. Defaults to ImageNet's.
        bgr_to_rgb (bool): Flip channel order first. Defaults to True.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN_RGB,
                 std: Sequence[float] = IMAGENET_STD_RGB, bgr_to_rgb: bool = True):
        super().__init__()
        self.register_buffer('mean',
                             torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                             persistent=False)
        self.register_buffer('std',
                             torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                             persistent=False)
        self.bgr_to_rgb = bgr_to_rgb

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) or (3, H, W) BGR 0-255 -> normalized float RGB on this device."""
        images = images.to(self.mean.device).float()
        if self.bgr_to_rgb:
            images = images.flip(-3)
        return (images - self.mean) / self.std

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            sizes = {tuple(x.shape) for x in inputs}
            if len(sizes) != 1:
                raise ValueError(f'refiner batches need images of one size, got {sorted(sizes)}')
            inputs = torch.stack(list(inputs))
        return dict(inputs=self.normalize(inputs), data_samples=data.get('data_samples'))
