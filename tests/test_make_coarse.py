"""tools/make_coarse.py: offline coarse masks, resumable, seeded, atomic."""
import importlib.util
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

from mmseg_refiner.datasets.coarse_synthesis import mask_iou

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def make_coarse():
    spec = importlib.util.spec_from_file_location('make_coarse_tool',
                                                  osp.join(REPO, 'tools', 'make_coarse.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the worker pool pickles its functions by module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _write_masks(root, n=3, size=(80, 96)):
    os.makedirs(osp.join(root, 'masks'))
    for i in range(n):
        mask = np.zeros(size, np.uint8)
        cv2.ellipse(mask, (48, 40), (30 - 4 * i, 20), 10.0 * i, 0, 360, 255, -1)
        mask[30:34, 40:56] = 0  # a gap: the expanded source fills it
        cv2.imwrite(osp.join(root, 'masks', f'm{i}.png'), mask)
    return root


def _read(path):
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE) > 127


def test_make_coarse_writes_seeded_outputs(make_coarse, tmp_path):
    root = _write_masks(str(tmp_path / 'a'))
    assert make_coarse.main([root, '--iou-target', '0.85', '--iou-min', '0.6']) == 0
    for i in range(3):
        gt = _read(osp.join(root, 'masks', f'm{i}.png'))
        coarse = _read(osp.join(root, 'coarse', f'm{i}.png'))
        expanded = _read(osp.join(root, 'coarse_expand', f'm{i}.png'))
        assert coarse.shape == expanded.shape == gt.shape
        assert 0.6 <= mask_iou(coarse, gt) < 0.85
        assert not np.array_equal(coarse, expanded)
    assert not [f for f in os.listdir(osp.join(root, 'coarse')) if f.startswith('.tmp')]
    # Same seed, other order of work (2 workers): same files.
    other = _write_masks(str(tmp_path / 'b'))
    assert make_coarse.main([other, '--iou-target', '0.85', '--iou-min', '0.6', '--workers',
                             '2']) == 0
    for d in ('coarse', 'coarse_expand'):
        for i in range(3):
            np.testing.assert_array_equal(_read(osp.join(root, d, f'm{i}.png')),
                                          _read(osp.join(other, d, f'm{i}.png')))


def test_make_coarse_resumes_and_overwrites(make_coarse, tmp_path, capsys):
    root = _write_masks(str(tmp_path), n=2)
    make_coarse.main([root, '--expanded-dir', ''])
    assert not osp.exists(osp.join(root, 'coarse_expand'))
    target = osp.join(root, 'coarse', 'm0.png')
    os.remove(osp.join(root, 'coarse', 'm1.png'))  # as if interrupted before m1
    before = os.stat(target).st_mtime_ns
    capsys.readouterr()
    assert make_coarse.main([root, '--expanded-dir', '']) == 0
    assert '1 written, 1 already there' in capsys.readouterr().out
    assert os.stat(target).st_mtime_ns == before
    assert osp.isfile(osp.join(root, 'coarse', 'm1.png'))
    make_coarse.main([root, '--expanded-dir', '', '--overwrite', '--seed', '5'])
    assert '2 written' in capsys.readouterr().out


def test_make_coarse_refuses_to_mix_settings_in_one_folder(make_coarse, tmp_path, capsys):
    """A resumed run with other settings would leave masks of two recipes in one folder."""
    root = _write_masks(str(tmp_path), n=2)
    assert make_coarse.main([root, '--iou-target', '0.85']) == 0
    record = osp.join(root, 'coarse', make_coarse.SETTINGS_FILE)
    with open(record) as f:
        assert json.load(f)['iou_target'] == 0.85
    os.remove(osp.join(root, 'coarse', 'm1.png'))
    capsys.readouterr()
    assert make_coarse.main([root, '--iou-target', '0.7', '--mode', 'polygon']) == 1
    err = capsys.readouterr().err
    assert "were made with mode='reference', iou_target=0.85; this run has mode='polygon', " \
        "iou_target=0.7. Give --overwrite" in err, err
    assert not osp.exists(osp.join(root, 'coarse', 'm1.png'))  # refused before any work
    assert make_coarse.main([root, '--iou-target', '0.85']) == 0  # same settings: resumes
    assert '1 written, 1 already there' in capsys.readouterr().out
    assert make_coarse.main([root, '--iou-target', '0.7', '--overwrite']) == 0
    assert '2 written' in capsys.readouterr().out
    with open(record) as f:
        assert json.load(f)['iou_target'] == 0.7
    with open(osp.join(root, 'coarse_expand', make_coarse.SETTINGS_FILE), 'w') as f:
        f.write('[1, 2]')
    assert make_coarse.main([root, '--iou-target', '0.7']) == 1
    assert 'is not a settings record of make_coarse.py' in capsys.readouterr().err


def test_make_coarse_refuses_to_resume_a_cut_overwrite_run(make_coarse, tmp_path, capsys):
    """An --overwrite run that did not redo every mask leaves masks of the earlier settings:
    its records say so until a later --overwrite run finishes, and a plain resume is refused."""
    root = _write_masks(str(tmp_path), n=2)
    assert make_coarse.main([root, '--expanded-dir', '']) == 0
    good = open(osp.join(root, 'masks', 'm1.png'), 'rb').read()
    with open(osp.join(root, 'masks', 'm1.png'), 'wb') as f:
        f.write(b'not a png')  # m1 fails: its mask of the earlier settings stays
    assert make_coarse.main([root, '--expanded-dir', '', '--seed', '5', '--overwrite']) == 1
    record = osp.join(root, 'coarse', make_coarse.SETTINGS_FILE)
    with open(record) as f:
        assert json.load(f) == dict(mask_dir='masks', mode='reference', iou_target=0.8,
                                    iou_min=0.0, max_side=0, seed=5, expanded=False,
                                    overwriting=True)
    with open(osp.join(root, 'masks', 'm1.png'), 'wb') as f:
        f.write(good)
    capsys.readouterr()
    assert make_coarse.main([root, '--expanded-dir', '', '--seed', '5']) == 1
    assert 'an --overwrite run in ' in capsys.readouterr().err
    assert make_coarse.main([root, '--expanded-dir', '', '--seed', '5', '--overwrite']) == 0
    with open(record) as f:
        assert 'overwriting' not in json.load(f)
    assert make_coarse.main([root, '--expanded-dir', '', '--seed', '5']) == 0
    assert '2 already there' in capsys.readouterr().out


def test_make_coarse_reports_bad_files_and_max_side(make_coarse, tmp_path, capsys):
    root = _write_masks(str(tmp_path), n=2)
    with open(osp.join(root, 'masks', 'm1.png'), 'wb') as f:
        f.write(b'not a png')
    with open(osp.join(root, 'split.txt'), 'w') as f:
        f.write('m0\nm1\n')
    assert make_coarse.main([root, '--split', 'split.txt', '--max-side', '40']) == 1
    out = capsys.readouterr()
    assert '1 written' in out.out and '1 failed' in out.out and 'm1' in out.err
    assert _read(osp.join(root, 'coarse', 'm0.png')).shape == (80, 96)
    assert not osp.exists(osp.join(root, 'coarse', 'm1.png'))


@pytest.mark.parametrize('args, message', [
    (['--max-side', '-5'], "argument --max-side: expected 0 (full size) or a side >= 16 px"),
    (['--max-side', '1'], 'argument --max-side: expected 0'),
    (['--iou-target', '0'], "argument --iou-target: expected a number in (0, 1], got '0'"),
    (['--iou-target', '2'], 'argument --iou-target: expected a number in (0, 1]'),
    (['--iou-min', '-0.1'], 'argument --iou-min: expected a number in [0, 1)'),
    (['--iou-target', '0.5', '--iou-min', '0.9'], '--iou-min 0.9 must be below --iou-target 0.5'),
    (['--iou-min', '0.8'], '--iou-min 0.8 must be below --iou-target 0.8'),
    (['--workers', '0'], "argument --workers: expected an integer >= 1, got '0'"),
    (['--seed', '-1'], 'argument --seed: expected an integer >= 0'),
    (['--mode', 'nonsense'], "argument --mode: invalid choice: 'nonsense'"),
    (['--out-dir', 'masks'], '--out-dir masks is also --mask-dir'),
    (['--expanded-dir', 'coarse'], '--expanded-dir coarse is also --out-dir'),
])
def test_make_coarse_refuses_bad_flags_first(make_coarse, tmp_path, capsys, args, message):
    root = _write_masks(str(tmp_path), n=1)
    with pytest.raises(SystemExit) as exc:
        make_coarse.main([root] + args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(root)) == ['masks']


def test_make_coarse_docstring_example_parses(make_coarse):
    line = [s for s in make_coarse.__doc__.splitlines() if 'make_coarse.py' in s][-1]
    args = make_coarse.parse_args(line.split()[2:])
    got = (args.root, args.mask_dir, args.max_side, args.workers)
    assert got == ('data/DIS5K/DIS-TR', 'gt', 1024, 2)


def test_make_coarse_missing_inputs_are_one_line(make_coarse, tmp_path, capsys):
    assert make_coarse.main([str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == \
        f"make_coarse: error: image folder not found: {osp.join(str(tmp_path), 'masks')}"
    root = _write_masks(str(tmp_path / 'r'), n=1)
    assert make_coarse.main([root, '--split', 'nope.txt']) == 1
    assert 'make_coarse: error: split file not found' in capsys.readouterr().err
