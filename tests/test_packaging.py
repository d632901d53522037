"""Packaging as a user gets it: ``python -m build`` (sdist, then a wheel built from the sdist)
carries configs/ and tools/ under ``mmseg_refiner/.mim``, and ``mim train`` runs from the
installed wheel, outside the repository."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections import Counter

import pytest

from conftest import REPO_ROOT, write_mask_folder

IGNORE = shutil.ignore_patterns('.venv', '.git', 'work_dirs', 'build', 'dist', '*.egg-info',
                                '__pycache__', '.mim', 'demo_out', 'outputs', '.pytest_cache')


def _files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
        if '__pycache__' not in d and not f.endswith('.pyc'))


@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    """(sdist, wheel, source copy): built as ``python -m build`` does, without network."""
    src = tmp_path_factory.mktemp('src') / 'repo'
    shutil.copytree(REPO_ROOT, src, ignore=IGNORE)
    out = tmp_path_factory.mktemp('dist')
    proc = subprocess.run(
        [sys.executable, '-m', 'build', '--no-isolation', '--outdir',
         str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sdists = list(out.glob('mmseg_refiner-*.tar.gz'))
    wheels = list(out.glob('mmseg_refiner-*.whl'))
    assert len(sdists) == 1 and len(wheels) == 1, os.listdir(out)
    return sdists[0], wheels[0], src


def test_sdist_carries_configs_and_tools_not_mim(dist):
    sdist, _, src = dist
    with tarfile.open(sdist) as tar:
        names = {n.split('/', 1)[1] for n in tar.getnames() if '/' in n}
    for item in ('configs', 'tools'):
        for rel in _files(osp.join(src, item)):
            assert f'{item}/{rel}' in names, f'{item}/{rel}'
    assert 'MANIFEST.in' in names and 'setup.py' in names
    assert not any('.mim' in n for n in names)


def test_wheel_carries_mim_configs_and_tools(dist):
    _, wheel, src = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    for item in ('configs', 'tools'):
        for rel in _files(osp.join(src, item)):
            assert f'mmseg_refiner/.mim/{item}/{rel}' in names, f'{item}/{rel}'
    assert 'mmseg_refiner/.mim/tools/dist_train.sh' in names


def test_config_names_are_unique_in_the_wheel(dist):
    """mim finds a config by its file name anywhere in the installed package."""
    _, wheel, _ = dist
    names = zipfile.ZipFile(wheel).namelist()
    counts = Counter(osp.basename(n) for n in names if n.startswith('mmseg_refiner/'))
    configs = [n for n in names if n.startswith('mmseg_refiner/.mim/configs/')]
    assert configs
    duplicated = sorted({osp.basename(n) for n in configs if counts[osp.basename(n)] > 1})
    assert not duplicated, f'mim cannot pick among files of the same name: {duplicated}'


def test_wheel_carries_package_data_and_entry_point(dist):
    _, wheel, _ = dist
    zf = zipfile.ZipFile(wheel)
    names = set(zf.namelist())
    assert 'mmseg_refiner/demo/astronaut.png' in names
    assert 'mmseg_refiner/registry.py' in names
    shipped = 'mmseg_refiner/checkpoints/segrefiner_small_people_hair.pth'
    if osp.isfile(osp.join(REPO_ROOT, shipped)):
        assert shipped in names
    entry = next(n for n in names if n.endswith('entry_points.txt'))
    assert 'mmseg-refiner = mmseg_refiner.cli:main' in zf.read(entry).decode()
    assert not any(n.startswith('tests/') for n in names)


def test_editable_install_links_mim_folder():
    """Editable installs get symlinks (never stale copies), as mmdet's setup.py makes."""
    mim = osp.join(REPO_ROOT, 'mmseg_refiner', '.mim')
    if not osp.isdir(mim):
        pytest.skip('not an editable install of this tree')
    for item in ('configs', 'tools'):
        path = osp.join(mim, item)
        assert osp.islink(path) and osp.samefile(path, osp.join(REPO_ROOT, item)), path


@pytest.fixture(scope='module')
def fresh_venv(dist, tmp_path_factory):
    """A new venv with the wheel installed; the stack comes from this interpreter's
    site-packages through a .pth file (no network, no second stack install)."""
    _, wheel, _ = dist
    venv = tmp_path_factory.mktemp('venv') / 'fresh'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(venv)], check=True, timeout=300)
    python = str(venv / 'bin' / 'python')
    site = subprocess.run(
        [python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        capture_output=True, text=True, check=True).stdout.strip()
    with open(osp.join(site, 'stack.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    proc = subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '--target', site,
        str(wheel)
    ], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return python, site


def test_mim_train_from_installed_wheel(fresh_venv, tmp_path):
    python, site = fresh_venv
    data = str(tmp_path / 'data')
    for n, name in enumerate(('people', 'hair')):
        write_mask_folder(osp.join(data, name), 3, seed=n, size=(72, 88), axes=(20, 14),
                          splits=True)
    run_dir = tmp_path / 'elsewhere'  # not the repository: nothing found through the cwd
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(OMP_NUM_THREADS='1', REFINER_DATA_ROOT=data)
    work = str(tmp_path / 'work')
    cmd = [
        python,
        '-m',
        'mim',
        'train',
        'mmseg_refiner',
        'segrefiner_small_folder.py',
        '--work-dir',
        work,
        '--cfg-options',
        'train_cfg.max_iters=2',
        'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'train_dataloader.batch_size=1',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.batch_size=1',
        'val_dataloader.num_workers=0',
        # a tiny U-Net: what is tested is the packaging, not the model
        'model.backbone.model_channels=8',
        'model.backbone.channel_mult=[1,2]',
        'model.backbone.attention_strides=[2]',
        'model.backbone.num_heads=1',
        'model.backbone.norm_num_groups=4'
    ]
    proc = subprocess.run(cmd, cwd=str(run_dir), env=env, capture_output=True, text=True,
                          timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    mim_root = osp.join(site, 'mmseg_refiner', '.mim')
    assert osp.join(mim_root, 'tools', 'train.py') in log, log[-3000:]  # mim's command line
    assert osp.join(mim_root, 'configs') in log
    assert osp.isfile(osp.join(work, 'iter_2.pth')), os.listdir(work)
    assert 'refiner/mBA' in log
