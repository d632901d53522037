"""Dataset summaries: mean and pooled IoU (``evaluate --pooled``, RefinerMetric(pooled=True))."""
import json

import mmcv
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from mmseg_refiner.cli import main
from mmseg_refiner.evaluation import RefinerMetric, iou_counts, pooled_iou, summarize


def _box(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


# a big object predicted well and a small one predicted badly: pooled >> mean
GT = [_box(100, 100, 0, 0, 100, 50), _box(100, 100, 0, 0, 10, 10)]
PRED = [_box(100, 100, 0, 0, 100, 49), _box(100, 100, 5, 0, 15, 10)]
# IoU 4900/5000 = 98 %, 50/150 = 33.3 %; pooled (4900 + 50) / (5000 + 150) = 96.1 %
POOLED = 100 * 4950 / 5150
MEAN = (98 + 100 / 3) / 2


def _rows():
    return [
        dict(name=str(i), IoU=100 * (p & g).sum() / (p | g).sum(), **iou_counts(p, g))
        for i, (p, g) in enumerate(zip(PRED, GT))
    ]


def test_pooled_and_mean_iou():
    summary = summarize(_rows(), pooled=True)
    assert summary['IoU'] == pytest.approx(MEAN)
    assert summary['pooled_IoU'] == pytest.approx(POOLED)
    assert 'inter' not in summary and 'union' not in summary and summary['num_images'] == 2
    assert 'pooled_IoU' not in summarize(_rows())
    assert pooled_iou([dict(inter=0, union=0)]) == 100.0
    with pytest.raises(ValueError, match='no per-image rows'):
        summarize([])


def test_worse_counts_with_coarse_scores():
    rows = [
        dict(IoU=90.0, coarse_IoU=80.0),
        dict(IoU=70.0, coarse_IoU=71.0),
        dict(IoU=50.0, coarse_IoU=60.0)
    ]
    out = summarize(rows)
    assert (out['num_worse'], out['num_worse_2pt']) == (2, 1)
    assert out['worse_2pt_share'] == pytest.approx(1 / 3)


def test_refiner_metric_pooled():
    metric = RefinerMetric(pooled=True)
    metric.process({}, [
        dict(pred_mask=PixelData(data=torch.from_numpy(p)[None]), gt_mask=PixelData(
            data=torch.from_numpy(g)[None]), coarse_mask=PixelData(data=torch.from_numpy(g)[None]))
        for p, g in zip(PRED, GT)
    ])
    out = metric.compute_metrics(metric.results)
    assert out['IoU'] == pytest.approx(MEAN) and out['pooled_IoU'] == pytest.approx(POOLED)
    assert out['coarse_pooled_IoU'] == 100.0 and 'inter' not in out


def test_evaluate_cli_pooled(tmp_path, capsys):
    for sub, masks in (('gt', GT), ('pred', PRED)):
        for i, m in enumerate(masks):
            mmcv.imwrite(m.astype(np.uint8) * 255, str(tmp_path / sub / f'{i}.png'))
    out = tmp_path / 'report.json'
    assert main([
        'evaluate', '--gt',
        str(tmp_path / 'gt'), '--pred',
        str(tmp_path / 'pred'), '--pooled', '--json',
        str(out)
    ]) == 0
    assert 'pooledIoU' in capsys.readouterr().out
    report = json.load(open(out))
    assert report['summary']['pooled_IoU'] == pytest.approx(POOLED)
    assert report['summary']['IoU'] == pytest.approx(MEAN)
    assert set(report['iou_kinds']) == {'IoU', 'pooled_IoU'}
    assert 'sum of intersections' in report['iou_kinds']['pooled_IoU']
