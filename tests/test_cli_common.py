"""The arguments every refining subcommand shares (device, threads, cfg-options, the refine
options) and file pairing with --*-pattern."""
import os
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from mmseg_refiner.apis import RefineOptions
from mmseg_refiner.cli import build_parser, main
from mmseg_refiner.cli.common import list_images, pair_files
from mmseg_refiner.utils.io import InputError

from conftest import TINY_CONFIG, make_blob_sample

SUBCOMMANDS = ('refine', 'refine-coco', 'refine-semantic')

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture
def one_pair(tmp_path):
    img, _, coarse = make_blob_sample(seed=0)
    mmcv.imwrite(img, str(tmp_path / 'in' / 's0.jpg'))
    mmcv.imwrite(coarse.astype(np.uint8) * 255, str(tmp_path / 'in' / 's0.png'))
    return str(tmp_path / 'in' / 's0.jpg'), str(tmp_path / 'in' / 's0.png'), coarse


def _positional(name):
    return {
        'refine': ['i.jpg', 'm.png'], 'refine-coco': [
            'r.json', '--ann', 'a.json', '--img-dir', 'd'
        ], 'refine-semantic': ['p', '--img-dir', 'd']
    }[name] + ['--out', 'o']


@pytest.mark.parametrize('name', SUBCOMMANDS)
def test_every_refining_subcommand_has_every_option(name):
    args = build_parser().parse_args([name] + _positional(name) + [
        '--preset', 'reference', '--stop-thr', '0.1', '--stop-criterion', 'change', '--steps', '3',
        '--no-guard', '--autocast', 'fp32', '--batch-size', '2', '--crop-size', '64', '--compile',
        '--mode', 'instance', '--seed', '5', '--device', 'cpu', '--threads', '1', '--cfg-options',
        'model.test_cfg.hr_size=99', 'model.test_cfg.pad=[1,2]', '--trust-checkpoint'
    ])
    assert RefineOptions.from_args(args) == RefineOptions(mode='instance', steps=3, seed=5,
                                                          guard=False, stop_thr=0.1,
                                                          stop_criterion='change', autocast='fp32',
                                                          compile=True, preset='reference',
                                                          batch_size=2, crop_size=64)
    assert args.device == 'cpu' and args.threads == 1 and args.trust_checkpoint
    assert args.cfg_options == {'model.test_cfg.hr_size': 99, 'model.test_cfg.pad': [1, 2]}
    defaults = build_parser().parse_args([name] + _positional(name))
    assert defaults.device == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert defaults.threads is None and defaults.cfg_options is None


@pytest.mark.parametrize('argv,message', [
    (['--device', 'cuda:99'], r"argument --device: device 'cuda:99' is not available; "
     r'available here: cpu'),
    (['--device', 'tpu'], "argument --device: unknown device 'tpu'"),
    (['--threads', '0'], "argument --threads: expected a number of threads >= 1, got '0'"),
    (['--threads', 'two'], 'argument --threads: expected a number of threads'),
    (['--preset', 'paper'], "argument --preset: preset must be one of"),
])
@pytest.mark.parametrize('name', SUBCOMMANDS)
def test_bad_device_threads_and_options_exit_with_status_2(name, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name] + _positional(name) + argv)
    assert exc.value.code == 2
    import re
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_cuda_without_cuda_names_the_available_devices(one_pair, tmp_path, capsys):
    img, mask, _ = one_pair
    with pytest.raises(SystemExit) as exc:
        main(['refine', img, mask, '--out', str(tmp_path / 'o'), '--device', 'cuda'])
    assert exc.value.code == 2
    assert "device 'cuda' is not available; available here: cpu" in capsys.readouterr().err


def test_runtime_arguments_reach_init_refiner(one_pair, tmp_path, monkeypatch):
    import mmseg_refiner.apis as apis
    import mmseg_refiner.utils.hardware as hardware
    img, mask, _ = one_pair
    seen = {}

    def fake_init(config, checkpoint, **kwargs):
        seen.update(kwargs, config=config, checkpoint=checkpoint)
        raise ValueError('stop here')

    monkeypatch.setattr(apis, 'init_refiner', fake_init)
    monkeypatch.setattr(hardware, 'setup_threads', lambda n: seen.setdefault('threads', n))
    assert main([
        'refine', img, mask, '--out',
        str(tmp_path / 'o'), '--config', TINY_CONFIG, '--threads', '64', '--trust-checkpoint',
        '--cfg-options', 'model.test_cfg.steps=2'
    ]) == 1
    assert seen == dict(config=TINY_CONFIG, checkpoint=None,
                        device='cpu' if not torch.cuda.is_available() else 'cuda', threads=64,
                        cfg_options={'model.test_cfg.steps': 2}, trust_checkpoint=True)


def test_too_many_threads_are_clamped(one_pair, tmp_path, ckpt):
    import os
    img, mask, _ = one_pair
    before = torch.get_num_threads()
    try:
        assert main([
            'refine', img, mask, '--out',
            str(tmp_path / 'o'), '--config', TINY_CONFIG, '--checkpoint', ckpt, '--threads', '4096'
        ]) == 0
        assert torch.get_num_threads() <= len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(before)


