"""SegRefinerHook end to end: tiny random-init mmdet / mmseg models in mmengine's Runner.

The evaluator is a capturing metric, so the tests see exactly what a real metric would
score: the same model and data run through the val loop with the hook off, the test loop
with it on, and the val loop with it on.
"""
import copy
import json
import os.path as osp
import warnings
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement, InstanceData

from mmseg_refiner.apis import init_refiner
from mmseg_refiner.engine import SegRefinerHook
from mmseg_refiner.registry import HOOKS

from conftest import REPO_ROOT, TINY_CONFIG

TINY_MODELS = osp.join(REPO_ROOT, 'tests', 'data', 'tiny_models')
PRED_FIELDS = ('pred_instances', 'pred_panoptic_seg', 'pred_sem_seg')


@METRICS.register_module(force=True)
class CapturePredictions(BaseMetric):
    """Keeps a copy of every prediction the evaluator receives (in ``captured``)."""

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append({f: _copy_tree(sample[f]) for f in PRED_FIELDS if f in sample})

    def compute_metrics(self, results):
        self.captured = list(results)
        return dict(num_samples=len(results))


def _copy_tree(value):
    if torch.is_tensor(value):
        return value.detach().clone()
    return {k: _copy_tree(v) for k, v in value.items()} if isinstance(value, dict) \
        else copy.deepcopy(value)


