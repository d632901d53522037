import numpy as np
import pytest
import torch

from mmseg_refiner.apis import init_refiner, refine_label_map, refine_mask, refine_masks
from mmseg_refiner.utils.io import InputError

from conftest import TINY_CONFIG


def test_init_refiner_from_config_has_parts(tiny_refiner):
    assert tiny_refiner.backbone.model_channels == 8
    assert tiny_refiner.sampler.num_timesteps == 6
    assert not tiny_refiner.training


def test_init_refiner_cfg_options():
    with pytest.warns(UserWarning, match='random weights'):
        r = init_refiner(TINY_CONFIG, cfg_options={'test_cfg.steps': 3})
    assert r.test_cfg['steps'] == 3


def test_checkpoint_roundtrip_and_strict_error(tmp_path, tiny_refiner):
    path = str(tmp_path / 'released_style.pth')
    torch.save({'state_dict': {'denoise_model.' + k: v
                               for k, v in tiny_refiner.backbone.state_dict().items()}}, path)
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
    cv2.imwrite(rgba, np.dstack([coarse.astype(np.uint8) * 255] * 3 + [np.full(gt.shape, 255,
                                                                               np.uint8)]))
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
    fp32 = refine_mask(tiny_refiner, img, coarse, seed=0)
    tiny_refiner.test_cfg['autocast'] = 'bf16'
    bf16 = refine_mask(tiny_refiner, img, coarse, seed=0)
    assert (fp32 == bf16).mean() > 0.95
    tiny_refiner.test_cfg['autocast'] = 'int8'
    with pytest.raises(ValueError, match='autocast'):
        refine_mask(tiny_refiner, img, coarse, seed=0)
