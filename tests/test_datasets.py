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
    root = _write_folder(str(tmp_path), ids, with_split={'train.txt': ids[:4], 'val.txt': ids[4:]})
    ds = DATASETS.build(
        dict(type='MaskFolderDataset', data_root=root, ann_file='train.txt', pipeline=_pipeline()))
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
    ds = DATASETS.build(
        dict(
            type='ConcatDataset', datasets=[
                dict(type='MaskFolderDataset', data_root=a, pipeline=_pipeline()),
                dict(type='MaskFolderDataset', data_root=b, pipeline=_pipeline(), indices=2)
            ]))
    assert len(ds) == 4
    _check_sample(ds[3])


def test_mask_folder_offline_coarse(tmp_path):
    root = _write_folder(str(tmp_path), ['p', 'q'])
    os.makedirs(osp.join(root, 'coarse'))
    for i in ('p', 'q'):
        cv2.imwrite(osp.join(root, 'coarse', i + '.png'), np.zeros((40, 56), np.uint8))
    ds = DATASETS.build(
        dict(
            type='MaskFolderDataset', data_root=root,
            data_prefix=dict(img_path='images', mask_path='masks',
                             coarse_path='coarse'), pipeline=[
                                 dict(type='LoadImageAndMask'),
                                 dict(type='CropAroundObject', size=CROP),
                                 dict(type='GenerateCoarseMask', seed=0),
                                 dict(type='PackRefinerInputs')
                             ]))
    sample = ds[0]['data_samples']
    assert sample.coarse_mode == 'offline' and not sample.coarse_mask.data.any()


def test_mask_folder_errors(tmp_path):
    root = str(tmp_path)
    with pytest.raises(InputError, match='image folder not found'):
        DATASETS.build(dict(type='MaskFolderDataset', data_root=root))
    _write_folder(root, ['a', 'b'],
                  with_split={'bad.txt': ['a', 'zz'], 'empty.txt': [], 'a.txt': ['a']})
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
        DATASETS.build(
            dict(type='MaskFolderDataset', data_root=root, ann_file='a.txt',
                 data_prefix=dict(img_path='images', mask_path='masks', coarse_path='nope')))


def test_mask_folder_suffixes_as_one_string(tmp_path):
    root = _write_folder(str(tmp_path), ['a', 'b', 'c'])  # a.jpg, b.png, c.jpg
    ds = DATASETS.build(dict(type='MaskFolderDataset', data_root=root, img_suffixes='.jpg'))
    assert [ds.get_data_info(i)['sample_id'] for i in range(len(ds))] == ['a', 'c']
    ds = DATASETS.build(dict(type='MaskFolderDataset', data_root=root, img_suffixes=['PNG']))
    assert [ds.get_data_info(i)['sample_id'] for i in range(len(ds))] == ['b']
    for bad in ([], 5, ['.jpg', None]):
        with pytest.raises(InputError, match='img_suffixes must be an extension'):
            DATASETS.build(dict(type='MaskFolderDataset', data_root=root, img_suffixes=bad))
    with pytest.raises(InputError, match='mask_suffix must be one extension'):
        DATASETS.build(dict(type='MaskFolderDataset', data_root=root, mask_suffix=['.png']))


def test_mask_folder_size_mismatch_is_lazy(tmp_path):
    root = _write_folder(str(tmp_path), ['a'], mask_size=(40, 50))
    ds = DATASETS.build(
        dict(type='MaskFolderDataset', data_root=root, pipeline=_pipeline(), test_mode=True))
    assert len(ds) == 1  # listing does not read the files
    with pytest.raises(InputError, match=r'size mismatch: .*masks/a\.png.*images/a\.jpg'):
        ds[0]


@pytest.mark.skipif(
    not osp.isdir(osp.join(osp.dirname(__file__), '..', '..', 'shared', 'data', 'people')),
    reason='shared people data not available')
def test_mask_folder_on_shared_people():
    root = osp.join(osp.dirname(__file__), '..', '..', 'shared', 'data', 'people')
    ds = DATASETS.build(
        dict(type='MaskFolderDataset', data_root=root, ann_file='val.txt',
             pipeline=_pipeline()[:-1] + [dict(type='PackRefinerInputs')]))
    assert len(ds) == 164
    item = ds[0]
    assert item['inputs'].shape == (3, CROP, CROP)


