import numpy as np
import torch

from mmseg_refiner.inference.crops import crop_resize_mask, expand_box, mask_to_box, paste_prob
from mmseg_refiner.inference.strategies import choose_mode, refine_instances


class IdentityUNet(torch.nn.Module):
    """Predicts the current mask state with full confidence (logits +-20)."""

    def forward(self, x, t):
        return (x[:, 3:4] * 2 - 1) * 20


def _identity(refiner):
    refiner.backbone = IdentityUNet()
    return refiner


def test_box_helpers():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert mask_to_box(m) == (3, 2, 9, 5)
    assert mask_to_box(np.zeros_like(m)) is None
    assert expand_box((3, 2, 9, 5), 4, m.shape) == (0, 0, 12, 9)


def test_crop_paste_round_trip_exact_at_working_size(tiny_refiner):
    """Box == working size: an identity model gives back the coarse mask bit for bit."""
    refiner = _identity(tiny_refiner)
    refiner.test_cfg.update(pad=0, area_thr=1)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[10:42, 20:52] = rng.random((32, 32)) > 0.3  # box exactly 32x32 = crop_size
    mask[10, 20] = mask[41, 51] = True
    out = refine_instances(refiner, image, mask[None], generator=torch.Generator().manual_seed(0))
    assert np.array_equal(out.prob[0].numpy() >= 0.5, mask)
    assert out.num_calls.tolist() == [6] and out.refined.tolist() == [True]


def test_crop_paste_round_trip_close_when_rescaled(tiny_refiner):
    refiner = _identity(tiny_refiner)
    yy, xx = np.mgrid[:120, :150]
    mask = ((yy - 60) / 40)**2 + ((xx - 75) / 55)**2 < 1
    image = np.zeros((120, 150, 3), np.uint8)
    out = refine_instances(refiner, image, mask[None])
    refined = out.prob[0].numpy() >= 0.5
    iou = (refined & mask).sum() / (refined | mask).sum()
    assert iou > 0.95
    # the same geometry as crop_resize_mask + paste_prob, i.e. one code path
    box = expand_box(mask_to_box(mask), refiner.test_cfg['pad'], mask.shape)
    small = crop_resize_mask(mask, box, (32, 32))
    pasted = paste_prob(torch.from_numpy(small).float(), box, mask.shape).numpy() >= 0.5
    assert np.array_equal(pasted, refined)


def test_auto_mode_by_object_size(tiny_refiner):
    small, big = np.zeros((100, 100), bool), np.zeros((100, 100), bool)
    small[10:30, 10:30] = True
    big[0:90, 0:90] = True  # tiny config: hr_size 48
    assert choose_mode(tiny_refiner, small, 'auto') == 'instance'
    assert choose_mode(tiny_refiner, big, 'auto') == 'hr'
    assert choose_mode(tiny_refiner, big, 'global') == 'global'
