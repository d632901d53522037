import os.path as osp

import mmcv
import numpy as np
import pytest

from mmseg_refiner.cli import main

from conftest import TINY_CONFIG, make_blob_sample


@pytest.fixture
def folders(tmp_path):
    img_dir, mask_dir = tmp_path / 'images', tmp_path / 'masks'
    for i in range(2):
        img, _, coarse = make_blob_sample(seed=i)
        mmcv.imwrite(img, str(img_dir / f's{i}.jpg'))
        mmcv.imwrite(coarse.astype(np.uint8) * 255, str(mask_dir / f's{i}.png'))
    mmcv.imwrite(img, str(img_dir / 'orphan.jpg'))
    return img_dir, mask_dir


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(['--help'])
    assert exc.value.code == 0
    assert 'refine' in capsys.readouterr().out


def test_refine_folders_vis_confidence_and_resume(tmp_path, folders, ckpt, capsys):
    img_dir, mask_dir = folders
    out = tmp_path / 'out'
    args = [
        str(img_dir),
        str(mask_dir), '--out',
        str(out), '--config', TINY_CONFIG, '--checkpoint', ckpt, '--vis', '--confidence',
        '--threads', '1'
    ]
    assert main(['refine'] + args) == 0
    for stem in ('s0', 's1'):
        mask = mmcv.imread(str(out / f'{stem}.png'), flag='unchanged')
        assert mask.shape == (60, 80) and set(np.unique(mask)) <= {0, 255}
        assert osp.isfile(out / f'{stem}_vis.png') and osp.isfile(out / f'{stem}_conf.png')
    assert 'orphan' in capsys.readouterr().err  # unpaired image reported
    stamp = osp.getmtime(out / 's0.png')
    assert main(['refine'] + args) == 0
    assert osp.getmtime(out / 's0.png') == stamp
    assert '2 of 2 already done' in capsys.readouterr().out
    assert not [f for f in out.iterdir() if f.name.startswith('.tmp-')]


def test_refine_single_files_and_errors(tmp_path, folders, ckpt, capsys):
    img_dir, mask_dir = folders
    out = tmp_path / 'single'
    assert main([
        'refine',
        str(img_dir / 's0.jpg'),
        str(mask_dir / 's0.png'), '--out',
        str(out), '--config', TINY_CONFIG, '--checkpoint', ckpt, '--threads', '1'
    ]) == 0
    assert osp.isfile(out / 's0.png')
    assert main(['refine',
                 str(img_dir / 's0.jpg'),
                 str(tmp_path / 'nope.png'), '--out',
                 str(out)]) == 1
    assert 'nope.png' in capsys.readouterr().err
    small = tmp_path / 'small'
    mmcv.imwrite(np.zeros((10, 10), np.uint8), str(small / 's0.png'))
    assert main([
        'refine',
        str(img_dir / 's0.jpg'),
        str(small / 's0.png'), '--out',
        str(tmp_path / 'o2'), '--config', TINY_CONFIG, '--checkpoint', ckpt, '--threads', '1'
    ]) == 1
    assert 'does not match the image size' in capsys.readouterr().err


def test_refine_no_guard_and_stop_thr_reach_the_api(tmp_path, folders, ckpt, monkeypatch, capsys):
    import mmseg_refiner.apis as apis
    img_dir, mask_dir = folders
    seen, real = [], apis.refine_mask

    def spy(*args, **kwargs):
        seen.append((kwargs['options'].guard, kwargs['options'].stop_thr,
                     kwargs['options'].stop_criterion))
        return real(*args, **kwargs)

    monkeypatch.setattr(apis, 'refine_mask', spy)
    common = [
        str(img_dir / 's0.jpg'),
        str(mask_dir / 's0.png'), '--config', TINY_CONFIG, '--checkpoint', ckpt, '--threads', '1'
    ]
    assert main(['refine'] + common + ['--out', str(tmp_path / 'a')]) == 0
    assert main(['refine'] + common + [
        '--out',
        str(tmp_path / 'b'), '--no-guard', '--stop-thr', '0.05', '--stop-criterion', 'change'
    ]) == 0
    # defaults defer to the config's test_cfg
    assert seen == [(None, None, None), (False, 0.05, 'change')]
    for out in ('a', 'b'):
        mask = mmcv.imread(str(tmp_path / out / 's0.png'), flag='unchanged')
        assert mask.shape == (60, 80) and set(np.unique(mask)) <= {0, 255}
    for bad in ('1.5', '-0.1', 'x'):
        with pytest.raises(SystemExit) as exc:
            main(['refine'] + common + ['--out', str(tmp_path / 'c'), '--stop-thr', bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert 'argument --stop-thr' in err and ('share in [0, 1]' in err or
                                                 'expected float' in err)


def test_out_that_holds_the_inputs_is_refused_before_any_work(tmp_path, folders, ckpt, capsys):
    img_dir, mask_dir = folders
    before = (img_dir / 's0.jpg').read_bytes()
    for out in (img_dir, mask_dir):
        for extra in ([], ['--overwrite']):
            assert main([
                'refine',
                str(img_dir),
                str(mask_dir), '--out',
                str(out), '--config', TINY_CONFIG, '--checkpoint', ckpt
            ] + extra) == 1
            err = capsys.readouterr().err
            assert f'--out {out} holds the input file' in err and 'choose another folder' in err
    assert (img_dir / 's0.jpg').read_bytes() == before
    assert sorted(p.name for p in mask_dir.iterdir()) == ['s0.png', 's1.png']
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    assert main(['refine', str(img_dir), str(mask_dir), '--out', str(a_file)]) == 1
    assert f'--out {a_file} is a file, not a folder' in capsys.readouterr().err


def test_folder_inputs_that_cannot_pair_are_named(tmp_path, folders, capsys):
    img_dir, mask_dir = folders
    mmcv.imwrite(np.zeros((60, 80, 3), np.uint8), str(img_dir / 's0.png'))  # next to s0.jpg
    assert main(['refine', str(img_dir), str(mask_dir), '--out', str(tmp_path / 'o')]) == 1
    assert "has two files for the id 's0': s0.jpg and s0.png" in capsys.readouterr().err
    assert main([
        'refine',
        str(tmp_path / 'no.jpg'),
        str(tmp_path / 'no.png'), '--out',
        str(tmp_path / 'o')
    ]) == 1
    assert f'image not found: {tmp_path / "no.jpg"}' in capsys.readouterr().err


def test_options_the_model_cannot_run_are_one_error_not_one_per_file(tmp_path, folders, ckpt,
                                                                     capsys):
    img_dir, mask_dir = folders
    for option, message in ((['--steps', '7'], 'steps must be in [1, 6], got 7'),
                            (['--crop-size', '33'], 'crop_size must be a multiple of 2')):
        assert main([
            'refine',
            str(img_dir),
            str(mask_dir), '--out',
            str(tmp_path / 'o'), '--config', TINY_CONFIG, '--checkpoint', ckpt
        ] + option) == 1
        err = capsys.readouterr().err
        assert err.count(message) == 1, err
    assert not (tmp_path / 'o').exists() or not list((tmp_path / 'o').iterdir())
