import os.path as osp
import warnings

import numpy as np
import pytest
import torch

from mmseg_refiner.apis import (RefineOptions, init_refiner, refine_label_map, refine_mask,
                                refine_masks)
from mmseg_refiner.utils.io import InputError

from conftest import REPO_ROOT, TINY_CONFIG, make_blob_sample

# Masks of the API before RefineOptions (commit 35702ef, exact fp32), recorded with the calls
# of _pinned_cases on the model of _pinned_refiner: the options refactor changed no pixel.
PINNED_MASKS = osp.join(REPO_ROOT, 'tests', 'data', 'pinned_masks.npz')

pytestmark = pytest.mark.usefixtures('one_thread')


def test_init_refiner_from_config_has_parts(tiny_refiner):
    assert tiny_refiner.backbone.model_channels == 8
    assert tiny_refiner.sampler.num_timesteps == 6
    assert not tiny_refiner.training


def test_init_refiner_cfg_options():
    """Keys are paths in the whole config, as mmdet's init_detector takes them."""
    with pytest.warns(UserWarning, match='random weights'):
        r = init_refiner(TINY_CONFIG, cfg_options={'model.test_cfg.steps': 3})
    assert r.test_cfg['steps'] == 3 and r.cfg.model.test_cfg.steps == 3


def test_init_refiner_cfg_options_relative_to_model_are_deprecated():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        r = init_refiner(TINY_CONFIG,
                         cfg_options={'test_cfg.steps': 3, 'model.test_cfg.batch_size': 2})
    assert r.test_cfg['steps'] == 3 and r.test_cfg['batch_size'] == 2
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1 and 'model.test_cfg.steps' in str(deprecations[0].message)
    assert deprecations[0].filename == __file__  # points at the caller


def test_init_refiner_device_auto_and_unknown():
    from mmseg_refiner.utils.hardware import DeviceError
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r = init_refiner(TINY_CONFIG)
        expected = 'cuda' if torch.cuda.is_available() else 'cpu'
        assert next(r.parameters()).device.type == expected
        with pytest.raises(DeviceError, match='available'):
            init_refiner(TINY_CONFIG, device='tpu')


def test_checkpoint_roundtrip_and_strict_error(tmp_path, tiny_refiner):
    path = str(tmp_path / 'released_style.pth')
    torch.save(
        {
            'state_dict':
            {'denoise_model.' + k: v
             for k, v in tiny_refiner.backbone.state_dict().items()}
        }, path)
    r = init_refiner(TINY_CONFIG, path)
    for a, b in zip(r.backbone.parameters(), tiny_refiner.backbone.parameters()):
        assert torch.equal(a, b)
    bad = str(tmp_path / 'bad.pth')
    torch.save({'state_dict': {'foo.bar': torch.zeros(1)}}, bad)
    with pytest.raises(KeyError, match='missing keys.*unexpected keys.*foo.bar'):
        init_refiner(TINY_CONFIG, bad)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        init_refiner(TINY_CONFIG, str(tmp_path / 'nope.pth'))


def test_refine_mask_shapes_modes_and_seed(tiny_refiner, blob_sample):
    img, gt, coarse = blob_sample
    for mode in ('instance', 'global', 'hr', 'auto'):
        out = refine_mask(tiny_refiner, img, coarse, mode=mode, seed=0)
        assert out.shape == gt.shape and out.dtype == bool
    a = refine_mask(tiny_refiner, img, coarse.astype(np.uint8) * 255, seed=1)
    b = refine_mask(tiny_refiner, img, coarse, seed=1)
    assert np.array_equal(a, b)
    mask, conf = refine_mask(tiny_refiner, img, coarse, seed=0, return_confidence=True)
    assert conf.shape == gt.shape and conf.min() >= 0 and conf.max() <= 1


def test_refine_mask_from_files(tmp_path, tiny_refiner, blob_sample):
    import mmcv
    img, gt, coarse = blob_sample
    mmcv.imwrite(img, str(tmp_path / 'a.png'))
    mmcv.imwrite(coarse.astype(np.uint8) * 255, str(tmp_path / 'a_mask.png'))
    out = refine_mask(tiny_refiner, str(tmp_path / 'a.png'), str(tmp_path / 'a_mask.png'), seed=0)
    assert np.array_equal(out, refine_mask(tiny_refiner, img, coarse, seed=0))


def test_empty_and_tiny_masks_come_back_unchanged(tiny_refiner, blob_sample):
    img, _, _ = blob_sample
    empty = np.zeros(img.shape[:2], bool)
    assert not refine_mask(tiny_refiner, img, empty).any()
    dot = empty.copy()
    dot[3:5, 3:5] = True  # below area_thr=16
    assert np.array_equal(refine_mask(tiny_refiner, img, dot), dot)