def write_tiny_data(root) -> str:
    """Two small images (64x80, 72x64) with an ellipse and a box, label maps, COCO json."""
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i, (h, w) in enumerate([(64, 80), (72, 64)]):
        img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        yy, xx = np.mgrid[:h, :w]
        ellipse = ((yy - h / 2) / (h / 4))**2 + ((xx - w / 3) / (w / 5))**2 < 1
        x0, y0, x1, y1 = w - 30, 5, w - 6, 25
        labels = np.zeros((h, w), np.uint8)
        labels[ellipse], labels[y0:y1, x0:x1] = 1, 2
        img[ellipse], img[y0:y1, x0:x1] = (200, 180, 40), (30, 60, 220)
        mmcv.imwrite(img, osp.join(root, 'img', f'{i}.png'))
        mmcv.imwrite(labels, osp.join(root, 'ann', f'{i}.png'))
        images.append(dict(id=i, file_name=f'{i}.png', height=h, width=w))
        anns.append(
            dict(id=i + 1, image_id=i, category_id=2, iscrowd=0, bbox=[x0, y0, x1 - x0, y1 - y0],
                 area=(x1 - x0) * (y1 - y0), segmentation=[[x0, y0, x1, y0, x1, y1, x0, y1]]))
    cats = [dict(id=k + 1, name=n) for k, n in enumerate('abc')]
    with open(osp.join(root, 'ann.json'), 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return str(root)


def save_noisy_refiner(path) -> str:
    """The tiny refiner with a noisy output conv (zero-init otherwise: it would change
    nothing), saved as a checkpoint."""
    torch.manual_seed(0)  # the random init, independent of what ran before
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        refiner = init_refiner(TINY_CONFIG)
    torch.nn.init.normal_(refiner.backbone.out[2].weight, std=0.5,
                          generator=torch.Generator().manual_seed(0))
    torch.save({'state_dict': refiner.state_dict()}, str(path))
    return str(path)


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return write_tiny_data(tmp_path_factory.mktemp('tiny_data'))


@pytest.fixture(scope='module')
def refiner_ckpt(tmp_path_factory):
    return save_noisy_refiner(tmp_path_factory.mktemp('refiner') / 'noisy.pth')


def _diversify_predictions(name, model):
    """Random weights in eval mode predict near-constant maps (one Mask2Former query or one
    Fast-SCNN class wins every pixel); larger output weights give maps with several
    segments. Seeded."""
    gen = torch.Generator().manual_seed(0)
    if name.startswith('mask2former'):
        torch.nn.init.normal_(model.panoptic_head.mask_embed[-1].weight, std=0.3, generator=gen)
    elif name.startswith('fast-scnn'):
        torch.nn.init.normal_(model.decode_head.conv_seg.weight, std=1.0, generator=gen)
        torch.nn.init.zeros_(model.decode_head.conv_seg.bias)


def build_runner(name, data_root, work_dir, hooks=()):
    """A Runner for tests/data/tiny_models/<name>.py on ``data_root``, capturing metric."""
    cfg = Config.fromfile(osp.join(TINY_MODELS, f'{name}.py'))
    for split in ('test', 'val'):
        cfg[f'{split}_dataloader'].dataset.data_root = data_root
        cfg[f'{split}_evaluator'] = dict(type='CapturePredictions')
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg[key] = None
    cfg.update(work_dir=str(work_dir), log_level='WARNING', randomness=dict(seed=0),
               custom_hooks=list(hooks), default_hooks=dict(checkpoint=None))
    runner = Runner.from_cfg(cfg)
    _diversify_predictions(name, runner.model)
    return runner


def hook_cfg(ckpt, **kwargs):
    return dict(type='mmseg_refiner.SegRefinerHook', refiner_config=TINY_CONFIG,
                refiner_checkpoint=ckpt, mode='instance', area_thr=4, **kwargs)


def _check_instances(off, on):
    n_changed = 0
    for a, b in zip(off, on):
        a, b = a['pred_instances'], b['pred_instances']
        assert len(b['masks']) == len(a['masks']) > 0
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(a[key], b[key]), key
        assert b['masks'].dtype == a['masks'].dtype == torch.bool
        assert b['masks'].shape == a['masks'].shape
        n_changed += int((a['masks'] != b['masks']).flatten(1).any(1).sum())
    assert n_changed > 0


def _check_label_maps(off, on, field, key, dtype):
    changed = False
    for a, b in zip(off, on):
        a, b = a[field][key], b[field][key]
        assert a.dtype == b.dtype == dtype and a.shape == b.shape and a.shape[0] == 1
        assert set(b.unique().tolist()) <= set(a.unique().tolist())  # ids kept, none made up
        changed |= not torch.equal(a, b)
    assert changed


CHECKS = {
    'mask-rcnn_r18_fpn_64px':
    _check_instances,
    'mask2former_r18_panoptic_64px':
    lambda off, on: _check_label_maps(off, on, 'pred_panoptic_seg', 'sem_seg', torch.int32),
    'fast-scnn_64px':
    lambda off, on: _check_label_maps(off, on, 'pred_sem_seg', 'data', torch.int64),
}


@pytest.mark.parametrize('name', list(CHECKS))
def test_hook_refines_what_the_evaluator_sees(name, tiny_data, refiner_ckpt, tmp_path):
    # guard off: the random tiny refiner's changes overflow any guard band (option via the hook)
    runner = build_runner(name, tiny_data, tmp_path,
                          [hook_cfg(refiner_ckpt, refine_val=False, guard=False)])
    model = runner.model
    runner.val()  # refine_val=False: the model's own predictions
    off = runner.val_loop.evaluator.metrics[0].captured
    runner.test()
    on = runner.test_loop.evaluator.metrics[0].captured
    assert len(off) == len(on) == 2
    CHECKS[name](off, on)
    hook = next(h for h in runner.hooks if isinstance(h, SegRefinerHook))
    hook.refine_val = True
    runner.val()
    val_on = runner.val_loop.evaluator.metrics[0].captured
    for a, b in zip(on, val_on):  # the val loop is refined alike (same seed, same result)
        for field in a:
            for key, value in a[field].items():
                assert torch.equal(value, b[field][key]), (field, key)
    assert runner.model is model
    assert not {'test_step', 'val_step'} & set(vars(model)), 'steps not restored'
    assert model.test_step.__func__ is type(model).test_step


def test_hook_refines_on_a_ddp_wrapped_model(tiny_data, refiner_ckpt, tmp_path):
    """The wrapped object is the DDP wrapper the loop calls; each rank refines its batch."""
    from mmengine.model import MMDistributedDataParallel
    runner = build_runner('fast-scnn_64px', tiny_data, tmp_path)
    batch = next(iter(runner.test_dataloader))
    plain = [s.pred_sem_seg.data.clone() for s in runner.model.test_step(batch)]
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0,
                                         world_size=1)
    try:
        ddp = MMDistributedDataParallel(module=runner.model, device_ids=None)
        fake_runner = SimpleNamespace(model=ddp, test_loop=runner.test_loop, logger=runner.logger)
        hook = HOOKS.build(hook_cfg(refiner_ckpt))
        hook.before_test(fake_runner)
        refined = [s.pred_sem_seg.data for s in ddp.test_step(batch)]
        hook.after_test(fake_runner)
    finally:
        torch.distributed.destroy_process_group()
    assert any(not torch.equal(a, b) for a, b in zip(plain, refined))
    assert 'test_step' not in vars(ddp)


