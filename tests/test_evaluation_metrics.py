"""Tests of the registered metrics RefinerMetric and BoundaryAPMetric."""
import json

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.structures import BaseDataElement, InstanceData, PixelData
from pycocotools import mask as mask_utils

from mmseg_refiner.evaluation import (BoundaryAPMetric, RefinerMetric, boundary_ap, boundary_iou,
                                      mask_iou, mba)
from mmseg_refiner.utils.io import InputError


def _blob(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 < 1


def _refiner_sample(gt, pred, coarse=None):
    sample = BaseDataElement(metainfo=dict(img_path='x.png'))
    sample.gt_mask = PixelData(data=torch.from_numpy(gt[None].astype(np.uint8)))
    sample.pred_mask = PixelData(data=torch.from_numpy(pred[None]))
    if coarse is not None:
        sample.coarse_mask = PixelData(data=torch.from_numpy(coarse[None].astype(np.uint8)))
    return sample


def test_refiner_metric_averages_per_sample_scores():
    gts = [_blob(40, 48, 20, 24, 12, 15), _blob(40, 48, 18, 20, 8, 16)]
    preds = [np.roll(g, 1, axis=1) for g in gts]
    coarses = [np.roll(g, 3, axis=0) for g in gts]
    evaluator = Evaluator(MMENGINE_METRICS.build(dict(type='mmseg_refiner.RefinerMetric')))
    for g, p, c in zip(gts, preds, coarses):  # one sample per batch, as mmengine's loop does
        evaluator.process([_refiner_sample(g, p, c)])
    res = evaluator.evaluate(2)
    for name, fn in (('IoU', mask_iou), ('mBA', mba), ('BIoU', boundary_iou)):
        want = 100 * np.mean([fn(p, g) for p, g in zip(preds, gts)])
        want_coarse = 100 * np.mean([fn(c, g) for c, g in zip(coarses, gts)])
        assert res[f'refiner/{name}'] == pytest.approx(want)
        assert res[f'refiner/coarse_{name}'] == pytest.approx(want_coarse)
    assert res['refiner/IoU'] > res['refiner/coarse_IoU']


def test_refiner_metric_without_coarse_and_with_bad_shapes():
    gt = _blob(32, 32, 16, 16, 8, 8)
    metric = RefinerMetric(prefix='val')
    metric.process({}, [_refiner_sample(gt, gt).to_dict()])
    assert metric.evaluate(1) == {'val/IoU': 100.0, 'val/mBA': 100.0, 'val/BIoU': 100.0}
    bad = _refiner_sample(gt, gt[:, :30]).to_dict()
    with pytest.raises(ValueError, match='pred_mask shape'):
        metric.process({}, [bad])
    with pytest.raises(KeyError, match='pred_mask'):
        metric.process({}, [{'gt_mask': {'data': gt[None]}}])


# ---------------------------------------------------------------- boundary AP
CLASSES = ('thing', 'stuff')
SIZE = 64


def _write_ann_file(path, gt_masks):
    """COCO annotation file of (image_id, label index, mask) triples; category ids 3 and 7."""
    cat_ids = {0: 3, 1: 7}  # label index -> category id
    anns = []
    for i, (img_id, label, mask) in enumerate(gt_masks):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode()
        anns.append(
            dict(id=i + 1, image_id=img_id, category_id=cat_ids[label], segmentation=rle,
                 area=float(mask.sum()), bbox=[float(v) for v in mask_utils.toBbox(rle)],
                 iscrowd=0))
    data = dict(images=[dict(id=k, height=SIZE, width=SIZE, file_name=f'{k}.jpg') for k in (1, 2)],
                categories=[dict(id=3, name='thing'),
                            dict(id=7, name='stuff')], annotations=anns)
    path.write_text(json.dumps(data))
    return str(path)


def _det_sample(img_id, dets):
    """mmdet-3.x-style data sample with pred_instances of (label index, score, mask)."""
    masks = torch.from_numpy(np.stack([m for _, _, m in dets]))
    boxes = []
    for m in masks:
        ys, xs = torch.nonzero(m, as_tuple=True)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    pred = InstanceData(masks=masks, scores=torch.tensor([s for _, s, _ in dets]),
                        labels=torch.tensor([lbl for lbl, _, _ in dets]),
                        bboxes=torch.tensor(boxes, dtype=torch.float32))
    return BaseDataElement(pred_instances=pred, metainfo=dict(img_id=img_id,
                                                              ori_shape=(SIZE, SIZE)))


def _line(row, c0, c1, vertical=False):
    m = np.zeros((SIZE, SIZE), bool)
    m[row, c0:c1] = True
    return m.T.copy() if vertical else m


def test_boundary_ap_metric_beside_mmdet_coco_metric(tmp_path):
    """Thin (1 px) masks are their own boundary: boundary AP == mmdet's mask AP."""
    ann = _write_ann_file(tmp_path / 'ann.json', [(1, 0, _line(10, 5, 40)),
                                                  (1, 1, _line(30, 10, 50, vertical=True)),
                                                  (2, 0, _line(50, 0, 64)),
                                                  (2, 0, _line(20, 20, 30))])
    samples = [
        _det_sample(1, [(0, 0.9, _line(10, 8, 40)), (1, 0.8, _line(30, 10, 35, True))]),
        _det_sample(2, [(0, 0.7, _line(50, 0, 60)), (0, 0.95, _line(21, 20, 30)),
                        (0, 0.3, _line(20, 22, 30))])
    ]
    from mmdet.evaluation import CocoMetric
    evaluator = Evaluator([
        CocoMetric(ann_file=ann, metric='segm'),
        MMENGINE_METRICS.build(dict(type='mmseg_refiner.BoundaryAPMetric', ann_file=ann))
    ])
    evaluator.dataset_meta = dict(classes=CLASSES)
    for s in samples:
        evaluator.process([s])
    res = evaluator.evaluate(2)
    assert 0 < res['coco/segm_mAP'] < 1
    for item in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s'):
        assert res[f'coco/boundary_{item}'] == res[f'coco/segm_{item}'], item


def test_boundary_ap_metric_matches_function_on_thick_masks(tmp_path):
    gt_a, gt_b = _blob(SIZE, SIZE, 30, 30, 20, 24), _blob(SIZE, SIZE, 20, 40, 10, 12)
    ann = _write_ann_file(tmp_path / 'ann.json', [(1, 0, gt_a), (2, 1, gt_b)])
    dets = {1: [(0, 0.9, np.roll(gt_a, 2, axis=1))], 2: [(1, 0.6, np.roll(gt_b, 1, axis=0))]}
    metric = BoundaryAPMetric(ann_file=ann, metric_items=['mAP', 'mAP_50', 'AR@100'])
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [_det_sample(k, v).to_dict() for k, v in dets.items()])
    res = metric.evaluate(2)
    assert sorted(res) == ['coco/boundary_AR@100', 'coco/boundary_mAP', 'coco/boundary_mAP_50']
    results = [
        dict(image_id=k, category_id=(3, 7)[lbl], score=s,
             segmentation=mask_utils.encode(np.asfortranarray(m.astype(np.uint8))))
        for k, v in dets.items() for lbl, s, m in v
    ]
    want = boundary_ap(ann, results, max_dets=(100, 300, 1000))
    assert res['coco/boundary_mAP'] == pytest.approx(round(want['mAP'], 3))
    assert res['coco/boundary_mAP'] < round(boundary_ap(ann, results, iou_type='segm')['mAP'], 3)


