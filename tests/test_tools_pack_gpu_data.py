"""tools/pack_gpu_data.py: down-scaled copies of the sets, never into tracked repository files."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location('pack_gpu_data',
                                                  osp.join(REPO, 'tools', 'pack_gpu_data.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_scales_images_and_masks_and_copies_splits(tmp_path):
    src = tmp_path / 'src' / 'people'
    os.makedirs(src / 'images')
    os.makedirs(src / 'masks')
    img = np.zeros((100, 200, 3), np.uint8)
    mask = np.zeros((100, 200), np.uint8)
    mask[20:80, 40:160] = 255
    cv2.imwrite(str(src / 'images' / 'a.jpg'), img)
    cv2.imwrite(str(src / 'masks' / 'a.png'), mask)
    (src / 'train.txt').write_text('a\n')
    dst = tmp_path / 'dst'
    _tool().main([str(tmp_path / 'src'), str(dst), '--sets', 'people', '--max-side', '50'])
    out = cv2.imread(str(dst / 'people' / 'masks' / 'a.png'), cv2.IMREAD_GRAYSCALE)
    assert out.shape == (25, 50) and set(np.unique(out)) == {0, 255}
    assert cv2.imread(str(dst / 'people' / 'images' / 'a.jpg')).shape == (25, 50, 3)
    assert (dst / 'people' / 'train.txt').read_text() == 'a\n'


def test_pack_refuses_a_tracked_folder_in_the_repository():
    with pytest.raises(SystemExit, match='not git-ignored'):
        _tool().check_destination(osp.join(REPO, 'mmseg_refiner', 'data_copy'))