class _FixedPredictor(torch.nn.Module):
    """A stand-in model whose test_step returns fixed predictions (copies)."""

    def __init__(self, samples):
        super().__init__()
        self.samples = samples

    def test_step(self, data):
        return [copy.deepcopy(s) for s in self.samples]


def _fake_runner(model, dataset=None):
    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset),
                           evaluator=SimpleNamespace(metrics=[]))
    return SimpleNamespace(model=model, test_loop=loop, val_loop=loop,
                           logger=SimpleNamespace(info=lambda msg: None))


def _instance_sample(img_path, h=64, w=80):
    masks = torch.zeros(3, h, w, dtype=torch.bool)
    for i in range(3):
        masks[i, 8 + 4 * i:40 + 4 * i, 10 + 6 * i:50 + 6 * i] = True
    inst = InstanceData(masks=masks, bboxes=torch.ones(3, 4), labels=torch.zeros(3).long(),
                        scores=torch.tensor([0.9, 0.3, 0.6]))
    return BaseDataElement(pred_instances=inst, metainfo=dict(img_path=img_path))


def test_score_thr_and_max_instances_leave_other_masks_alone(tiny_data, refiner_ckpt):
    sample = _instance_sample(osp.join(tiny_data, 'img', '0.png'))
    model = _FixedPredictor([sample])
    before = sample.pred_instances.masks
    outputs = {}
    for kwargs in (dict(score_thr=0.5), dict(max_instances=1), dict()):
        hook = SegRefinerHook(TINY_CONFIG, refiner_ckpt, mode='instance', **kwargs)
        hook.before_test(_fake_runner(model))
        outputs[str(kwargs)] = model.test_step({})[0].pred_instances.masks
        hook.after_test(_fake_runner(model))
    changed = {k: [not torch.equal(m, b) for m, b in zip(v, before)] for k, v in outputs.items()}
    assert changed["{'score_thr': 0.5}"] == [True, False, True]
    assert changed["{'max_instances': 1}"] == [True, False, False]
    assert changed['{}'] == [True, True, True]


def test_missing_refiner_files_fail_at_hook_build(refiner_ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match='refiner_config not found: .*nope.py'):
        HOOKS.build(
            dict(type='mmseg_refiner.SegRefinerHook', refiner_checkpoint=refiner_ckpt,
                 refiner_config=str(tmp_path / 'nope.py')))
    with pytest.raises(FileNotFoundError, match='refiner_checkpoint not found: .*nope.pth'):
        HOOKS.build(
            dict(type='mmseg_refiner.SegRefinerHook', refiner_config=TINY_CONFIG,
                 refiner_checkpoint=str(tmp_path / 'nope.pth')))
    with pytest.raises(ValueError, match="SegRefinerHook: mode must be one of .* got 'fast'"):
        SegRefinerHook(TINY_CONFIG, refiner_ckpt, mode='fast')
    with pytest.raises(ValueError, match="preset must be one of .*'reference'.* got 'paper'"):
        HOOKS.build(hook_cfg(refiner_ckpt, refine_options=dict(preset='paper')))
    with pytest.raises(ValueError, match=r"unknown refine option\(s\) \['stop'\]; valid: "):
        HOOKS.build(hook_cfg(refiner_ckpt, stop=0.1))


def test_hook_options_from_a_dict_and_keywords(refiner_ckpt):
    options = dict(preset='reference', stop_thr=0.2, steps=2)
    hook = HOOKS.build(
        hook_cfg(refiner_ckpt, refine_options=options, steps=3, stop_criterion='change'))
    assert hook.options.to_dict() == dict(mode='instance', steps=3, seed=0, stop_thr=0.2,
                                          stop_criterion='change', preset='reference')
    plain = SegRefinerHook(TINY_CONFIG, refiner_ckpt)
    assert plain.options.to_dict() == dict(mode='auto', seed=0)  # the rest: the config's
    seeded = SegRefinerHook(TINY_CONFIG, refiner_ckpt, refine_options=dict(seed=4, mode='hr'))
    assert (seeded.options.seed, seeded.options.mode) == (4, 'hr')


