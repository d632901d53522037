"""The ``reference`` preset: the published hr / global inference, pinned on hand-built inputs.

Expected values are written out from the algorithm (mmseg_refiner/inference/reference.py
docstring), not computed by the code under test.
"""
import numpy as np
import pytest
import torch

from mmseg_refiner.inference import reference
from mmseg_refiner.inference.strategies import PRESETS, choose_mode, run_strategy

# A 4x4 global fine-probability map for a 10x12 image and 4x4 patches (max 1.0, thr 0.9).
FINE_MAP = [[0.1, 1.0, 1.0, 1.0], [1.0, 0.5, 1.0, 1.0], [1.0, 1.0, 1.0, 0.2],
            [0.95, 1.0, 1.0, 0.6]]
# uncertain pixels in raster order -> centres (int(y * 10 / 4), int(x * 12 / 4)), 1 - p
EXPECTED_CENTRES = dict(ys=[0, 2, 5, 7], xs=[0, 3, 9, 9], scores=[0.9, 0.5, 0.8, 0.4])
# boxes (x0 = x - 2 clamped to [0, 12 - 4], y0 = y - 2 to [0, 10 - 4]): (0,0,4,4) .9,
# (1,0,5,4) .5, (7,3,11,7) .8, (7,5,11,9) .4. NMS 0.3, best first: (1,0,5,4) overlaps
# (0,0,4,4) by 12/20 and (7,5,11,9) overlaps (7,3,11,7) by 8/24: both suppressed.
EXPECTED_BOXES = [(0, 0, 4, 4), (7, 3, 11, 7)]


def test_patch_centres_follow_the_reference_rule():
    ys, xs, scores = reference.patch_centres(torch.tensor(FINE_MAP), (10, 12), thr=0.9)
    assert ys.tolist() == EXPECTED_CENTRES['ys']
    assert xs.tolist() == EXPECTED_CENTRES['xs']
    assert scores.tolist() == pytest.approx(EXPECTED_CENTRES['scores'])


def test_patch_boxes_shift_inside_and_nms():
    ys, xs, scores = reference.patch_centres(torch.tensor(FINE_MAP), (10, 12), thr=0.9)
    assert reference.patch_boxes(ys, xs, scores, (10, 12), 4, 0.3) == EXPECTED_BOXES
    # no cap: with NMS off every candidate survives, most uncertain first
    assert len(reference.patch_boxes(ys, xs, scores, (10, 12), 4, 1.0)) == 4
    assert reference.patch_boxes(ys, xs, scores, (3, 12), 4, 0.3) == []  # image < patch


def test_mixed_patches_and_paste_average():
    mask = torch.zeros(6, 8, dtype=torch.bool)
    mask[:, :3] = True
    boxes = [(0, 0, 4, 4), (4, 0, 8, 4), (1, 2, 5, 6)]
    assert reference.mixed_patches(mask, boxes) == [(0, 0, 4, 4), (1, 2, 5, 6)]
    canvas = torch.full((6, 8), 0.25)
    out = reference.paste_patches(canvas, [torch.ones(4, 4), torch.zeros(4, 4)], [(0, 0, 4, 4),
                                                                                  (1, 2, 5, 6)])
    assert out[0, 0] == 1 and out[5, 4] == 0 and out[3, 2] == 0.5  # one, other, both
    assert out[5, 7] == 0.25 and canvas[0, 0] == 0.25  # uncovered kept; canvas not changed


class StubUNet(torch.nn.Module):
    """Global stage (t >= 1): keeps the mask, confidence set by the image (bright = sure).
    Local stage (t = 0): +20 in the top half of each patch, -10 in the bottom half."""

    def forward(self, x, t):
        mask, img = x[:, 3:4], x[:, :1]
        if int(t[0]) == 0:
            top = torch.arange(x.shape[2]) < x.shape[2] // 2
            return torch.where(top[None, None, :, None], 20.0, -10.0).expand_as(mask).clone()
        return (2 * mask - 1) * torch.where(img > 0, torch.full_like(img, 20.0), 2.2 + img)


def _hr_case():
    """A 40x48 grey image, 8x8 global map (blocks of 5x6 px); dark blocks are uncertain.

    Block (gy, gx) grey level: A (1,1) 0, D (7,7) 10, B (1,2) 20, E (2,2) 30, C (0,1) 40
    (darker = less confident = higher score). Coarse mask: y < 20, x < 12.
    """
    image = np.full((40, 48, 3), 255, np.uint8)
    for (gy, gx), v in {(1, 1): 0, (7, 7): 10, (1, 2): 20, (2, 2): 30, (0, 1): 40}.items():
        image[gy * 5:gy * 5 + 5, gx * 6:gx * 6 + 6] = v
    mask = np.zeros((40, 48), bool)
    mask[:20, :12] = True
    return image, mask


