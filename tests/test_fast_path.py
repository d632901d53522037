"""The fast inference/training path: bf16 autocast + channels_last, and how it is chosen.

Tolerances (tiny random model, 32 px, 6 steps): bf16 masks agree with fp32 on at least 97 %
of the pixels (bf16 keeps 8 bits of mantissa, so pixels whose fp32 logit is within ~1 % of 0
may flip; a flip early in the reverse process also changes later sampling). fp32
channels_last agrees with fp32 NCHW to 1e-4 in the logits and exactly in the masks. Speed is
measured by ``mmseg-refiner benchmark speed``, never here.
"""
import pytest
import torch

import mmseg_refiner.models.refiner as refiner_module
from mmseg_refiner.models import SegRefinerUNet
from mmseg_refiner.models.unet import GroupNorm32

TINY = dict(model_channels=8, channel_mult=(1, 2), attention_strides=(2, ), num_heads=2,
            norm_num_groups=4)
BF16_MASK_AGREEMENT = 0.97


def _unet(seed=0):
    torch.manual_seed(seed)
    net = SegRefinerUNet(**TINY).eval()
    torch.nn.init.normal_(net.out[2].weight, std=0.5)
    return net


def _inputs(b=3, size=32):
    imgs = torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(1))
    coarse = (torch.rand(b, 1, size, size, generator=torch.Generator().manual_seed(2)) > 0.5)
    return imgs, coarse.float()


@pytest.fixture
def logged(monkeypatch):
    """Messages the refiner logs (once per process: the memory is cleared per test)."""
    lines = []
    monkeypatch.setattr(refiner_module, '_LOGGED', set())
    monkeypatch.setattr(refiner_module, 'print_log',
                        lambda msg, logger=None, level=None: lines.append((msg, level)))
    return lines


@pytest.fixture
def native(monkeypatch):
    """Set what the (mocked) capability check answers."""

    def set_native(value: bool):
        monkeypatch.setattr(refiner_module, 'native_bf16', lambda device: value)

    return set_native


# ---------------------------------------------------------------------- the U-Net
def test_channels_last_keeps_keys_values_and_outputs():
    net = _unet()
    x, t = torch.randn(2, 4, 32, 32), torch.tensor([5, 1])
    with torch.no_grad():
        ref = net(x, t)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        net.set_channels_last(True)
        out = net(x, t)
    assert net.channels_last
    assert net.input_blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert list(net.state_dict()) == list(state)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    net.set_channels_last(False)
    assert net.input_blocks[0][0].weight.is_contiguous()


def test_bf16_activations_stay_bf16_and_channels_last():
    net = _unet().set_channels_last(True)
    seen = []
    for m in net.modules():
        if isinstance(m, (GroupNorm32, torch.nn.SiLU, torch.nn.Conv2d)):
            m.register_forward_hook(lambda mod, inp, out: seen.append(out))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        net(torch.randn(1, 4, 32, 32), torch.tensor([3]))
    seen = [o for o in seen if o.dim() == 4]  # not the (B, E) timestep embedding
    assert seen and all(o.dtype == torch.bfloat16 for o in seen)
    assert all(o.is_contiguous(memory_format=torch.channels_last) for o in seen)


def test_groupnorm_bf16_matches_its_fp32_round_trip():
    torch.manual_seed(0)
    norm = GroupNorm32(4, 16)
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(2, 16, 8, 8).bfloat16()
    out = norm(x)
    assert out.dtype == torch.bfloat16
    reference = torch.nn.GroupNorm.forward(norm, x.float()).bfloat16()  # the former path
    torch.testing.assert_close(out.float(), reference.float(), atol=0.02, rtol=0.01)


# ---------------------------------------------------------------------- choosing the path
def test_auto_uses_bf16_where_native(tiny_refiner, native, logged):
    native(True)
    assert tiny_refiner.test_cfg['autocast'] == 'auto'
    assert tiny_refiner.precision() == (torch.bfloat16, True)
    assert logged == []


def test_auto_falls_back_to_fp32_with_one_log_line(tiny_refiner, native, logged):
    native(False)
    assert tiny_refiner.precision() == (None, True)
    assert tiny_refiner.precision() == (None, True)
    assert len(logged) == 1 and "autocast='auto'" in logged[0][0] and 'fp32' in logged[0][0]


def test_forced_bf16_without_native_support_works_and_warns(tiny_refiner, native, logged):
    import logging
    native(False)
    cfg = tiny_refiner.merged_cfg(dict(autocast='bf16'))
    assert tiny_refiner.precision(cfg) == (torch.bfloat16, True)
    assert len(logged) == 1 and logged[0][1] == logging.WARNING and 'slower' in logged[0][0]
    imgs, coarse = _inputs(1)
    out = tiny_refiner.refine_batch(imgs, coarse, cfg=cfg)
    assert out.prob.dtype == torch.float32 and out.prob.shape == (1, 1, 32, 32)