def test_boundary_ap_metric_rejects_unknown_items(tmp_path):
    ann = _write_ann_file(tmp_path / 'ann.json', [(1, 0, _line(3, 3, 9))])
    with pytest.raises(KeyError, match='unknown metric_items'):
        BoundaryAPMetric(ann_file=ann, metric_items=['mAP_99'])


@pytest.mark.parametrize('ratio', [0, -0.1, 1.5, float('nan'), float('inf'), '0.02', None, True])
def test_metrics_check_dilation_ratio_at_build(tmp_path, ratio):
    ann = _write_ann_file(tmp_path / 'ann.json', [(1, 0, _line(3, 3, 9))])
    for build in (lambda: RefinerMetric(dilation_ratio=ratio),
                  lambda: BoundaryAPMetric(ann_file=ann, dilation_ratio=ratio)):
        with pytest.raises(ValueError, match='dilation_ratio must be a finite number in'):
            build()


def test_boundary_ap_metric_names_a_bad_annotation_file(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [')
    with pytest.raises(InputError, match='bad.json is not a COCO-format annotation file'):
        BoundaryAPMetric(ann_file=str(bad))


def test_boundary_ap_metric_refuses_predictions_it_cannot_score(tmp_path):
    ann = _write_ann_file(tmp_path / 'ann.json', [(1, 0, _line(10, 5, 40))])
    metric = BoundaryAPMetric(ann_file=ann)
    with pytest.raises(ValueError, match=r"class\(es\) \['cat'\] are not categories of .*ann"):
        metric.dataset_meta = dict(classes=('thing', 'cat'))
    metric.dataset_meta = dict(classes=CLASSES)
    cases = {
        # mmdet rescale=False: masks at the network size, not the image size
        'predicted masks are 32x32 \\(WxH\\) but the image in .*ann.json is 64x64':
        _det_sample(1, [(0, 0.9, _line(10, 5, 30)[:32, :32])]),
        'label 2 has no category \\(2 categories':
        _det_sample(1, [(2, 0.9, _line(10, 5, 40))]),
        'image id 9 of a prediction is not an image of .*ann.json':
        _det_sample(9, [(0, 0.9, _line(10, 5, 40))]),
    }
    for match, sample in cases.items():
        with pytest.raises(ValueError, match=match):
            metric.process({}, [sample.to_dict()])
    assert metric.results == []