def _expected_hr_mask():
    """From the algorithm: centres (5 gy, 6 gx); 8x8 boxes A (2,1,10,9), D (38,31,46,39),
    B (8,1,16,9), E (8,6,16,14), C (2,0,10,8) is suppressed by A (IoU 56/72). Mixed: B, E
    (A is all foreground, D all background). Rows 1-4 of B: +; row 5: B bottom (-); rows 6-8:
    B bottom and E top, averaged 0.50002 >= 0.5; row 9: E top; rows 10-13: E bottom."""
    expected = np.zeros((40, 48), bool)
    expected[:20, :12] = True
    expected[1:14, 8:16] = False
    expected[[1, 2, 3, 4, 6, 7, 8, 9], 8:16] = True
    return expected


def test_reference_hr_end_to_end_on_a_stub(tiny_refiner):
    tiny_refiner.backbone = StubUNet()
    cfg = {
        **tiny_refiner.test_cfg, 'crop_size': 8, 'preset': 'reference', 'hr_fine_thr': 0.9,
        'hr_nms_iou': 0.3
    }
    image, mask = _hr_case()
    out = run_strategy(tiny_refiner, 'hr', image, mask[None],
                       generator=torch.Generator().manual_seed(0), cfg=cfg)
    assert np.array_equal(out.prob[0].numpy() >= 0.5, _expected_hr_mask())
    assert out.num_calls.tolist() == [6] and out.refined.tolist() == [True]  # 5 global + 1


def test_reference_tiny_masks_come_back_empty(tiny_refiner):
    cfg = {**tiny_refiner.test_cfg, 'preset': 'reference'}
    image, mask = _hr_case()
    tiny = np.zeros_like(mask)
    tiny[:8, :16] = True  # 128 px: "<= 128" -> empty
    for mode in ('hr', 'global'):
        out = run_strategy(tiny_refiner, mode, image, tiny[None], cfg=cfg)
        assert not out.prob.any() and out.refined.tolist() == [False]


def test_reference_global_is_nearest_both_ways(tiny_refiner):
    """An identity model on block-aligned input gives the mask back exactly (no blur)."""

    class Identity(torch.nn.Module):

        def forward(self, x, t):
            return (x[:, 3:4] * 2 - 1) * 20

    tiny_refiner.backbone = Identity()
    cfg = {**tiny_refiner.test_cfg, 'crop_size': 8, 'preset': 'reference'}
    image, mask = _hr_case()
    out = run_strategy(tiny_refiner, 'global', image, mask[None], cfg=cfg)
    assert np.array_equal(out.prob[0].numpy() >= 0.5, mask)


def test_local_stage_starts_from_given_fine_probs(tiny_refiner):
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randn(2, 3, 32, 32, generator=gen)
    coarse = (torch.rand(2, 1, 32, 32, generator=gen) > 0.5).float()
    init = torch.rand(2, 1, 32, 32, generator=gen)
    zero = tiny_refiner.refine_batch(imgs, coarse, steps=[0])
    started = tiny_refiner.refine_batch(imgs, coarse, steps=[0], fine_prob_init=init)
    assert torch.equal(zero.prob, started.prob)  # only the confidence differs
    assert torch.allclose(started.fine_prob, init + (1 - init) * zero.fine_prob)


def test_presets_agree_on_the_instance_path_and_differ_on_hr(tiny_refiner, blob_sample):
    image, _, coarse = blob_sample
    outs = {}
    for preset in PRESETS:
        cfg = {**tiny_refiner.test_cfg, 'preset': preset}
        for mode in ('instance', 'hr'):
            outs[preset, mode] = run_strategy(tiny_refiner, mode, image, coarse[None],
                                              generator=torch.Generator().manual_seed(0), cfg=cfg)
    for field in ('prob', 'fine_prob', 'num_calls'):
        assert torch.equal(getattr(outs['default', 'instance'], field),
                           getattr(outs['reference', 'instance'], field))
    assert not torch.equal(outs['default', 'hr'].prob, outs['reference', 'hr'].prob)


def test_unknown_preset_is_a_clear_error(tiny_refiner, blob_sample):
    image, _, coarse = blob_sample
    cfg = {**tiny_refiner.test_cfg, 'preset': 'paper'}
    with pytest.raises(ValueError, match="unknown preset 'paper'.*default, reference"):
        run_strategy(tiny_refiner, 'hr', image, coarse[None], cfg=cfg)
    with pytest.raises(ValueError, match='valid presets'):
        choose_mode(tiny_refiner, coarse, 'auto', cfg=cfg)