def _write_coco(root, with_images=True):
    """A 2-image COCO json: a polygon, an RLE, a crowd and a tiny instance."""
    from pycocotools import mask as mask_utils
    os.makedirs(osp.join(root, 'imgs'), exist_ok=True)
    rle_mask = np.zeros((40, 56), np.uint8, order='F')
    rle_mask[10:30, 20:50] = 1
    rle = mask_utils.encode(rle_mask)
    rle['counts'] = rle['counts'].decode('ascii')
    anns = [
        dict(id=1, image_id=1, category_id=1, iscrowd=0, area=400.0, bbox=[8, 5, 20, 20],
             segmentation=[[8, 5, 28, 5, 28, 25, 8, 25]]),
        dict(id=2, image_id=2, category_id=2, iscrowd=0, area=600.0, bbox=[20, 10, 30, 20],
             segmentation=rle),
        dict(id=3, image_id=1, category_id=1, iscrowd=1, area=900.0, bbox=[0, 0, 30, 30],
             segmentation=[[0, 0, 30, 0, 30, 30, 0, 30]]),
        dict(id=4, image_id=2, category_id=1, iscrowd=0, area=4.0, bbox=[1, 1, 2, 2],
             segmentation=[[1, 1, 3, 1, 3, 3, 1, 3]]),
    ]
    images = [
        dict(id=1, file_name='a.jpg', height=40, width=56),
        dict(id=2, coco_url='http://x/val2017/b.jpg', height=40, width=56)
    ]
    if with_images:
        for name, box in (('a.jpg', (8, 5, 28, 25)), ('b.jpg', (20, 10, 50, 30))):
            img = np.full((40, 56, 3), 90, np.uint8)
            img[box[1]:box[3], box[0]:box[2]] = (0, 0, 255)
            cv2.imwrite(osp.join(root, 'imgs', name), img)
    import json
    path = osp.join(root, 'ann.json')
    with open(path, 'w') as f:
        json.dump(
            dict(images=images, annotations=anns,
                 categories=[dict(id=1, name='a'), dict(id=2, name='b')]), f)
    return path


def test_coco_instance_dataset_filters_and_samples(tmp_path):
    _write_coco(str(tmp_path))
    cfg = dict(type='CocoInstanceDataset', data_root=str(tmp_path), ann_file='ann.json',
               data_prefix=dict(img_path='imgs'), min_area=100, pipeline=_pipeline())
    ds = DATASETS.build(cfg)
    assert len(ds) == 2  # crowd (3) and tiny (4) skipped
    assert [ds.get_data_info(i)['sample_id'] for i in range(2)] == ['1', '2']
    assert ds.get_data_info(1)['img_path'].endswith(osp.join('imgs', 'b.jpg'))  # LVIS url
    for i in range(2):
        _check_sample(ds[i])
    only_b = DATASETS.build(dict(cfg, cat_ids=[2]))
    assert len(only_b) == 1


def test_coco_instance_dataset_errors(tmp_path):
    _write_coco(str(tmp_path), with_images=False)
    base = dict(type='CocoInstanceDataset', data_root=str(tmp_path),
                data_prefix=dict(img_path='imgs'))
    with pytest.raises(InputError, match='no usable instances'):
        DATASETS.build(dict(base, ann_file='ann.json', min_area=10000))
    with pytest.raises(InputError, match='annotation file not found'):
        DATASETS.build(dict(base, ann_file='missing.json'))
    (tmp_path / 'bad.json').write_text('{"images": ')
    with pytest.raises(InputError, match='not a COCO-format'):
        DATASETS.build(dict(base, ann_file='bad.json'))
    ds = DATASETS.build(dict(base, ann_file='ann.json', pipeline=_pipeline(), test_mode=True))
    with pytest.raises(InputError, match=r'image file not found: .*b\.jpg'):
        ds[0]


