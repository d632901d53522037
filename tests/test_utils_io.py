"""utils/io.py: atomic writes without mmcv's deprecation warning, one image-extension list."""
import os.path as osp
import warnings

import numpy as np

from mmseg_refiner.utils.io import IMAGE_EXTS, imwrite_atomic, maskread_checked, maskwrite_atomic


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
