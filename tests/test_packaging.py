"""The wheel carries configs/ and tools/ under mmseg_refiner/.mim (how mim finds them), the
demo example, and the console script."""
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO_ROOT

IGNORE = shutil.ignore_patterns('.venv', '.git', 'work_dirs', 'build', 'dist', '*.egg-info',
                                '__pycache__', '.mim', 'demo_out', 'outputs')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp('src') / 'repo'
    shutil.copytree(REPO_ROOT, src, ignore=IGNORE)
    out = tmp_path_factory.mktemp('dist')
    proc = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                           '--no-build-isolation', '-w', str(out), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wheels = list(out.glob('mmseg_refiner-*.whl'))
    assert len(wheels) == 1
    return zipfile.ZipFile(wheels[0])


def test_wheel_carries_mim_configs_and_tools(wheel):
    names = set(wheel.namelist())
    for path in ('configs/segrefiner/segrefiner_lr.py', 'configs/segrefiner/segrefiner_hr.py',
                 'configs/segrefiner/segrefiner_small_folder.py',
                 'configs/_base_/models/segrefiner_lr.py', 'tools/train.py', 'tools/test.py',
                 'tools/dist_train.sh', 'tools/dist_test.sh'):
        assert f'mmseg_refiner/.mim/{path}' in names, path


def test_wheel_carries_package_data_and_entry_point(wheel):
    names = set(wheel.namelist())
    assert 'mmseg_refiner/demo/astronaut.png' in names
    assert 'mmseg_refiner/registry.py' in names
    shipped = 'mmseg_refiner/checkpoints/segrefiner_small_people_hair.pth'
    if osp.isfile(osp.join(REPO_ROOT, shipped)):
        assert shipped in names
    entry = next(n for n in names if n.endswith('entry_points.txt'))
    assert 'mmseg-refiner = mmseg_refiner.cli:main' in wheel.read(entry).decode()
    assert not any(n.startswith('tests/') for n in names)