def test_hook_options_reach_the_api_and_leave_test_cfg_alone(tiny_data, refiner_ckpt, monkeypatch):
    from mmseg_refiner.engine.hooks import refiner_hook
    seen, real = [], refiner_hook.refine_masks

    def spy(*args, **kwargs):
        seen.append(kwargs['options'])
        return real(*args, **kwargs)

    monkeypatch.setattr(refiner_hook, 'refine_masks', spy)
    sample = _instance_sample(osp.join(tiny_data, 'img', '0.png'))
    model = _FixedPredictor([sample])
    hook = SegRefinerHook(TINY_CONFIG, refiner_ckpt, mode='instance', preset='reference',
                          refine_options=dict(stop_thr=0.3), device='cpu',
                          cfg_options={'model.test_cfg.pad': 2}, area_thr=8)
    hook.before_test(_fake_runner(model))
    model.test_step({})
    hook.after_test(_fake_runner(model))
    assert [(o.preset, o.stop_thr, o.mode) for o in seen] == [('reference', 0.3, 'instance')]
    assert hook.refiner.test_cfg['pad'] == 2 and hook.refiner.test_cfg['area_thr'] == 8
    assert hook.refiner.test_cfg['preset'] == 'default'  # options are not written into it


def test_boxes_without_masks_is_a_clear_error_and_restores(tiny_data, refiner_ckpt):
    sample = BaseDataElement(
        pred_instances=InstanceData(bboxes=torch.ones(1, 4), scores=torch.ones(1),
                                    labels=torch.zeros(1).long()),
        metainfo=dict(img_path=osp.join(tiny_data, 'img', '0.png')))
    model = _FixedPredictor([sample])
    hook = SegRefinerHook(TINY_CONFIG, refiner_ckpt)
    hook.before_test(_fake_runner(model))
    assert 'test_step' in vars(model)
    with pytest.raises(ValueError, match='0.png: pred_instances has no "masks"'):
        model.test_step({})
    assert 'test_step' not in vars(model)  # the dead loop leaves the model clean


def test_no_image_source_is_a_clear_error(refiner_ckpt):
    sample = _instance_sample(img_path=None)
    model = _FixedPredictor([sample])
    hook = SegRefinerHook(TINY_CONFIG, refiner_ckpt)
    hook.before_test(_fake_runner(model))
    with pytest.raises(ValueError, match='cannot get the original image'):
        model.test_step(dict(inputs=[torch.zeros(3, 64, 80)]))


def test_hook_on_cpu_keeps_freed_memory_when_asked(refiner_ckpt, monkeypatch):
    from mmseg_refiner.utils import hardware
    calls = []
    monkeypatch.setattr(hardware, 'keep_freed_memory', lambda environ: calls.append(1) or True)
    model = _FixedPredictor([])
    for asked in ('', '1'):
        monkeypatch.setenv(hardware.KEEP_FREED_MEMORY_ENV, asked)
        SegRefinerHook(TINY_CONFIG, refiner_ckpt, device='cpu').before_test(_fake_runner(model))
        assert calls == ([1] if asked else [])


@pytest.mark.parametrize('kwargs,message', [
    (dict(score_thr='0.5'), "score_thr must be a number in [0, 1], got '0.5'"),
    (dict(score_thr=float('nan')), 'score_thr must be a number in [0, 1], got nan'),
    (dict(max_instances=1.5), 'max_instances must be None or an integer >= 0, got 1.5'),
    (dict(max_instances=-1), 'max_instances must be None or an integer >= 0, got -1'),
    (dict(area_thr='big'), "area_thr must be an integer >= 0 (pixels), got 'big'"),
    (dict(classes='a'), "classes must be a list of class indices or names, got 'a'"),
    (dict(classes=[1.7]), 'classes must be a list'),
    (dict(ignore_index='255'), "ignore_index must be an integer, got '255'"),
    (dict(cfg_options=['model.test_cfg.steps=2']), 'cfg_options must be a dict'),
])
def test_hook_settings_are_checked_when_it_is_built(refiner_ckpt, kwargs, message):
    with pytest.raises(ValueError) as exc:
        SegRefinerHook(TINY_CONFIG, refiner_ckpt, **kwargs)
    assert str(exc.value).startswith('SegRefinerHook: ') and message in str(exc.value)


def test_hook_class_indices_outside_the_dataset_are_refused():
    from mmseg_refiner.engine.hooks.refiner_hook import _class_id
    assert _class_id(1, ['a', 'b']) == 1 and _class_id('b', ['a', 'b']) == 1
    assert _class_id(7, []) == 7  # the dataset names no classes: nothing to check against
    with pytest.raises(ValueError, match=r"class index 5 is not one of the dataset's 2 classes"):
        _class_id(5, ['a', 'b'])
