"""Generated training data: copy-paste composites, procedural images, the decoded-image cache."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from mmseg_refiner.datasets.cache import DecodedCache, read_image, read_mask, scaled_size
from mmseg_refiner.datasets.copy_paste import estimate_blur_sigma, paste_object
from mmseg_refiner.datasets.procedural import (SHAPES, TEXTURES, random_shape_mask, random_texture,
                                               render_procedural)
from mmseg_refiner.registry import DATASETS

CROP = 32


@pytest.fixture(autouse=True)
def refiner_scope():
    with DefaultScope.overwrite_default_scope('mmseg_refiner'):
        yield


def _write_folder(root, n=3, size=(48, 64)):
    """``images/<i>.png`` (a coloured ellipse on stripes) and ``masks/<i>.png``."""
    os.makedirs(osp.join(root, 'images'))
    os.makedirs(osp.join(root, 'masks'))
    h, w = size
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, ::4] = 120
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (w // 2, h // 2), (12 + 2 * i, 9), 10.0 * i, 0, 360, 255, -1)
        img[mask > 0] = (30, 60 * i, 220)
        cv2.imwrite(osp.join(root, 'images', f'{i}.png'), img)
        cv2.imwrite(osp.join(root, 'masks', f'{i}.png'), mask)
    return root


def _pipeline():
    return [
        dict(type='CropAroundObject', size=CROP, max_context=4, seed=0),
        dict(type='GenerateCoarseMask', iou_range=(0.5, 0.9), seed=0),
        dict(type='PackRefinerInputs'),
    ]


def _step(sigma, size=96):
    """A vertical step edge (40 -> 200) blurred with ``sigma`` (0: sharp)."""
    img = np.full((size, size), 40, np.float32)
    img[:, size // 2:] = 200
    if sigma:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.round(img).astype(np.uint8)


def test_estimate_blur_sigma_tracks_the_true_blur():
    estimates = [estimate_blur_sigma(_step(s)) for s in (0, 1.0, 2.0, 3.0)]
    assert estimates == sorted(estimates), estimates
    assert estimates[0] < 0.9
    for true, est in zip((2.0, 3.0), estimates[2:]):
        assert abs(est - true) < 0.5, (true, est)
    assert estimate_blur_sigma(np.full((32, 32, 3), 7, np.uint8)) == 0.0  # no edges


def test_paste_object_places_scaled_object_and_matches_blur():
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(np.tile(_step(0, 120)[..., None], (1, 1, 3)), (0, 0), 2.5)
    fg_img = np.full((60, 80, 3), 90, np.uint8)
    fg_mask = np.zeros((60, 80), np.uint8)
    fg_mask[10:50, 20:60] = 1
    fg_img[fg_mask > 0] = (0, 255, 0)
    img, gt = paste_object(bg, fg_img, fg_mask, rng, scale_range=(0.3, 0.6))
    assert img.shape == bg.shape and img.dtype == np.uint8 and gt.shape == bg.shape[:2]
    ys, xs = np.nonzero(gt)
    side = max(np.ptp(ys), np.ptp(xs)) + 1
    assert 0.3 * 120 - 2 <= side <= 0.6 * 120 + 2
    inside = img[gt > 0]
    assert (inside[:, 1] > inside[:, 0]).mean() > 0.9  # the green object is where gt is
    # the pasted edge is about as blurry as the background (sigma 2.5), not sharp
    edge = img[ys.min() - 6:ys.max() + 7, xs.min() - 6:xs.max() + 7]
    assert estimate_blur_sigma(edge) > 1.5
    again = paste_object(bg, fg_img, fg_mask, np.random.default_rng(0), scale_range=(0.3, 0.6))
    assert np.array_equal(again[0], img) and np.array_equal(again[1], gt)


@pytest.mark.parametrize('kind', TEXTURES)
def test_random_texture_kinds(kind):
    tex = random_texture(np.random.default_rng(0), 20, 30, kinds=(kind, ))
    assert tex.shape == (20, 30, 3) and tex.dtype == np.float32
    assert tex.min() >= 0 and tex.max() <= 255


@pytest.mark.parametrize('shape', SHAPES)
def test_random_shape_mask_is_a_coverage_map(shape):
    cover = random_shape_mask(np.random.default_rng(1), 40, 50, shapes=(shape, ), hole_prob=0,
                              whisker_prob=0)
    assert cover.shape == (40, 50) and 0 <= cover.min() and cover.max() <= 1
    assert (cover >= 0.5).any()


def test_render_procedural_is_exact_and_seeded():
    img, mask = render_procedural(np.random.default_rng(3), size_range=(40, 60), soft_prob=0)
    assert img.dtype == np.uint8 and img.shape[:2] == mask.shape and mask.any()
    assert set(np.unique(mask)) <= {0, 1}
    img2, mask2 = render_procedural(np.random.default_rng(3), size_range=(40, 60), soft_prob=0)
    assert np.array_equal(img, img2) and np.array_equal(mask, mask2)
    flat = np.zeros((8, 8, 3), np.float32)
    img, mask = render_procedural(np.random.default_rng(4), size_range=(40, 40), fg=flat + 250,
                                  bg=flat, soft_prob=0, camera_blur_prob=0)
    # hard edges: every pixel well inside or outside the shape has its fill's colour
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
    outer = cv2.dilate(mask, np.ones((3, 3), np.uint8)) == 0
    assert (img[inner] == 250).all() and (img[outer] == 0).all()


def test_decoded_cache_budget_and_scaling(tmp_path):
    cache = DecodedCache(max_bytes=250)
    for i in range(3):
        cache.put(i, np.zeros(100, np.uint8))
    assert cache.get(0) is None and cache.get(2) is not None and cache.nbytes == 200
    assert scaled_size((100, 50), 40) == (40, 20) and scaled_size((10, 5), 40) == (10, 5)
    root = _write_folder(str(tmp_path / 'd'))
    path = osp.join(root, 'images', '0.png')
    img = read_image(path, max_side=32, cache_bytes=1 << 20)
    assert img.shape == (24, 32, 3) and not img.flags.writeable
    assert read_image(path, max_side=32, cache_bytes=1 << 20) is img  # from the cache
    mask = read_mask(osp.join(root, 'masks', '0.png'), max_side=32)
    assert mask.shape == (24, 32) and set(np.unique(mask)) == {0, 1}


def _check(item):
    inputs, sample = item['inputs'], item['data_samples']
    assert inputs.shape == (3, CROP, CROP) and inputs.dtype == torch.uint8
    assert sample.gt_mask.data.shape == sample.coarse_mask.data.shape == (1, CROP, CROP)
    assert sample.gt_mask.data.any()


@pytest.mark.parametrize('kind', ['CopyPasteDataset', 'ProceduralDataset'])
def test_generated_datasets_build_seeded_samples(tmp_path, kind):
    root = _write_folder(str(tmp_path / 'src'))
    cfg = dict(type=kind, length=4, sources=[dict(data_root=root)], seed=0, cache_mb=4,
               pipeline=_pipeline())
    if kind == 'ProceduralDataset':
        cfg.update(photo_prob=0.5, render_cfg=dict(size_range=(40, 60)))
    dataset = DATASETS.build(cfg)
    assert len(dataset) == 4
    first = [dataset[i] for i in range(4)]
    for item in first:
        _check(item)
    meta = first[0]['data_samples'].metainfo
    assert meta['sample_idx'] == 0
    # a second visit draws anew; a fresh dataset with the same seed replays the first
    assert not torch.equal(dataset[0]['inputs'], first[0]['inputs'])
    replay = DATASETS.build(cfg)
    assert torch.equal(replay[0]['inputs'], first[0]['inputs'])
    fixed = DATASETS.build(dict(cfg, fixed_per_sample=True, pipeline=[]))
    assert np.array_equal(fixed[1]['img'], fixed[1]['img'])
    assert fixed[1]['sample_key'] == f'{kind}/1'


def test_generated_dataset_errors(tmp_path):
    root = _write_folder(str(tmp_path / 'one'), n=1)
    with pytest.raises(ValueError, match='at least 2 source samples'):
        DATASETS.build(dict(type='CopyPasteDataset', length=2, sources=[dict(data_root=root)]))
    with pytest.raises(ValueError, match='length'):
        DATASETS.build(dict(type='ProceduralDataset', length=0))
    with pytest.raises(ValueError, match='scale_range'):
        DATASETS.build(
            dict(type='CopyPasteDataset', length=2, sources=[dict(data_root=root)],
                 scale_range=(0.5, 2.0)))