def test_bad_inputs_are_clear_errors(tmp_path, tiny_refiner, blob_sample):
    img, _, coarse = blob_sample
    with pytest.raises(InputError, match='does not match the image size'):
        refine_mask(tiny_refiner, img, coarse[:-1])
    with pytest.raises(InputError, match='not found.*missing.png'):
        refine_mask(tiny_refiner, str(tmp_path / 'missing.png'), coarse)
    (tmp_path / 'broken.jpg').write_bytes(b'not an image')
    with pytest.raises(InputError, match='broken.jpg'):
        refine_mask(tiny_refiner, str(tmp_path / 'broken.jpg'), coarse)
    with pytest.raises(InputError, match='uint8'):
        refine_mask(tiny_refiner, img.astype(np.float32), coarse)
    with pytest.raises(InputError, match='NaN'):
        refine_mask(tiny_refiner, img, np.full(coarse.shape, np.nan))
    with pytest.raises(ValueError, match='mode must be one of'):
        refine_mask(tiny_refiner, img, coarse, mode='fast')


def test_refine_masks_batch(tiny_refiner, blob_sample):
    img, gt, coarse = blob_sample
    masks = np.stack([coarse, gt, np.zeros_like(gt)])
    out = refine_masks(tiny_refiner, img, masks, seed=0)
    assert out.shape == masks.shape and out.dtype == bool
    assert not out[2].any()
    assert refine_masks(tiny_refiner, img, np.zeros((0, ) + gt.shape, bool)).shape[0] == 0


def test_refine_label_map_keeps_dtype_ignore_and_unlisted(tiny_refiner, blob_sample):
    img, gt, coarse = blob_sample
    labels = np.where(coarse, 3, 1).astype(np.int64)
    labels[:5, :5] = 255
    labels[-6:, -6:] = 7
    out = refine_label_map(tiny_refiner, img, labels, ignore_index=255, seed=0)
    assert out.dtype == labels.dtype and out.shape == labels.shape
    assert (out[:5, :5] == 255).all()
    assert set(np.unique(out)) <= {1, 3, 7, 255}
    only = refine_label_map(tiny_refiner, img, labels, classes=[3], seed=0)
    assert (only[labels == 7] == 7).all() and (only[labels == 255] == 255).all()


def test_full_mask_and_odd_mask_encodings(tiny_refiner, blob_sample):
    img, gt, coarse = blob_sample
    full = np.ones(gt.shape, bool)
    out = refine_mask(tiny_refiner, img, full, seed=0)
    assert out.shape == gt.shape and out.dtype == bool  # defined, no crash
    base = refine_mask(tiny_refiner, img, coarse, seed=0)
    for enc in (coarse.astype(np.uint16) * 65535, coarse.astype(np.uint8) * 7,
                coarse.astype(np.float32), np.where(coarse, 200, 30).astype(np.uint8)):
        assert np.array_equal(refine_mask(tiny_refiner, img, enc, seed=0), base)
    with pytest.raises(InputError, match='negative'):
        refine_mask(tiny_refiner, img, coarse.astype(np.int16) - 1)


def test_mask_and_image_files_in_other_formats(tmp_path, tiny_refiner, blob_sample):
    import cv2
    img, gt, coarse = blob_sample
    base = refine_mask(tiny_refiner, img, coarse, seed=0)
    m16 = str(tmp_path / 'm16.png')
    cv2.imwrite(m16, coarse.astype(np.uint16) * 65535)
    rgba = str(tmp_path / 'rgba.png')
    cv2.imwrite(
        rgba, np.dstack([coarse.astype(np.uint8) * 255] * 3 + [np.full(gt.shape, 255, np.uint8)]))
    for mask_file in (m16, rgba):
        assert np.array_equal(refine_mask(tiny_refiner, img, mask_file, seed=0), base)
    grey = str(tmp_path / 'grey.png')
    cv2.imwrite(grey, img[..., 0])
    img16 = str(tmp_path / 'img16.png')
    cv2.imwrite(img16, img.astype(np.uint16) * 257)
    img_rgba = str(tmp_path / 'img_rgba.png')
    cv2.imwrite(img_rgba, np.dstack([img, np.full(gt.shape, 255, np.uint8)]))
    for image_file in (grey, img16, img_rgba):
        assert refine_mask(tiny_refiner, image_file, coarse, seed=0).shape == gt.shape
    assert np.array_equal(refine_mask(tiny_refiner, img_rgba, coarse, seed=0), base)
    with pytest.raises(InputError, match='uint8'):
        refine_mask(tiny_refiner, img.astype(np.uint16), coarse)