def test_cfg_options_change_the_refiner(one_pair, tmp_path, ckpt, capsys):
    img, mask, coarse = one_pair
    common = [img, mask, '--config', TINY_CONFIG, '--checkpoint', ckpt, '--threads', '1']
    assert main(['refine'] + common + ['--out', str(tmp_path / 'a')]) == 0
    refined = mmcv.imread(str(tmp_path / 'a' / 's0.png'), flag='unchanged') > 0
    assert not np.array_equal(refined, coarse)
    # every mask is below area_thr now: returned unchanged
    assert main(
        ['refine'] + common +
        ['--out', str(tmp_path / 'b'), '--cfg-options', 'model.test_cfg.area_thr=100000']) == 0
    kept = mmcv.imread(str(tmp_path / 'b' / 's0.png'), flag='unchanged') > 0
    assert np.array_equal(kept, coarse)
    capsys.readouterr()
    assert main(
        ['refine'] + common +
        ['--out', str(tmp_path / 'c'), '--cfg-options', 'model.test_cfg.no_such_key=1']) == 1
    assert 'no_such_key' in capsys.readouterr().err


def _big_folder(root):
    """BIG / DIS naming: <id>_im.jpg, <id>_seg.png, <id>_gt.png in one folder."""
    for i in range(2):
        img, gt, coarse = make_blob_sample(seed=i)
        mmcv.imwrite(img, str(root / f'img{i}_im.jpg'))
        mmcv.imwrite(coarse.astype(np.uint8) * 255, str(root / f'img{i}_seg.png'))
        mmcv.imwrite(gt.astype(np.uint8) * 255, str(root / f'img{i}_gt.png'))
    return str(root)


def test_pair_files_with_patterns(tmp_path):
    folder = _big_folder(tmp_path / 'big')
    assert sorted(list_images(folder, '{id}_gt.png')) == ['img0', 'img1']
    assert sorted(list_images(folder, '{id}_*.png')) == ['img0', 'img1']
    assert len(list_images(folder)) == 6  # no pattern: every image, id = name w/o extension
    pairs, missing = pair_files({'image': folder, 'mask': folder},
                                {'image': '{id}_im.jpg', 'mask': '{id}_seg.png'})
    assert [p['name'] for p in pairs] == ['img0', 'img1']
    assert pairs[0]['mask'] == osp.join(folder, 'img0_seg.png')
    assert missing == {'image': [], 'mask': []}
    with pytest.raises(InputError, match=r"no file in .*big matches --mask-pattern "
                       r"'\{id\}_mask.png'"):
        pair_files({'image': folder, 'mask': folder},
                   {'image': '{id}_im.jpg', 'mask': '{id}_mask.png'})
    with pytest.raises(InputError, match=r'must hold \{id\} exactly once'):
        list_images(folder, 'gt.png')
    one = pair_files(
        {'image': osp.join(folder, 'img1_im.jpg'), 'mask': osp.join(folder, 'img1_seg.png')},
        {'image': '{id}_im.jpg'})
    assert one[0][0]['name'] == 'img1'


def test_refine_and_evaluate_with_big_naming(tmp_path, ckpt, capsys):
    folder = _big_folder(tmp_path / 'big')
    out = tmp_path / 'refined'
    assert main([
        'refine', folder, folder, '--out',
        str(out), '--image-pattern', '{id}_im.jpg', '--mask-pattern', '{id}_seg.png', '--config',
        TINY_CONFIG, '--checkpoint', ckpt, '--threads', '1'
    ]) == 0
    assert sorted(p.name for p in out.iterdir()) == ['img0.png', 'img1.png']
    capsys.readouterr()
    assert main([
        'evaluate', '--gt', folder, '--gt-pattern', '{id}_gt.png', '--pred',
        str(out), '--coarse', folder, '--coarse-pattern', '{id}_seg.png'
    ]) == 0
    assert '2 images' in capsys.readouterr().out
    assert main([
        'refine', folder, folder, '--out',
        str(out), '--image-pattern', '{id}.tif', '--config', TINY_CONFIG, '--checkpoint', ckpt
    ]) == 1
    err = capsys.readouterr().err
    assert f"no file in {folder} matches --image-pattern '{{id}}.tif'" in err
    assert main(['evaluate', '--gt', folder, '--gt-pattern', '{id}_mask.png', '--pred',
                 str(out)]) == 1
    assert "matches --gt-pattern '{id}_mask.png'" in capsys.readouterr().err


_PIN_SCRIPT = '''
import os, sys
from mmseg_refiner.cli.common import pin_run_device
device = pin_run_device('prog', sys.argv[1:])
from mmengine.device import get_device
print(device, repr(os.environ.get('CUDA_VISIBLE_DEVICES')), get_device())
'''


@pytest.mark.parametrize('argv,visible', [(['--device', 'cpu'], "''"),
                                          (['x.py', '--dev=cpu', '--threads', '1'], "''"),
                                          (['--device', 'auto'], 'None'), ([], 'None')])
def test_run_device_is_pinned_before_mmengine_picks_one(argv, visible):
    """A fresh interpreter: --device (abbreviated too) reaches CUDA_VISIBLE_DEVICES before
    mmengine.device is imported, and mmengine then agrees."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != 'CUDA_VISIBLE_DEVICES'}
    proc = subprocess.run([sys.executable, '-c', _PIN_SCRIPT] + argv, capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    device, shown, mmengine_device = proc.stdout.split()
    assert shown == visible
    if visible == "''" or not torch.cuda.is_available():
        assert device == mmengine_device == 'cpu'


@pytest.mark.parametrize('argv,message', [
    (['--device', 'tpu'], "prog: error: --device tpu: unknown device 'tpu'"),
    (['--launcher', 'pytorch', '--device', 'cuda:0'
      ], 'gives each process the GPU of its LOCAL_RANK'),
])
def test_run_device_errors_exit_with_status_2(argv, message, capsys):
    from mmseg_refiner.cli.common import pin_run_device
    with pytest.raises(SystemExit) as exc:
        pin_run_device('prog', argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err
