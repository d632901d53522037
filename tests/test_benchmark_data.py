"""``benchmark data``: the training data pipeline timed per part and transform."""
import json
import os.path as osp

import pytest

from mmseg_refiner.benchmark import data as bdata
from mmseg_refiner.cli.benchmark import main as benchmark_main

from conftest import REPO_ROOT, TINY_CONFIG, write_mask_folder

CAMPAIGN = osp.join(REPO_ROOT, 'configs', 'segrefiner', 'segrefiner_small_campaign.py')


@pytest.fixture(scope='module')
def people_hair_root(tmp_path_factory):
    """``people/`` and ``hair/`` folders with a train split, as the campaign config reads."""
    root = str(tmp_path_factory.mktemp('people_hair'))
    for n, name in enumerate(('people', 'hair')):
        write_mask_folder(osp.join(root, name), 3, seed=20 + n)
        with open(osp.join(root, name, 'train.txt'), 'w') as f:
            f.write('0\n1\n2\n')
    return root


def test_campaign_pipeline_timed_per_part_and_transform(people_hair_root, tmp_path, monkeypatch):
    monkeypatch.setenv('REFINER_DATA_ROOT', people_hair_root)
    out = tmp_path / 'data'
    rc = benchmark_main([
        'data', '--config', CAMPAIGN, '--samples', '8', '--passes', '2', '--iters', '1',
        '--threads', '1', '--cfg-options', 'train_dataloader.batch_size=2', '--out',
        str(out)
    ])
    assert rc == 0
    report = json.load(open(out / 'data.json'))
    rows = report['rows']
    parts = [r['dataset'] for r in rows if r['passes'] == 1]
    assert parts == [
        'MaskFolderDataset (people)', 'MaskFolderDataset (hair)', 'CopyPasteDataset',
        'ProceduralDataset', 'all'
    ]
    assert [r['passes'] for r in rows] == [1] * 5 + [2] * 5
    by_part = {r['dataset']: r for r in rows if r['passes'] == 2}
    # every transform of the pipeline is timed where it runs; generated parts add their own work
    folder_steps = list(by_part['MaskFolderDataset (people)']['steps'])
    assert folder_steps[:4] == [
        'LoadImageAndMask', 'CropAroundObject', 'RefinerRandomFlip', 'GenerateCoarseMask'
    ]
    assert 'generate' in by_part['CopyPasteDataset']['steps']
    assert 'LoadImageAndMask' not in by_part['ProceduralDataset']['steps']
    # shares follow the parts' lengths (3 + 3 photos, 1100 composites, 550 procedural)
    assert by_part['CopyPasteDataset']['share'] == pytest.approx(1100 / 1656)
    assert sum(r['samples'] for r in rows if r['passes'] == 1 and r['dataset'] != 'all') == \
        by_part['all']['samples']
    for r in rows:
        assert r['ms_per_sample'] > 0 and r['samples_per_s'] > 0 and r['of_step'] > 0
    step = report['training_step']
    assert (step['variant'], step['batch'], step['size']) == ('bf16_cl', 2, 128)
    text = (out / 'data.md').read_text()
    assert text.startswith('CPU: ') and 'Slowest steps, pass 2' in text
    assert 'Training step (bf16_cl, batch 2, 128x128)' in text


def test_bad_configs_are_clear_errors(tmp_path, capsys):
    assert benchmark_main(['data', '--out', str(tmp_path)]) == 1
    assert 'benchmark data needs --config' in capsys.readouterr().err
    assert benchmark_main(['data', '--config',
                           str(tmp_path / 'nope.py'), '--out',
                           str(tmp_path)]) == 1
    assert 'config not found: ' in capsys.readouterr().err
    assert benchmark_main(['data', '--config', TINY_CONFIG, '--out', str(tmp_path)]) == 1
    assert 'has no train_dataloader' in capsys.readouterr().err
    with pytest.raises(ValueError, match='samples and passes must be positive'):
        bdata.data_speed(None, samples=0)


def test_draws_follow_the_shares_with_one_each_at_least():
    assert bdata._draws([3, 3, 1100, 550], 48) == [1, 1, 32, 16]
    assert bdata._draws([10, 30], 8) == [2, 6]


@pytest.mark.parametrize('flag', ['--samples', '--passes', '--iters'])
def test_counts_are_checked_before_any_work(flag, tmp_path, capsys):
    """``--iters 0`` used to end in a ZeroDivisionError after the whole data pass."""
    with pytest.raises(SystemExit) as exc:
        benchmark_main(['data', '--config', CAMPAIGN, '--out', str(tmp_path), flag, '0'])
    assert exc.value.code == 2
    assert f"argument {flag}: expected an integer >= 1, got '0'" in capsys.readouterr().err
