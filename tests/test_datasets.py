"""Datasets: folder data yields shaped, aligned samples; clear errors for bad layouts."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from mmengine.registry import DefaultScope

from mmseg_refiner.registry import DATASETS
from mmseg_refiner.utils.io import InputError

CROP = 32


@pytest.fixture(autouse=True)
def refiner_scope():
    """Pipelines name transforms without a scope prefix, as the configs do."""
    with DefaultScope.overwrite_default_scope('mmseg_refiner'):
        yield


def _write_folder(root, ids, size=(40, 56), mask_size=None, with_split=None):
    """Write ``images/<id>.jpg|png`` and ``masks/<id>.png``: a red box on grey, its mask."""
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'masks'), exist_ok=True)
    h, w = size
    for n, i in enumerate(ids):
        img = np.full((h, w, 3), 90, np.uint8)
        mask = np.zeros(mask_size or size, np.uint8)
        y0, x0 = 5 + n % 5, 8 + n % 7
        img[y0:y0 + 20, x0:x0 + 24] = (0, 0, 255)
        mask[y0:y0 + 20, x0:x0 + 24] = 255
        ext = '.png' if n % 2 else '.jpg'  # both image formats in one folder
        cv2.imwrite(osp.join(root, 'images', i + ext), img)
        cv2.imwrite(osp.join(root, 'masks', i + '.png'), mask)
    if with_split:
        for name, split_ids in with_split.items():
            with open(osp.join(root, name), 'w') as f:
                f.write('\n'.join(split_ids) + '\n\n')
    return root


def _pipeline(seed=0):
    return [
        dict(type='LoadImageAndMask'),
        dict(type='CropAroundObject', size=CROP, max_context=4, seed=seed),
        dict(type='RefinerRandomFlip', prob=0.5, seed=seed),
        dict(type='GenerateCoarseMask', iou_range=(0.5, 0.9), seed=seed),
        dict(type='PackRefinerInputs'),
    ]


def _check_sample(item):
    inputs, sample = item['inputs'], item['data_samples']
    assert inputs.shape == (3, CROP, CROP) and inputs.dtype == torch.uint8
    gt, coarse = sample.gt_mask.data, sample.coarse_mask.data
    assert gt.shape == coarse.shape == (1, CROP, CROP) and gt.dtype == torch.uint8
    # Aligned: the red object (BGR) is where the GT mask is (up to resize blur at the edge).
    red = (inputs[2] > 150) & (inputs[0] < 100)
    agree = (red == gt[0].bool()).float().mean()
    assert agree > 0.9
    assert 0.5 <= sample.coarse_iou < 0.9


def test_mask_folder_split_and_samples(tmp_path):
    ids = [f's{i}' for i in range(6)]
    root = _write_folder(str(tmp_path), ids, with_split={'train.txt': ids[:4],
                                                         'val.txt': ids[4:]})
    ds = DATASETS.build(dict(type='MaskFolderDataset', data_root=root, ann_file='train.txt',
                             pipeline=_pipeline()))
    assert len(ds) == 4
    info = ds.get_data_info(1)
    assert info['sample_id'] == 's1' and info['img_path'].endswith('s1.png')
    assert info['mask_path'] == osp.join(root, 'masks', 's1.png')
    for i in range(len(ds)):
        _check_sample(ds[i])
    everything = DATASETS.build(dict(type='MaskFolderDataset', data_root=root))
    assert len(everything) == 6


def test_mask_folder_concat_and_indices(tmp_path):
    a = _write_folder(str(tmp_path / 'a'), ['x', 'y'])
    b = _write_folder(str(tmp_path / 'b'), ['x', 'y', 'z'])
    ds = DATASETS.build(dict(type='ConcatDataset', datasets=[
        dict(type='MaskFolderDataset', data_root=a, pipeline=_pipeline()),
        dict(type='MaskFolderDataset', data_root=b, pipeline=_pipeline(), indices=2)]))
    assert len(ds) == 4
    _check_sample(ds[3])


def test_mask_folder_offline_coarse(tmp_path):
    root = _write_folder(str(tmp_path), ['p', 'q'])
    os.makedirs(osp.join(root, 'coarse'))
    for i in ('p', 'q'):
        cv2.imwrite(osp.join(root, 'coarse', i + '.png'), np.zeros((40, 56), np.uint8))
    ds = DATASETS.build(dict(
        type='MaskFolderDataset', data_root=root,
        data_prefix=dict(img_path='images', mask_path='masks', coarse_path='coarse'),
        pipeline=[dict(type='LoadImageAndMask'), dict(type='CropAroundObject', size=CROP),
                  dict(type='GenerateCoarseMask', seed=0), dict(type='PackRefinerInputs')]))
    sample = ds[0]['data_samples']
    assert sample.coarse_mode == 'offline' and not sample.coarse_mask.data.any()


def test_mask_folder_errors(tmp_path):
    root = str(tmp_path)
    with pytest.raises(InputError, match='image folder not found'):
        DATASETS.build(dict(type='MaskFolderDataset', data_root=root))
    _write_folder(root, ['a', 'b'], with_split={'bad.txt': ['a', 'zz'], 'empty.txt': [],
                                                'a.txt': ['a']})
    with pytest.raises(InputError, match='image missing .* zz'):
        DATASETS.build(dict(type='MaskFolderDataset', data_root=root, ann_file='bad.txt'))
    with pytest.raises(InputError, match='no samples'):
        DATASETS.build(dict(type='MaskFolderDataset', data_root=root, ann_file='empty.txt'))
    with pytest.raises(InputError, match='split file not found'):
        DATASETS.build(dict(type='MaskFolderDataset', data_root=root, ann_file='none.txt'))
    os.remove(osp.join(root, 'masks', 'b.png'))
    with pytest.raises(InputError, match=r'mask_path file .* missing .* b'):
        DATASETS.build(dict(type='MaskFolderDataset', data_root=root))
    with pytest.raises(InputError, match='coarse_path folder not found'):
        DATASETS.build(dict(type='MaskFolderDataset', data_root=root, ann_file='a.txt',
                            data_prefix=dict(img_path='images', mask_path='masks',
                                             coarse_path='nope')))


def test_mask_folder_size_mismatch_is_lazy(tmp_path):
    root = _write_folder(str(tmp_path), ['a'], mask_size=(40, 50))
    ds = DATASETS.build(dict(type='MaskFolderDataset', data_root=root, pipeline=_pipeline(),
                             test_mode=True))
    assert len(ds) == 1  # listing does not read the files
    with pytest.raises(InputError, match=r'size mismatch: .*masks/a\.png.*images/a\.jpg'):
        ds[0]


@pytest.mark.skipif(not osp.isdir(osp.join(osp.dirname(__file__), '..', '..', 'shared',
                                           'data', 'people')),
                    reason='shared people data not available')
def test_mask_folder_on_shared_people():
    root = osp.join(osp.dirname(__file__), '..', '..', 'shared', 'data', 'people')
    ds = DATASETS.build(dict(type='MaskFolderDataset', data_root=root, ann_file='val.txt',
                             pipeline=_pipeline()[:-1] + [dict(type='PackRefinerInputs')]))
    assert len(ds) == 164
    item = ds[0]
    assert item['inputs'].shape == (3, CROP, CROP)
