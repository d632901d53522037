"""Tests of ``mmseg-refiner evaluate``: pairing, errors, and outputs that match the functions."""
import csv
import json
import os

import cv2
import numpy as np
import pytest

from mmseg_refiner.cli import main
from mmseg_refiner.evaluation import boundary_iou, mask_iou, mba


def _ellipse(h, w, cx, cy, ax, ay):
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (cx, cy), (ax, ay), 0, 0, 360, 255, -1)
    return m


@pytest.fixture
def folders(tmp_path):
    """gt/, pred/, coarse/, img/ with three 48x64 cases (one refined mask is worse)."""
    dirs = {k: tmp_path / k for k in ('gt', 'pred', 'coarse', 'img')}
    for d in dirs.values():
        d.mkdir()
    cases = {
        'a': (_ellipse(48, 64, 30, 24, 18, 12), 1, 4),
        'b': (_ellipse(48, 64, 20, 20, 10, 14), 0, 3),
        'c': (_ellipse(48, 64, 34, 28, 20, 10), 5, 1),  # refined is worse than coarse
    }
    rng = np.random.default_rng(0)
    for name, (gt, pred_shift, coarse_shift) in cases.items():
        cv2.imwrite(str(dirs['gt'] / f'{name}.png'), gt)
        cv2.imwrite(str(dirs['pred'] / f'{name}.png'), np.roll(gt, pred_shift, axis=1))
        cv2.imwrite(str(dirs['coarse'] / f'{name}.png'), np.roll(gt, coarse_shift, axis=0))
        cv2.imwrite(str(dirs['img'] / f'{name}.jpg'),
                    rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return {k: str(v) for k, v in dirs.items()}, cases


def _read(path):
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE) > 127


def test_json_and_csv_match_the_functions(folders, tmp_path, capsys):
    dirs, cases = folders
    out_json, out_csv = str(tmp_path / 'r' / 'e.json'), str(tmp_path / 'r' / 'e.csv')
    rc = main([
        'evaluate', '--gt', dirs['gt'], '--pred', dirs['pred'], '--coarse', dirs['coarse'],
        '--json', out_json, '--csv', out_csv
    ])
    assert rc == 0
    report = json.load(open(out_json))
    rows = {r['name']: r for r in report['per_image']}
    assert sorted(rows) == ['a', 'b', 'c']
    for name in rows:
        gt = _read(os.path.join(dirs['gt'], f'{name}.png'))
        pred = _read(os.path.join(dirs['pred'], f'{name}.png'))
        coarse = _read(os.path.join(dirs['coarse'], f'{name}.png'))
        for key, fn in (('IoU', mask_iou), ('mBA', mba), ('BIoU', boundary_iou)):
            assert rows[name][key] == pytest.approx(100 * fn(pred, gt))
            assert rows[name][f'coarse_{key}'] == pytest.approx(100 * fn(coarse, gt))
    summary = report['summary']
    assert summary['num_images'] == 3
    assert summary['IoU'] == pytest.approx(np.mean([r['IoU'] for r in rows.values()]))
    assert summary['delta_mBA'] == pytest.approx(summary['mBA'] - summary['coarse_mBA'])
    assert summary['num_worse'] == 1 and summary['num_worse_2pt'] == 1
    with open(out_csv) as f:
        csv_rows = list(csv.DictReader(f))
    assert [r['name'] for r in csv_rows] == ['a', 'b', 'c']
    assert float(csv_rows[2]['BIoU']) == pytest.approx(rows['c']['BIoU'])
    printed = capsys.readouterr().out
    assert 'delta' in printed and 'worse on 1' in printed


def test_vis_writes_worst_and_best_panels(folders, tmp_path):
    dirs, _ = folders
    vis = tmp_path / 'vis'
    rc = main([
        'evaluate', '--gt', dirs['gt'], '--pred', dirs['pred'], '--coarse', dirs['coarse'],
        '--img', dirs['img'], '--vis',
        str(vis), '--num-vis', '1'
    ])
    assert rc == 0
    files = sorted(os.listdir(vis))
    assert files == ['best_00_a.png', 'worst_00_c.png']
    panel = cv2.imread(str(vis / files[1]))
    assert panel.shape[1] == 3 * 64 and panel.shape[0] > 48


def test_without_coarse_and_without_images(folders, tmp_path, capsys):
    dirs, _ = folders
    rc = main([
        'evaluate', '--gt', dirs['gt'], '--pred', dirs['pred'], '--vis',
        str(tmp_path / 'v'), '--num-vis', '1', '--json',
        str(tmp_path / 'j.json')
    ])
    assert rc == 0
    summary = json.load(open(tmp_path / 'j.json'))['summary']
    assert 'coarse_IoU' not in summary and 'num_worse' not in summary
    assert len(os.listdir(tmp_path / 'v')) == 2
    assert 'delta' not in capsys.readouterr().out


def test_missing_prediction_is_a_clear_error(folders, capsys):
    dirs, _ = folders
    os.remove(os.path.join(dirs['pred'], 'b.png'))
    assert main(['evaluate', '--gt', dirs['gt'], '--pred', dirs['pred']]) == 1
    err = capsys.readouterr().err
    assert '1 of 3 ground-truth masks have no --pred mask' in err and ': b' in err


def test_size_mismatch_is_a_clear_error(folders, capsys):
    dirs, _ = folders
    cv2.imwrite(os.path.join(dirs['pred'], 'b.png'), np.zeros((40, 64), np.uint8))
    assert main(['evaluate', '--gt', dirs['gt'], '--pred', dirs['pred']]) == 1
    err = capsys.readouterr().err
    assert 'b.png is 64x40 (WxH)' in err and '64x48' in err


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(['evaluate', '--gt', str(tmp_path / 'nope'), '--pred', str(tmp_path)]) == 1
    assert f'gt not found: {tmp_path / "nope"}' in capsys.readouterr().err


def test_output_paths_and_dilation_ratio_are_checked_before_scoring(tmp_path, capsys):
    dirs = {k: tmp_path / k for k in ('gt', 'pred')}
    for d in dirs.values():
        d.mkdir()
        cv2.imwrite(str(d / 'a.png'), np.zeros((8, 8), np.uint8))
    args = ['evaluate', '--gt', str(dirs['gt']), '--pred', str(dirs['pred'])]
    assert main(args + ['--json', str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f'--json {tmp_path} is a folder' in captured.err and 'IoU' not in captured.out
    for bad in ('nan', '0', '1.5', 'x'):
        with pytest.raises(SystemExit) as exc:
            main(args + ['--dilation-ratio', bad])
        assert exc.value.code == 2
        assert 'expected a fraction of the diagonal in (0, 1)' in capsys.readouterr().err
