"""Transforms: coarse-mask synthesis (IoU range, seeds), crop, flip, loading and packing."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from mmseg_refiner.datasets.coarse_synthesis import (DEGRADATIONS, degrade_holes_islands,
                                                     degrade_polygon, mask_iou, modify_boundary,
                                                     synthesize_coarse)
from mmseg_refiner.datasets.transforms import (CropAroundObject, GenerateCoarseMask,
                                               LoadImageAndMask, LoadMaskFromFile,
                                               PackRefinerInputs, RefinerRandomFlip)
from mmseg_refiner.registry import TRANSFORMS
from mmseg_refiner.utils.io import InputError


def _blob(h=64, w=64, seed=0):
    """A (h, w) uint8 0/1 mask: an ellipse plus a random rectangle, a crude 'object'."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 4, h // 3), float(rng.uniform(0, 180)), 0, 360, 1,
                -1)
    x, y = int(rng.integers(4, w // 2)), int(rng.integers(4, h // 2))
    mask[y:y + h // 4, x:x + w // 5] = 1
    return mask


def _results(h=64, w=64, seed=0):
    rng = np.random.default_rng(seed)
    gt = _blob(h, w, seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return dict(img=img, gt_mask=gt, img_path=f'img{seed}.jpg', img_shape=(h, w), ori_shape=(h, w))


@pytest.mark.parametrize('mode', DEGRADATIONS)
def test_synthesize_hits_range_every_mode(mode):
    for seed in range(3):
        gt = _blob(seed=seed)
        coarse, iou, used = synthesize_coarse(gt, np.random.default_rng(seed), iou_target=0.85,
                                              iou_min=0.65, mode=mode)
        assert coarse.shape == gt.shape and coarse.dtype == np.uint8
        assert set(np.unique(coarse)) <= {0, 1}
        assert 0.65 <= iou < 0.85, (mode, seed, iou)
        assert iou == pytest.approx(mask_iou(coarse, gt))
        assert used in DEGRADATIONS


def test_synthesize_rejects_unknown_mode_and_handles_empty():
    with pytest.raises(ValueError, match='unknown coarse-mask mode'):
        synthesize_coarse(_blob(), np.random.default_rng(0), 0.8, mode='nope')
    empty = np.zeros((16, 16), np.uint8)
    coarse, iou, used = synthesize_coarse(empty, np.random.default_rng(0), 0.8)
    assert not coarse.any() and iou == 1.0 and used == 'empty'


def test_modify_boundary_changes_mask_and_fills_holes():
    gt = _blob()
    gt[30:34, 30:34] = 0  # a hole: the reference redraws contours filled
    out = modify_boundary(gt, np.random.default_rng(0))
    assert out.shape == gt.shape and 0.5 < mask_iou(out, gt) < 1.0
    assert out[31, 31] == 1


def test_polygon_keeps_holes_and_holes_islands_changes_topology():
    gt = np.zeros((64, 64), np.uint8)
    gt[8:56, 8:56] = 1
    gt[24:40, 24:40] = 0
    poly = degrade_polygon(gt, np.random.default_rng(0), eps_range=(0.01, 0.01))
    assert poly[32, 32] == 0 and poly[12, 12] == 1
    out = degrade_holes_islands(gt, np.random.default_rng(1), count_range=(4, 4))
    assert not np.array_equal(out, gt)


def test_generate_coarse_mask_range_and_seed_reproducible():
    t = GenerateCoarseMask(iou_range=(0.6, 0.9), seed=3, fixed_per_sample=True)
    ious = []
    for seed in range(6):
        out = t(_results(seed=seed))
        assert 0.6 <= out['coarse_iou'] < 0.9
        assert out['coarse_iou'] == pytest.approx(mask_iou(out['coarse_mask'], out['gt_mask']))
        ious.append(out['coarse_iou'])
        again = GenerateCoarseMask(iou_range=(0.6, 0.9), seed=3, fixed_per_sample=True)
        np.testing.assert_array_equal(
            again(_results(seed=seed))['coarse_mask'], out['coarse_mask'])
    assert len(set(np.round(ious, 6))) > 1  # targets are drawn per sample


def test_generate_coarse_mask_varies_per_visit_and_by_seed():
    t = GenerateCoarseMask(seed=0)
    first, second = t(_results())['coarse_mask'], t(_results())['coarse_mask']
    assert not np.array_equal(first, second)  # a new draw each epoch
    replay = GenerateCoarseMask(seed=0)
    np.testing.assert_array_equal(replay(_results())['coarse_mask'], first)
    other = GenerateCoarseMask(seed=1)(_results())['coarse_mask']
    assert not np.array_equal(other, first)


def test_generate_coarse_mask_args_and_keep_existing():
    with pytest.raises(ValueError, match='iou_range'):
        GenerateCoarseMask(iou_range=(0.9, 0.6))
    with pytest.raises(ValueError, match='unknown mode'):
        GenerateCoarseMask(mode_probs=dict(jpeg=1.0))
    with pytest.raises(ValueError, match='non-negative'):
        GenerateCoarseMask(mode_probs=dict(lowres=0.0))
    res = _results()
    res['coarse_mask'] = np.zeros_like(res['gt_mask'])
    out = GenerateCoarseMask(seed=0)(res)
    assert not out['coarse_mask'].any() and out['coarse_mode'] == 'offline'
    assert out['coarse_iou'] == 0.0
    only = GenerateCoarseMask(mode_probs=dict(lowres=1.0), seed=0)(_results())
    assert only['coarse_mode'] in ('lowres', 'reference')


def test_generate_coarse_mask_from_registry_with_degenerate_range():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg_refiner'):
        t = TRANSFORMS.build(dict(type='GenerateCoarseMask', iou_range=(0.8, 0.8), seed=0))
    assert t(_results())['coarse_iou'] < 0.8


def test_crop_around_object_box_context_and_alignment():
    res = _results(h=80, w=100)
    res['gt_mask'][:] = 0
    res['gt_mask'][20:40, 30:70] = 1
    res['img'][20:40, 30:70] = 255
    out = CropAroundObject(size=(32, 48), max_context=0)(res)  # (h, w)
    assert out['crop_box'] == (30, 20, 70, 40)
    assert out['img'].shape == (32, 48, 3) and out['gt_mask'].shape == (32, 48)
    assert out['img_shape'] == (32, 48) and out['gt_mask'].all()
    assert (out['img'] == 255).all()

    gt = np.zeros((80, 100), np.uint8)
    gt[20:40, 30:70] = 1
    out = CropAroundObject(size=32, max_context=10,
                           random=False)(dict(_results(h=80, w=100), gt_mask=gt.copy()))
    assert out['crop_box'] == (20, 10, 80, 50)
    crop = CropAroundObject(size=32, max_context=10, seed=0)
    boxes = {crop(dict(_results(h=80, w=100), gt_mask=gt.copy()))['crop_box'] for _ in range(8)}
    assert len(boxes) > 1  # random context
    for x0, y0, x1, y1 in boxes:
        assert 20 <= x0 <= 30 and 10 <= y0 <= 20 and 70 <= x1 <= 80 and 40 <= y1 <= 50


def test_crop_context_ratio_clipped_and_empty_mask():
    res = _results(h=40, w=40)
    res['gt_mask'][:] = 0
    res['gt_mask'][0:20, 0:20] = 1
    out = CropAroundObject(size=16, context_ratio=0.5, random=False)(res)
    assert out['crop_box'] == (0, 0, 30, 30)
    res = _results(h=40, w=30)
    res['gt_mask'][:] = 0
    out = CropAroundObject(size=16)(res)
    assert out['crop_box'] == (0, 0, 30, 40) and not out['gt_mask'].any()
    with pytest.raises(ValueError, match='size'):
        CropAroundObject(size=(0, 4))


def test_random_flip_keeps_image_and_masks_aligned():
    res = _results()
    res['coarse_mask'] = res['gt_mask'].copy()
    res['img'][..., 0] = res['gt_mask'] * 200
    out = RefinerRandomFlip(prob=1.0, seed=0)(res)
    assert out['flip'] and out['flip_direction'] == 'horizontal'
    np.testing.assert_array_equal(out['img'][..., 0], out['gt_mask'] * 200)
    np.testing.assert_array_equal(out['gt_mask'], _blob()[:, ::-1])
    np.testing.assert_array_equal(out['coarse_mask'], out['gt_mask'])
    assert not RefinerRandomFlip(prob=0.0)(_results())['flip']
    with pytest.raises(ValueError, match='direction'):
        RefinerRandomFlip(direction='diagonal')


def test_pack_refiner_inputs_contract():
    res = GenerateCoarseMask(seed=0)(_results(h=32, w=40))
    res['sample_id'] = 'x'
    packed = PackRefinerInputs()(res)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 32, 40)
    assert torch.equal(inputs.permute(1, 2, 0), torch.from_numpy(res['img']))
    for key in ('gt_mask', 'coarse_mask'):
        data = getattr(sample, key).data
        assert data.shape == (1, 32, 40) and data.dtype == torch.uint8
        assert set(data.unique().tolist()) <= {0, 1}
    assert sample.sample_id == 'x' and sample.img_path == 'img0.jpg'
    res.pop('coarse_mask')
    with pytest.raises(KeyError, match='GenerateCoarseMask'):
        PackRefinerInputs()(res)
    res['coarse_mask'] = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match='coarse_mask has shape'):
        PackRefinerInputs()(res)


def _write_pair(tmp_path, img_hw=(24, 32), mask_hw=(24, 32)):
    img = np.full(img_hw + (3, ), 100, np.uint8)
    mask = np.zeros(mask_hw, np.uint8)
    mask[4:12, 4:20] = 255
    cv2.imwrite(str(tmp_path / 'a.png'), img)
    cv2.imwrite(str(tmp_path / 'a_mask.png'), mask)
    return str(tmp_path / 'a.png'), str(tmp_path / 'a_mask.png')


def test_load_image_and_mask_and_size_mismatch(tmp_path):
    img_path, mask_path = _write_pair(tmp_path)
    out = LoadImageAndMask()(dict(img_path=img_path, mask_path=mask_path))
    assert out['img'].shape == (24, 32, 3) and out['gt_mask'].dtype == np.uint8
    assert out['gt_mask'].sum() == 8 * 16 and out['ori_shape'] == (24, 32)
    out = LoadMaskFromFile(key='coarse_mask', path_key='mask_path')(dict(out))
    np.testing.assert_array_equal(out['coarse_mask'], out['gt_mask'])

    img_path, mask_path = _write_pair(tmp_path, mask_hw=(24, 30))
    with pytest.raises(InputError, match=r'size mismatch.*a_mask\.png.*a\.png'):
        LoadImageAndMask()(dict(img_path=img_path, mask_path=mask_path))
    with pytest.raises(InputError, match='not found'):
        LoadImageAndMask()(dict(img_path=osp.join(tmp_path, 'nope.jpg'), mask_path=mask_path))


def test_load_coco_annotation_and_offline_coarse(tmp_path):
    img_path, mask_path = _write_pair(tmp_path)
    poly = [[4.0, 4.0, 20.0, 4.0, 20.0, 12.0, 4.0, 12.0]]
    out = LoadImageAndMask()(dict(img_path=img_path, mask_ann=poly, height=24, width=32))
    assert out['gt_mask'][5:11, 5:19].all() and not out['gt_mask'][15:].any()
    with pytest.raises(InputError, match='size mismatch'):
        LoadImageAndMask()(dict(img_path=img_path, mask_ann=poly, height=20, width=32))

    info = dict(img_path=img_path, mask_path=mask_path, coarse_path=mask_path,
                expanded_path=mask_path)
    modes = {
        LoadImageAndMask(seed=0)(dict(info, sample_id=str(i)))['coarse_mode']
        for i in range(16)
    }
    assert modes == {'offline', 'expanded'}
    out = LoadImageAndMask(expand_prob=0.0)(dict(info))
    assert out['coarse_mode'] == 'offline' and out['coarse_mask'].sum() == 8 * 16


def test_crop_hr_sample_object_and_patch():
    from mmseg_refiner.datasets.transforms import CropHRSample
    gt = np.zeros((300, 400), np.uint8)
    gt[100:200, 150:260] = 1
    crop = CropHRSample(size=32, patch_size=64, seed=0)
    for _ in range(5):
        out = crop(
            dict(img=np.zeros((300, 400, 3), np.uint8), gt_mask=gt.copy(), crop_mode='object',
                 img_path='x'))
        x0, y0, x1, y1 = out['crop_box']
        assert x0 <= 150 and y0 <= 100 and x1 >= 260 and y1 >= 200
        assert out['gt_mask'].shape == (32, 32)
        out = crop(
            dict(img=np.zeros((300, 400, 3), np.uint8), gt_mask=gt.copy(), crop_mode='patch',
                 img_path='x'))
        x0, y0, x1, y1 = out['crop_box']
        assert (x1 - x0, y1 - y0) == (64, 64)
        patch = gt[y0:y1, x0:x1]
        assert patch.any() and not patch.all()
    small = crop(
        dict(img=np.zeros((40, 50, 3), np.uint8), gt_mask=gt[80:120, 130:180].copy(),
             crop_mode='patch'))
    x0, y0, x1, y1 = small['crop_box']
    assert (x1 - x0, y1 - y0) == (20, 20)  # half the shorter side when the image is small
    with pytest.raises(ValueError, match='crop_mode'):
        crop(
            dict(img=np.zeros((8, 8, 3), np.uint8), gt_mask=np.zeros((8, 8), np.uint8),
                 crop_mode='tile'))


def test_generate_coarse_mask_expanded_variant():
    gt = np.zeros((64, 64), np.uint8)
    gt[8:56, 8:56] = 1
    gt[20:44, 20:44] = 0  # a ring: the expanded source fills it
    out = GenerateCoarseMask(iou_range=(0.8, 0.95), expand_prob=1.0,
                             seed=0)(dict(gt_mask=gt, img_path='ring'))
    assert out['coarse_mode'] == 'expanded'
    assert out['coarse_mask'][28:36, 28:36].mean() > 0.5
    assert out['coarse_iou'] == pytest.approx(mask_iou(out['coarse_mask'], gt))


def test_random_error_window_is_centred_on_errors_and_aligned():
    from mmseg_refiner.datasets.transforms import RandomErrorWindow
    results = _results(64, 64)
    gt = results['gt_mask'].astype(np.uint8)
    coarse = gt.copy()
    coarse[40:44, 50:54] = 1 - coarse[40:44, 50:54]  # the only error
    results['coarse_mask'] = coarse
    img_before = results['img'].copy()
    out = RandomErrorWindow(size=16, error_prob=1.0, seed=0)(dict(results))
    assert out['img'].shape == (16, 16, 3) and out['gt_mask'].shape == (16, 16)
    assert (out['gt_mask'] != out['coarse_mask']).any()  # the error is inside the window
    # aligned: the window's image pixels are a crop of the original at the same offset
    ys, xs = np.nonzero((gt != coarse))
    found = [(y0, x0) for y0 in range(49) for x0 in range(49)
             if np.array_equal(img_before[y0:y0 + 16, x0:x0 + 16], out['img'])]
    assert found and all(np.array_equal(gt[y:y + 16, x:x + 16], out['gt_mask']) for y, x in found)
    again = RandomErrorWindow(size=16, error_prob=1.0, seed=0)(dict(results))
    assert np.array_equal(again['img'], out['img'])
    small = RandomErrorWindow(size=128)(dict(results))
    assert small['img'].shape == (64, 64, 3)  # smaller inputs pass through


def test_generate_coarse_mask_clean_samples_are_the_degradation_alone():
    from mmseg_refiner.datasets.coarse_synthesis import degrade
    t = GenerateCoarseMask(iou_range=(0.6, 0.7), clean_prob=1.0, clean_modes=dict(lowres=1),
                           clean_mode_kwargs=dict(lowres=dict(factor_range=(2, 2))), seed=0,
                           fixed_per_sample=True)
    out = t(_results(seed=1))
    assert out['coarse_mode'] == 'lowres-clean'
    # no perturbation rounds: far above the IoU range, and exactly the x2 degradation
    assert out['coarse_iou'] > 0.9
    np.testing.assert_array_equal(
        out['coarse_mask'],
        degrade(out['gt_mask'], np.random.default_rng(0), 'lowres', dict(factor_range=(2, 2))))
    mixed = GenerateCoarseMask(iou_range=(0.6, 0.7), clean_prob=0.5, seed=0)
    modes = {mixed(_results(seed=s))['coarse_mode'].endswith('-clean') for s in range(12)}
    assert modes == {True, False}
    with pytest.raises(ValueError, match='clean_prob'):
        GenerateCoarseMask(clean_prob=1.5)
    with pytest.raises(ValueError, match='reference'):
        GenerateCoarseMask(clean_modes=dict(reference=1))


def test_degrade_hull_fills_a_wedge_and_keeps_the_object():
    from mmseg_refiner.datasets.coarse_synthesis import degrade_hull
    gt = np.zeros((64, 64), np.uint8)
    gt[8:56, 8:56] = 1
    gt[8:40, 28:36] = 0  # a wedge of background cut into the object from the top
    for seed in range(4):
        out = degrade_hull(gt, np.random.default_rng(seed), keep_prob=1.0)
        assert (out >= gt).all()  # only adds
        assert out[8:40, 28:36].mean() > 0.5  # the wedge is (mostly) filled
        assert not out[:4].any() and not out[60:].any()  # no growth outside the outline
    hull = degrade_hull(gt, np.random.default_rng(0), hull_prob=1.0)
    assert hull[8:56, 8:56].all()


def test_degrade_morph_and_jitter_are_mild_and_seeded():
    from mmseg_refiner.datasets.coarse_synthesis import degrade_jitter, degrade_morph
    gt = _blob(seed=2)
    grown = degrade_morph(gt, np.random.default_rng(0), radius_range=(2, 2))
    assert (grown >= gt).all() or (grown <= gt).all()
    assert 0.6 < mask_iou(grown, gt) < 1.0
    wobbly = degrade_jitter(gt, np.random.default_rng(0), amp_range=(1.5, 1.5))
    assert 0.8 < mask_iou(wobbly, gt) < 1.0
    np.testing.assert_array_equal(
        wobbly, degrade_jitter(gt, np.random.default_rng(0), amp_range=(1.5, 1.5)))


def test_load_image_and_mask_max_side_and_cache(tmp_path):
    img_path, mask_path = _write_pair(tmp_path, img_hw=(24, 32), mask_hw=(24, 32))
    t = LoadImageAndMask(max_side=16, cache_mb=1)
    out = t(dict(img_path=img_path, mask_path=mask_path))
    assert out['img'].shape == (12, 16, 3) and out['gt_mask'].shape == (12, 16)
    assert out['img_shape'] == (12, 16)
    again = t(dict(img_path=img_path, mask_path=mask_path))
    assert again['img'] is out['img']  # decoded once per process
    with pytest.raises(ValueError, match='max_side'):
        LoadImageAndMask(max_side=0)


def test_run_salt_changes_training_draws_only():
    from mmseg_refiner.datasets.transforms.rng import SampleRNG, set_run_salt
    from mmseg_refiner.utils.rng import keyed_generator
    key = dict(sample_key='s/0')

    def draws(fixed):
        return SampleRNG(seed=3, fixed_per_sample=fixed)(key, 'T').random(3)

    # the one recipe: seed, transform, key, visit, worker, rank
    np.testing.assert_array_equal(draws(False), keyed_generator(3, 'T', 's/0', 0, 0, 0).random(3))
    base_train, base_val = draws(False), draws(True)
    try:
        set_run_salt(7)
        assert not np.array_equal(draws(False), base_train)
        np.testing.assert_array_equal(draws(True), base_val)
    finally:
        set_run_salt(0)
    np.testing.assert_array_equal(draws(False), base_train)
    with pytest.raises(ValueError, match='salt'):
        set_run_salt(-1)