def test_truncated_and_non_checkpoint_files(tmp_path, tiny_refiner):
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': tiny_refiner.state_dict()}, good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(open(good, 'rb').read()[:200])
    text = tmp_path / 'notes.pth'
    text.write_text('hello')
    for bad in (truncated, text):
        with pytest.raises(ValueError, match=bad.name):
            init_refiner(TINY_CONFIG, str(bad))
    shapes = str(tmp_path / 'shapes.pth')
    state = dict(tiny_refiner.state_dict())
    state['backbone.time_embed.weight'] = torch.zeros(3, 3)
    torch.save({'state_dict': state}, shapes)
    with pytest.raises(ValueError, match='shape'):
        init_refiner(TINY_CONFIG, shapes)


def test_bf16_autocast_option_matches_fp32_mostly(tiny_refiner, blob_sample):
    img, gt, coarse = blob_sample
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    before = dict(tiny_refiner.test_cfg)
    fp32 = refine_mask(tiny_refiner, img, coarse, seed=0, autocast='fp32')
    bf16 = refine_mask(tiny_refiner, img, coarse, seed=0, options=dict(autocast='bf16'))
    assert (fp32 == bf16).mean() > 0.95
    with pytest.raises(ValueError, match='autocast must be one of'):
        refine_mask(tiny_refiner, img, coarse, seed=0, autocast='int8')
    assert tiny_refiner.test_cfg == before  # options never change the refiner's test_cfg


