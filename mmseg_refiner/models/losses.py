"""Losses of SegRefiner: BCE on logits + the "texture" L1 on Sobel gradient magnitudes."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg_refiner.registry import MODELS


def sobel_magnitude(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Sobel gradient magnitude of a (B, 1, H, W) map after a 3x3 average pool."""
    kx = x.new_tensor([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]]) / 4
    kernel = torch.stack([kx, kx.t()])[:, None]  # (2, 1, 3, 3)
    x = F.avg_pool2d(x, 3, stride=1, padding=1)
    g = F.conv2d(x, kernel, padding=1)
    return torch.sqrt(g[:, :1]**2 + g[:, 1:]**2 + eps)


@MODELS.register_module()
class TextureL1Loss(nn.Module):
    """L1 between Sobel magnitudes of ``sigmoid(logits)`` and of the target.

    Args:
        loss_weight (float): Weight. Defaults to 5.0 (the reference).
    """

    def __init__(self, loss_weight: float = 5.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = sobel_magnitude(logits.float().sigmoid())
        gt = sobel_magnitude(target.float())
        return self.loss_weight * F.l1_loss(pred, gt)


@MODELS.register_module()
class MaskBCELoss(nn.Module):
    """Binary cross-entropy on logits.

    Args:
        loss_weight (float): Weight. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(logits.float(), target.float())
        return self.loss_weight * loss