@pytest.mark.parametrize('autocast, layout, expected', [
    (None, 'auto', (None, False)),
    ('fp32', 'auto', (None, False)),
    ('fp32', True, (None, True)),
    ('bf16', False, (torch.bfloat16, False)),
    ('fp16', 'auto', (torch.float16, True)),
])
def test_explicit_precision(tiny_refiner, native, autocast, layout, expected):
    native(True)
    cfg = tiny_refiner.merged_cfg(dict(autocast=autocast, channels_last=layout))
    assert tiny_refiner.precision(cfg) == expected


@pytest.mark.parametrize('key, value, match', [
    ('autocast', 'int8', 'autocast must be one of'),
    ('channels_last', 'yes', "channels_last must be 'auto', True or False"),
])
def test_bad_precision_options_are_clear_errors(tiny_refiner, key, value, match):
    with pytest.raises(ValueError, match=match):
        tiny_refiner.precision(tiny_refiner.merged_cfg({key: value}))


def test_merged_cfg_validates_and_copies(tiny_refiner):
    before = dict(tiny_refiner.test_cfg)
    cfg = tiny_refiner.merged_cfg(dict(steps=2, autocast='fp32'))
    assert cfg['steps'] == 2 and cfg['autocast'] == 'fp32'
    assert tiny_refiner.test_cfg == before
    with pytest.raises(KeyError, match=r"unknown test_cfg keys \['stepz'\]; valid: "):
        tiny_refiner.merged_cfg(dict(stepz=2))


# ---------------------------------------------------------------------- same masks
def _refine(refiner, cfg):
    imgs, coarse = _inputs()
    return refiner.refine_batch(imgs, coarse, generator=torch.Generator().manual_seed(0),
                                cfg=refiner.merged_cfg(cfg))


def test_fp32_channels_last_gives_the_fp32_masks(tiny_refiner):
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    ref = _refine(tiny_refiner, dict(autocast=None))
    fast = _refine(tiny_refiner, dict(autocast=None, channels_last=True))
    assert torch.equal(ref.prob >= 0.5, fast.prob >= 0.5)
    torch.testing.assert_close(fast.prob, ref.prob, atol=1e-4, rtol=1e-4)


def test_bf16_channels_last_masks_agree_with_fp32(tiny_refiner):
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    ref = _refine(tiny_refiner, dict(autocast=None))
    for layout in (True, False):
        fast = _refine(tiny_refiner, dict(autocast='bf16', channels_last=layout))
        agree = ((ref.prob >= 0.5) == (fast.prob >= 0.5)).float().mean().item()
        assert agree >= BF16_MASK_AGREEMENT, (layout, agree)
        assert (fast.prob - ref.prob).abs().mean() < 0.05
        assert torch.equal(fast.num_calls, ref.num_calls)


def test_refine_batch_reads_cfg_not_test_cfg(tiny_refiner):
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    before = dict(tiny_refiner.test_cfg)
    out = _refine(tiny_refiner, dict(steps=2, batch_size=1, stop_thr=1.0, stop_criterion='change'))
    assert out.num_calls.tolist() == [2, 2, 2]  # 'change' never stops before the 2nd call
    assert tiny_refiner.test_cfg == before


def test_compile_option_uses_the_compiled_unet_and_logs_warm_up(tiny_refiner, logged, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, 'compile', lambda module: compiled.append(module) or module)
    keys = list(tiny_refiner.state_dict())
    _refine(tiny_refiner, dict(compile=True, steps=2))
    _refine(tiny_refiner, dict(compile=True, steps=2))
    assert compiled == [tiny_refiner.backbone]  # built once
    assert [m for m, _ in logged if m.startswith('torch.compile: first U-Net call')]
    assert list(tiny_refiner.state_dict()) == keys  # not a submodule


# ---------------------------------------------------------------------- training
def test_autocast_optim_wrapper_trains_channels_last(tiny_refiner):
    from mmseg_refiner.engine import AutocastOptimWrapper
    from mmseg_refiner.models.refiner import DiffusionRefiner
    assert isinstance(tiny_refiner, DiffusionRefiner)
    tiny_refiner.train()
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.AdamW(tiny_refiner.parameters(), lr=1e-3))
    imgs, coarse = _inputs(2)
    from mmengine.structures import BaseDataElement, PixelData
    samples = [
        BaseDataElement(gt_mask=PixelData(data=c), coarse_mask=PixelData(data=1 - c))
        for c in coarse
    ]
    before = tiny_refiner.backbone.out[2].weight.detach().clone()
    with wrapper.optim_context(tiny_refiner):
        losses = tiny_refiner.loss(imgs, samples)
    loss, _ = tiny_refiner.parse_losses(losses)
    wrapper.update_params(loss)
    assert tiny_refiner.backbone.channels_last
    assert torch.isfinite(loss) and not torch.equal(before, tiny_refiner.backbone.out[2].weight)
    off = AutocastOptimWrapper(optimizer=torch.optim.AdamW(tiny_refiner.parameters()),
                               channels_last=False)
    tiny_refiner.backbone.set_channels_last(False)
    with off.optim_context(tiny_refiner):
        pass
    assert not tiny_refiner.backbone.channels_last