def _pinned_refiner():
    """The tiny refiner with every parameter drawn from one seeded numpy generator, by
    parameter name (independent of torch's init order)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        refiner = init_refiner(TINY_CONFIG)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for name, p in sorted(refiner.named_parameters()):
            noise = torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32))
            if p.ndim == 1:
                p.copy_((1.0 if name.endswith('weight') else 0.0) + 0.1 * noise)
            else:
                p.copy_(noise / np.sqrt(p[0].numel()))
    return refiner


def _pinned_cases(refiner, **exact):
    img, gt, coarse = make_blob_sample(seed=0)
    img1, _, coarse1 = make_blob_sample(seed=1)
    out = {
        f'mask_{mode}': refine_mask(refiner, img, coarse, mode=mode, seed=0, **exact)
        for mode in ('instance', 'global', 'hr', 'auto')
    }
    out['mask_instance_noguard'] = refine_mask(refiner, img, coarse, 'instance', seed=0,
                                               guard=False, **exact)
    out['mask_hr_noguard'] = refine_mask(refiner, img, coarse, seed=0,
                                         options=RefineOptions(mode='hr', guard=False, **exact))
    out['mask_instance_stop'] = refine_mask(refiner, img, coarse, mode='instance', seed=0,
                                            options=dict(stop_thr=0.6, guard=False, **exact))
    out['mask_sample1_steps3'] = refine_mask(refiner, img1, coarse1, seed=2, steps=3, **exact)
    out['masks_batch'] = refine_masks(refiner, img, np.stack([coarse, gt,
                                                              np.zeros_like(gt)]), seed=1, **exact)
    labels = np.where(coarse, 3, 1).astype(np.int64)
    labels[:5, :5] = 255
    labels[-12:, -12:] = 7
    out['labels'] = refine_label_map(refiner, img, labels, ignore_index=255, seed=0, **exact)
    out['labels_noguard'] = refine_label_map(refiner, img, labels, seed=0, guard=False, **exact)
    return out


def test_masks_equal_the_ones_pinned_before_refine_options():
    expected = np.load(PINNED_MASKS)
    got = _pinned_cases(_pinned_refiner(), autocast='fp32')
    assert sorted(got) == sorted(expected.files)
    for key in expected.files:
        assert got[key].dtype == expected[key].dtype and got[key].shape == expected[key].shape
        assert np.array_equal(got[key], expected[key]), \
            f'{key}: {(got[key] != expected[key]).sum()} pixels differ'
    _, _, coarse = make_blob_sample(seed=0)
    assert not np.array_equal(got['mask_instance'], coarse)  # the pins do test refinement
    assert not np.array_equal(got['mask_instance'], got['mask_instance_noguard'])


def test_keywords_override_options_and_are_checked(tiny_refiner, blob_sample):
    img, _, coarse = blob_sample
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    opts = RefineOptions(mode='global', seed=3, guard=False)
    a = refine_mask(tiny_refiner, img, coarse, options=opts)
    b = refine_mask(tiny_refiner, img, coarse, 'global', seed=3, guard=False)
    assert np.array_equal(a, b)
    c = refine_mask(tiny_refiner, img, coarse, mode='instance', options=opts)
    assert np.array_equal(c, refine_mask(tiny_refiner, img, coarse, 'instance', seed=3,
                                         guard=False))
    with pytest.raises(TypeError, match=r"unknown refine option\(s\) \['stop'\]"):
        refine_mask(tiny_refiner, img, coarse, stop=0.1)
    with pytest.raises(ValueError, match="preset must be one of .*'reference'"):
        refine_mask(tiny_refiner, img, coarse, preset='paper')
    with pytest.raises(ValueError, match='stop_criterion must be one of'):
        refine_masks(tiny_refiner, img, coarse[None], options=dict(stop_criterion='x'))
    with pytest.raises(ValueError, match='unknown refine option'):
        refine_label_map(tiny_refiner, img, coarse.astype(np.int64), options=dict(foo=1))


def test_label_map_takes_stop_thr_and_preset(tiny_refiner, blob_sample):
    img, _, coarse = blob_sample
    labels = np.where(coarse, 2, 0).astype(np.uint8)
    out = refine_label_map(tiny_refiner, img, labels, seed=0, stop_thr=1.0,
                           stop_criterion='change', preset='reference')
    assert out.dtype == labels.dtype and set(np.unique(out)) <= {0, 2}


def test_numpy_option_values_and_model_checks(tiny_refiner, blob_sample):
    from mmseg_refiner.apis import RefineOptions, check_options
    img, _, coarse = blob_sample
    opts = RefineOptions(steps=np.int64(2), seed=np.uint8(3), stop_thr=np.float32(0.25))
    assert type(opts.steps) is int and type(opts.seed) is int and type(opts.stop_thr) is float
    assert RefineOptions(steps=np.array([3, 1])).steps == [3, 1]
    assert np.array_equal(refine_mask(tiny_refiner, img, coarse, steps=np.int64(2), seed=0),
                          refine_mask(tiny_refiner, img, coarse, steps=2, seed=0))
    assert check_options(tiny_refiner, steps=2)['steps'] == 2
    with pytest.raises(ValueError, match=r'steps must be in \[1, 6\], got 7'):
        check_options(tiny_refiner, steps=7)
    with pytest.raises(ValueError, match='crop_size must be a multiple of 2 for this model'):
        refine_mask(tiny_refiner, img, coarse, crop_size=33)


def test_exif_turned_image_and_a_mask_of_the_stored_pixels(tmp_path, tiny_refiner):
    from PIL import Image

    from mmseg_refiner.apis import read_pair
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 80x60, shown turned: 60x80
    Image.new('RGB', (80, 60), (90, 120, 150)).save(str(tmp_path / 'p.jpg'), exif=exif)
    stored = np.zeros((60, 80), bool)
    stored[10:30, 20:50] = True
    with pytest.raises(
            InputError, match=r"fits image file .*p.jpg as stored, but its EXIF "
            r"orientation tag \(6\) turns it to 60x80"):
        refine_mask(tiny_refiner, str(tmp_path / 'p.jpg'), stored)
    image, mask = read_pair(str(tmp_path / 'p.jpg'), stored.T.copy())
    assert image.shape == (80, 60, 3) and mask.shape == (80, 60)


def test_refine_label_map_argument_types_and_a_lone_class(tiny_refiner, blob_sample):
    img, _, coarse = blob_sample
    labels = np.where(coarse, 3, 1).astype(np.int64)
    for kwargs, message in ((dict(ignore_index='255'), "ignore_index must be an integer label, "
                             "got '255'"), (dict(ignore_index=[0, 255]), 'ignore_index must be'),
                            (dict(classes=1), 'classes must be a list of integer labels, got 1'),
                            (dict(classes='1'), 'classes must be a list'),
                            (dict(classes=[1.7]), 'classes must be a list'),
                            (dict(classes=[True]), 'classes must be a list')):
        with pytest.raises(InputError, match=message):
            refine_label_map(tiny_refiner, img, labels, seed=0, **kwargs)
    with pytest.warns(UserWarning, match='one class refined alone cannot change the map'):
        out = refine_label_map(tiny_refiner, img, labels, classes=[3], seed=0)
    assert np.array_equal(out, labels)
    assert refine_label_map(tiny_refiner, img, labels, classes=np.array([1, 3]),
                            seed=0).shape == labels.shape


def test_refine_masks_takes_a_list_of_masks(tiny_refiner, blob_sample):
    from mmseg_refiner.apis import refine_masks
    img, _, coarse = blob_sample
    as_list = refine_masks(tiny_refiner, img, [coarse, ~coarse], seed=0)
    assert np.array_equal(as_list,
                          refine_masks(tiny_refiner, img, np.stack([coarse, ~coarse]), seed=0))
    assert refine_masks(tiny_refiner, img, [], seed=0).shape == (0, ) + coarse.shape
    with pytest.raises(InputError, match='masks of one image must share one size'):
        refine_masks(tiny_refiner, img, [coarse, coarse[:-1]])
