"""utils/io.py: atomic writes without mmcv's deprecation warning, one image-extension list."""
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest

from mmseg_refiner.utils.io import (IMAGE_EXTS, InputError, check_output_file, exif_orientation,
                                    imread_checked, imwrite_atomic, maskread_checked,
                                    maskwrite_atomic)


def test_atomic_writes_warn_nothing(tmp_path):
    mask = np.zeros((6, 8), bool)
    mask[2:4, 3:6] = True
    path = str(tmp_path / 'sub' / 'm.png')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # mmcv's `auto_mkdir` deprecation would raise here
        maskwrite_atomic(mask, path)
        imwrite_atomic(np.zeros((6, 8, 3), np.uint8), str(tmp_path / 'sub' / 'i.jpg'))
    assert np.array_equal(maskread_checked(path), mask)
    assert sorted(p.name for p in (tmp_path / 'sub').iterdir()) == ['i.jpg', 'm.png']


def test_image_exts_are_lower_case_with_dots():
    assert '.png' in IMAGE_EXTS and '.jpg' in IMAGE_EXTS
    assert all(e.startswith('.') and e == e.lower() for e in IMAGE_EXTS)
    assert len(set(IMAGE_EXTS)) == len(IMAGE_EXTS)
    assert osp.splitext('a.JPEG')[1].lower() in IMAGE_EXTS


@pytest.mark.parametrize(
    'values,expected',
    [
        ((0, 1, 2), (False, True, True)),  # instance ids: label map, > 0
        ((0, 15, 255), (False, True, True)),  # VOC class + void
        ((30, 200), (False, True)),  # two values, no zero: above the midpoint
        ((0, 7), (False, True)),  # binary 0/k
    ])
def test_mask_rule_for_label_maps_and_binary_masks(values, expected):
    arr = np.array([values * 4], np.uint8)
    assert maskread_checked(arr).tolist() == [list(expected) * 4]


def test_soft_masks_are_cut_at_half_range_or_refused():
    ramp = np.arange(256, dtype=np.uint8)[None].repeat(2, 0)  # 256 values: a soft mask
    assert np.array_equal(maskread_checked(ramp), ramp > 127)
    assert np.array_equal(maskread_checked(ramp.astype(np.float32) / 255), ramp > 127)
    with pytest.raises(
            InputError, match=r'neither binary nor a 0-255 soft mask: 101 values '
            r'from 0 to 100, none above the midpoint 127'):
        maskread_checked(np.arange(101, dtype=np.uint8)[None])
    with pytest.raises(InputError, match='none above the midpoint 32767'):
        maskread_checked((np.arange(300, dtype=np.uint16) * 3)[None])


def test_mask_files_cut_outs_palettes_and_empty_files(tmp_path):
    from PIL import Image
    mask = np.zeros((6, 8), np.uint8)
    mask[2:5, 3:7] = 255
    cutout = np.dstack([np.full(mask.shape, 255, np.uint8)] * 3 + [mask])  # white, alpha = mask
    cv2.imwrite(str(tmp_path / 'cutout.png'), cutout)
    opaque = np.dstack([mask] * 3 + [np.full(mask.shape, 255, np.uint8)])
    cv2.imwrite(str(tmp_path / 'opaque.png'), opaque)
    pal = Image.fromarray((mask > 0).astype(np.uint8), mode='P')
    pal.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)  # index 0 (background) is white
    pal.save(str(tmp_path / 'palette.png'))
    for name in ('cutout.png', 'opaque.png', 'palette.png'):
        assert np.array_equal(maskread_checked(str(tmp_path / name)), mask > 0), name
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(InputError, match=r'mask file .*empty.png is empty \(0 bytes\)'):
        maskread_checked(str(tmp_path / 'empty.png'))
    with pytest.raises(InputError, match=r'image file .*empty.png is empty \(0 bytes\)'):
        imread_checked(str(tmp_path / 'empty.png'))


def test_check_output_file(tmp_path):
    assert check_output_file(str(tmp_path / 'new' / 'r.json'), '--json').endswith('r.json')
    with pytest.raises(InputError, match=r'--json .* is a folder; give a file name'):
        check_output_file(str(tmp_path), '--json')
    (tmp_path / 'f').write_text('x')
    with pytest.raises(InputError, match=r'is a file, not a folder'):
        check_output_file(str(tmp_path / 'f' / 'r.json'), '--json')


def test_exif_orientation(tmp_path):
    from PIL import Image
    img = Image.new('RGB', (8, 6))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(str(tmp_path / 'turned.jpg'), exif=exif)
    img.save(str(tmp_path / 'plain.png'))
    assert exif_orientation(str(tmp_path / 'turned.jpg')) == 6
    assert exif_orientation(str(tmp_path / 'plain.png')) == 1
    assert exif_orientation(str(tmp_path / 'missing.jpg')) == 1
    assert imread_checked(str(tmp_path / 'turned.jpg')).shape == (8, 6, 3)  # read turned


def test_large_images_pass_pillows_decompression_bomb_limit(tmp_path, monkeypatch):
    """Pillow refuses images above MAX_IMAGE_PIXELS * 2 (179 MP by default; a 200 MP photo is
    a user's normal input here): the EXIF, palette and label-map readers lift the limit for
    their own call, and leave Pillow's limit as it was."""
    from PIL import Image

    from mmseg_refiner.cli.refine_semantic import read_label_map
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10)  # 8x6 = 48 px: "a bomb" (> 2x limit)
    img = Image.new('RGB', (8, 6))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(str(tmp_path / 'turned.jpg'), exif=exif)
    labels = np.zeros((6, 8), np.uint8)
    labels[2:5, 3:7] = 1
    pal = Image.fromarray(labels, mode='P')
    pal.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)  # index 0 white: colours would say 1
    pal.save(str(tmp_path / 'palette.png'))
    with pytest.raises(Image.DecompressionBombError):  # what the readers avoid
        Image.open(str(tmp_path / 'turned.jpg'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert exif_orientation(str(tmp_path / 'turned.jpg')) == 6
        assert np.array_equal(maskread_checked(str(tmp_path / 'palette.png')), labels > 0)
        assert np.array_equal(read_label_map(str(tmp_path / 'palette.png'))[0], labels)
    assert Image.MAX_IMAGE_PIXELS == 10
