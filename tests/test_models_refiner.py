import torch
from mmengine.structures import BaseDataElement, PixelData

from mmseg_refiner.models.refiner import DiffusionRefiner


def _batch(b=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 256, (b, 3, size, size), generator=g, dtype=torch.uint8)
    samples = []
    for _ in range(b):
        gt = (torch.rand(1, size, size, generator=g) > 0.5).to(torch.uint8)
        coarse = (torch.rand(1, size, size, generator=g) > 0.5).to(torch.uint8)
        samples.append(
            BaseDataElement(gt_mask=PixelData(data=gt), coarse_mask=PixelData(data=coarse)))
    return dict(inputs=list(inputs), data_samples=samples)


def test_loss_keys_and_backward(tiny_refiner):
    tiny_refiner.train()
    data = tiny_refiner.data_preprocessor(_batch(), training=True)
    losses = tiny_refiner(**data, mode='loss')
    assert set(losses) == {'loss_mask', 'loss_texture', 'iou'}
    total = losses['loss_mask'] + losses['loss_texture']
    total.backward()
    grads = [p.grad for p in tiny_refiner.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_train_step_updates_weights(tiny_refiner):
    from mmengine.optim import OptimWrapper
    tiny_refiner.train()
    wrapper = OptimWrapper(torch.optim.AdamW(tiny_refiner.parameters(), lr=1e-3))
    before = tiny_refiner.backbone.out[2].weight.clone()
    log = tiny_refiner.train_step(_batch(), wrapper)
    assert 'loss' in log and torch.isfinite(log['loss'])
    assert not torch.equal(before, tiny_refiner.backbone.out[2].weight)


def test_predict_adds_masks(tiny_refiner):
    data = tiny_refiner.data_preprocessor(_batch(), training=False)
    out = tiny_refiner(**data, mode='predict')
    assert out[0].pred_mask.data.shape == (1, 32, 32)
    assert out[0].pred_mask.data.dtype == torch.bool
    fine = out[0].pred_fine_prob.data
    assert fine.min() >= 0 and fine.max() <= 1


def test_refine_batch_seeded_and_chunked(tiny_refiner):
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    imgs = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    coarse = (torch.rand(5, 1, 32, 32, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    a = tiny_refiner.refine_batch(imgs, coarse, generator=torch.Generator().manual_seed(0))
    b = tiny_refiner.refine_batch(imgs, coarse, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.prob, b.prob)
    assert a.prob.shape == (5, 1, 32, 32) and a.num_calls.tolist() == [6] * 5
    c = tiny_refiner.refine_batch(imgs, coarse, steps=2,
                                  generator=torch.Generator().manual_seed(0))
    assert c.num_calls.tolist() == [2] * 5


def test_adaptive_stop_zero_equals_fixed_schedule(tiny_refiner):
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    imgs = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    coarse = (torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    fixed = tiny_refiner.refine_batch(imgs, coarse, generator=torch.Generator().manual_seed(0))
    zero = tiny_refiner.refine_batch(imgs, coarse, stop_thr=0.0,
                                     generator=torch.Generator().manual_seed(0))
    assert torch.equal(fixed.prob, zero.prob) and torch.equal(fixed.fine_prob, zero.fine_prob)
    early = tiny_refiner.refine_batch(imgs, coarse, stop_thr=1.01,
                                      generator=torch.Generator().manual_seed(0))
    assert early.num_calls.tolist() == [1, 1, 1]  # everything stops after the first call


def test_released_checkpoint_keys_are_mapped(tiny_refiner):
    state = {('denoise_model.' + k): v for k, v in tiny_refiner.backbone.state_dict().items()}
    fresh = DiffusionRefiner(backbone=dict(type='SegRefinerUNet', model_channels=8, channel_mult=(
        1, 2), attention_strides=(2, ), num_heads=1, norm_num_groups=4))
    result = fresh.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_builds_under_a_host_default_scope(tmp_path):
    """A host config (``default_scope='mmdet'``) builds ``mmseg_refiner.DiffusionRefiner``:
    its nested parts (data preprocessor, backbone, sampler, losses) are built in the plugin's
    scope, not in the host's."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    from conftest import TINY_CONFIG
    model = Config.fromfile(TINY_CONFIG).model.to_dict()
    model['type'] = 'mmseg_refiner.DiffusionRefiner'
    host = tmp_path / 'host.py'
    host.write_text(f"default_scope = 'mmdet'\nmodel = {model!r}\n")
    cfg = Config.fromfile(str(host))
    assert cfg.default_scope == 'mmdet'
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        refiner = MODELS.build(cfg.model)
    assert isinstance(refiner, DiffusionRefiner)
    assert type(refiner.data_preprocessor).__name__ == 'RefinerDataPreprocessor'
    assert type(refiner.backbone).__name__ == 'SegRefinerUNet'