def test_hr_patch_dataset_object_and_patch_samples(tmp_path):
    root = _write_folder(str(tmp_path), ['a', 'b'], size=(96, 128))
    os.makedirs(osp.join(root, 'coarse'))
    os.makedirs(osp.join(root, 'coarse_expand'))
    for i in ('a', 'b'):
        cv2.imwrite(osp.join(root, 'coarse', i + '.png'), np.zeros((96, 128), np.uint8))
        cv2.imwrite(osp.join(root, 'coarse_expand', i + '.png'), np.zeros((96, 128), np.uint8))
    pipeline = [
        dict(type='LoadImageAndMask', expand_prob=0.5, seed=0),
        dict(type='CropHRSample', size=CROP, patch_size=32, seed=0),
        dict(type='RefinerRandomFlip', seed=0),
        dict(type='GenerateCoarseMask', iou_range=(0.5, 0.9), seed=0),
        dict(type='PackRefinerInputs')
    ]
    ds = DATASETS.build(
        dict(
            type='HRPatchDataset', data_root=root, pipeline=pipeline,
            data_prefix=dict(img_path='images', mask_path='masks', coarse_path='coarse',
                             expanded_path='coarse_expand')))
    assert len(ds) == 4
    assert [ds.get_data_info(i)['crop_mode'] for i in range(4)] == ['object', 'patch'] * 2
    assert 'coarse_path' not in ds.get_data_info(1)
    modes = set()
    for i in range(4):
        for _ in range(4):
            item = ds[i]
            sample = item['data_samples']
            assert item['inputs'].shape == (3, CROP, CROP)
            assert sample.gt_mask.data.shape == (1, CROP, CROP)
            modes.add((sample.crop_mode, sample.coarse_mode))
            if sample.crop_mode == 'patch':  # straddles the boundary
                assert 0 < sample.gt_mask.data.float().mean() < 1
    assert ('object', 'offline') in modes and ('object', 'expanded') in modes
    assert ('patch', 'expanded') in modes
    assert any(m[0] == 'patch' and m[1] not in ('offline', 'expanded') for m in modes)
    with pytest.raises(ValueError, match='crop_modes'):
        DATASETS.build(dict(type='HRPatchDataset', data_root=root, crop_modes=('tile', )))


@pytest.mark.parametrize('field, value, match', [
    ('bbox', None, r'annotation 0 \(id 1, image 1\) has no "bbox"'),
    ('bbox', [8, 5, 20], r'annotation 0 \(id 1, image 1\): "bbox" must be \[x, y'),
    ('area', '400', r'annotation 0 \(id 1, image 1\): "area" must be a finite number'),
    ('segmentation', [[5, 5, 25]], r'annotation 0 \(id 1, image 1\): polygon 0 has 3 coord'),
    ('height', None, r"image 1 has no valid 'height'"),
])
def test_coco_instance_dataset_names_bad_records(tmp_path, field, value, match):
    import json
    path = _write_coco(str(tmp_path), with_images=False)
    with open(path) as f:
        data = json.load(f)
    record = data['images'][0] if field == 'height' else data['annotations'][0]
    if value is None:
        del record[field]
    else:
        record[field] = value
    with open(path, 'w') as f:
        json.dump(data, f)
    with pytest.raises(InputError, match=r'ann\.json: ' + match):
        DATASETS.build(
            dict(type='CocoInstanceDataset', data_root=str(tmp_path), ann_file='ann.json',
                 min_area=100))


def test_coco_instance_dataset_drops_degenerate_polygons(tmp_path):
    """COCO has polygons of 4 coordinates (a line), which mmdet drops: they are dropped, and
    an instance left without a polygon is skipped, not an error."""
    import json
    path = _write_coco(str(tmp_path), with_images=False)
    with open(path) as f:
        data = json.load(f)
    data['annotations'][0]['segmentation'].append([1, 1, 2, 2])
    data['annotations'][1].update(segmentation=[[20, 10, 50, 30]])
    with open(path, 'w') as f:
        json.dump(data, f)
    ds = DATASETS.build(
        dict(type='CocoInstanceDataset', data_root=str(tmp_path), ann_file='ann.json',
             min_area=100))
    assert len(ds) == 1
    assert ds.get_data_info(0)['mask_ann'] == [[8, 5, 28, 5, 28, 25, 8, 25]]
