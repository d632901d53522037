"""LVIS-style mask AP / Boundary AP (the paper's COCO protocol) on a tiny LVIS-format file."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmseg_refiner.evaluation.lvis import LVISMaskMetric, lvis_ap, lvis_mask_and_boundary_ap
from mmseg_refiner.utils.masks import rle_encode

from conftest import REPO_ROOT

pytest.importorskip('lvis', reason='the LVIS evaluation needs the `lvis` package (make env)')

H, W = 40, 50
GT_BOXES = {1: (1, (10, 10, 30, 30)), 2: (3, (5, 5, 45, 25))}  # image id: (category, box)


def _box(x0, y0, x1, y1, h=H, w=W):
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def write_lvis(path) -> str:
    """Two 40x50 images: a 'person' (id 1, frequent) square and a 'car' (id 3, common)
    rectangle; each image lists the other category as verified absent."""
    images, anns = [], []
    for img_id, (cat, (x0, y0, x1, y1)) in GT_BOXES.items():
        other = 3 if cat == 1 else 1
        images.append(
            dict(id=img_id, height=H, width=W, coco_url=f'x/{img_id}.jpg',
                 neg_category_ids=[other], not_exhaustive_category_ids=[]))
        anns.append(
            dict(id=img_id, image_id=img_id, category_id=cat, bbox=[x0, y0, x1 - x0, y1 - y0],
                 area=(x1 - x0) * (y1 - y0), segmentation=[[x0, y0, x1, y0, x1, y1, x0, y1]]))
    cats = [
        dict(id=1, name='person', synset='person.n.01', frequency='f'),
        dict(id=3, name='car', synset='car.n.01', frequency='c')
    ]
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return str(path)


def _results(shift=0):
    out = []
    for img_id, (cat, (x0, y0, x1, y1)) in GT_BOXES.items():
        out.append(
            dict(image_id=img_id, category_id=cat, score=0.9,
                 segmentation=rle_encode(_box(x0 + shift, y0, x1 + shift, y1))))
    return out


def test_perfect_masks_score_one(tmp_path):
    ann = write_lvis(tmp_path / 'lvis.json')
    stats = lvis_mask_and_boundary_ap(ann, _results())
    assert stats['segm_AP'] == pytest.approx(1.0) and stats['boundary_AP'] == pytest.approx(1.0)
    assert stats['segm_APr'] == -1  # no rare category in the file


def test_boundary_ap_punishes_boundary_errors_more(tmp_path):
    ann = write_lvis(tmp_path / 'lvis.json')
    stats = lvis_mask_and_boundary_ap(ann, _results(shift=1))
    assert 0 < stats['boundary_AP'] < stats['segm_AP'] < 1
    # a result on a category the file does not know is not scored (reference protocol)
    extra = _results(shift=1) + [
        dict(image_id=1, category_id=99, score=1.0, segmentation=rle_encode(_box(0, 0, 5, 5)))
    ]
    assert lvis_ap(ann, extra) == lvis_ap(ann, _results(shift=1))
    # polygons are scored like the same mask as RLE
    poly = [
        dict(r, segmentation=[[x0, y0, x1, y0, x1, y1, x0, y1]])
        for r, (_, (x0, y0, x1, y1)) in zip(_results(), GT_BOXES.values())
    ]
    assert lvis_ap(ann, poly) == lvis_ap(ann, _results())


def test_bad_arguments_are_clear_errors(tmp_path):
    ann = write_lvis(tmp_path / 'lvis.json')
    with pytest.raises(ValueError, match='iou_type must be one of'):
        lvis_ap(ann, _results(), iou_type='bbox')
    with pytest.raises(ValueError, match='none of the 1 results'):
        lvis_ap(ann, [
            dict(image_id=7, category_id=1, score=1.0, segmentation=rle_encode(_box(0, 0, 5, 5)))
        ])
    with pytest.raises(FileNotFoundError, match='not found'):
        LVISMaskMetric(ann_file=str(tmp_path / 'missing.json'))


def test_lvis_mask_metric(tmp_path):
    metric = LVISMaskMetric(ann_file=write_lvis(tmp_path / 'lvis.json'))
    samples = []
    for img_id, (cat, box) in GT_BOXES.items():
        samples.append(
            dict(
                img_id=img_id,
                pred_instances=dict(masks=torch.from_numpy(_box(*box))[None],
                                    scores=torch.tensor([0.8]),
                                    labels=torch.tensor([0 if cat == 1 else 1
                                                         ]))))  # label -> sorted cat ids [1, 3]
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    assert out['segm_AP'] == 1.0 and out['boundary_AP'] == 1.0


def test_tools_test_lvis_option_switches_the_evaluator(tmp_path):
    spec = importlib.util.spec_from_file_location('tools_test',
                                                  osp.join(REPO_ROOT, 'tools', 'test.py'))
    tools_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools_test)
    from mmengine.config import Config
    cfg = Config(dict(test_evaluator=dict(type='CocoMetric')))
    ann = write_lvis(tmp_path / 'lvis.json')
    tools_test.use_lvis_evaluator(cfg, ann, 'mmdet')
    assert cfg.test_evaluator == dict(type='mmseg_refiner.LVISMaskMetric', ann_file=ann)
    with pytest.raises(ValueError, match='needs an mmdet config'):
        tools_test.use_lvis_evaluator(cfg, ann, 'mmseg')
    assert tools_test.parse_args(['c.py', 'w.pth', '--lvis-ann', ann]).lvis_ann == ann


def test_refine_coco_scores_against_lvis(tmp_path, capsys):
    import mmcv

    from mmseg_refiner.cli import main

    from test_refiner_hook import save_noisy_refiner
    images = []
    for img_id in GT_BOXES:
        image = np.random.default_rng(img_id).integers(0, 255, (H, W, 3), dtype=np.uint8)
        mmcv.imwrite(image, str(tmp_path / 'img' / f'{img_id}.png'))
        images.append(dict(id=img_id, file_name=f'{img_id}.png', height=H, width=W))
    with open(tmp_path / 'coco.json', 'w') as f:
        json.dump(dict(images=images, annotations=[], categories=[]), f)
    with open(tmp_path / 'res.json', 'w') as f:
        json.dump(_results(shift=1), f)
    ann, out = write_lvis(tmp_path / 'lvis.json'), tmp_path / 'refined.json'
    from conftest import TINY_CONFIG
    assert main([
        'refine-coco',
        str(tmp_path / 'res.json'), '--ann',
        str(tmp_path / 'coco.json'), '--img-dir',
        str(tmp_path / 'img'), '--out',
        str(out), '--config', TINY_CONFIG, '--checkpoint',
        save_noisy_refiner(tmp_path / 'noisy.pth'), '--mode', 'instance', '--lvis-ann', ann
    ]) == 0
    assert 'boundary_AP' in capsys.readouterr().out
    report = json.load(open(str(out) + '.lvis_eval.json'))
    assert report['input'] == lvis_mask_and_boundary_ap(ann, _results(shift=1))
    assert report['refined'] == lvis_mask_and_boundary_ap(ann, json.load(open(out)))


def test_lvis_mask_metric_checks_its_file_and_labels_early(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [')
    with pytest.raises(ValueError, match='bad.json is not an LVIS-format annotation file'):
        LVISMaskMetric(ann_file=str(bad))
    ann = write_lvis(tmp_path / 'lvis.json')
    with pytest.raises(ValueError, match='LVISMaskMetric: dilation_ratio must be'):
        LVISMaskMetric(ann_file=ann, dilation_ratio=float('nan'))
    metric = LVISMaskMetric(ann_file=ann)
    sample = dict(
        img_id=1, pred_instances=dict(masks=torch.from_numpy(_box(0, 0, 5, 5))[None],
                                      scores=torch.tensor([0.8]), labels=torch.tensor([7])))
    with pytest.raises(ValueError, match=r'image 1: label 7 has no category \(2 categories'):
        metric.process({}, [sample])
    assert metric.results == []


def test_lvis_mask_metric_refuses_a_class_count_that_fits_no_category_list(tmp_path):
    """80 classes mean COCO ids, as many as the file's categories mean those; any other count
    would score labels as other categories, so it is refused at the first batch."""
    ann = write_lvis(tmp_path / 'lvis.json')  # 2 categories: ids 1 and 3
    sample = dict(
        img_id=1, pred_instances=dict(masks=torch.from_numpy(_box(10, 10, 30, 30))[None],
                                      scores=torch.tensor([0.8]), labels=torch.tensor([0])))
    metric = LVISMaskMetric(ann_file=ann)
    metric.dataset_meta = dict(classes=('person', 'car', 'dog'))
    with pytest.raises(
            ValueError, match=r'the dataset has 3 classes, but .*lvis.json has 2 '
            r'categories .* give cat_ids'):
        metric.process({}, [sample])
    metric = LVISMaskMetric(ann_file=ann, cat_ids=[1, 3])
    metric.dataset_meta = dict(classes=('person', 'car', 'dog'))
    with pytest.raises(ValueError, match='cat_ids has 2 ids but the dataset has 3 classes'):
        metric.process({}, [sample])
    for classes, cat_ids in ((('person', 'car'), None), (('person', 'car', 'dog'), [1, 3, 3])):
        metric = LVISMaskMetric(ann_file=ann, cat_ids=cat_ids)
        metric.dataset_meta = dict(classes=classes)
        metric.process({}, [sample])
        assert metric.results[0]['labels'].tolist() == [0]
