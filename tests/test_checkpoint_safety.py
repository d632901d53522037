"""Checkpoints load weights-only: a file that would run code is refused (and runs none), the
host's mmengine CheckpointLoader is untouched, and the plugin's own training still resumes."""
import os
import os.path as osp
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from mmseg_refiner.apis import init_refiner
from mmseg_refiner.utils.checkpoint import (UnsafeCheckpointError, load_checkpoint,
                                            mmengine_safe_globals)

from conftest import REPO_ROOT, TINY_CONFIG, run_python, write_mask_folder

TRAIN = osp.join(REPO_ROOT, 'tools', 'train.py')
TINY_TRAIN_CFG = osp.join(REPO_ROOT, 'tests', 'data', 'segrefiner_tiny_folder.py')


class _MkdirOnLoad:
    """Unpickling this calls ``os.mkdir(marker)``: a stand-in for any code a file can run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


class _ExecOnLoad(_MkdirOnLoad):
    """The same through ``builtins.exec`` (a global torch does not block by module)."""

    def __reduce__(self):
        return exec, (f'import os; os.mkdir({self.marker!r})', )


class _GetattrOnLoad:
    """``getattr(numpy.ndarray, 'tofile')``: reaches a file-writing method of an allowed type."""

    def __reduce__(self):
        return getattr, (np.ndarray, 'tofile')


def _refiner():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.manual_seed(0)
        return init_refiner(TINY_CONFIG)


@pytest.mark.parametrize('payload,name', [(_MkdirOnLoad, 'posix.mkdir'),
                                          (_ExecOnLoad, 'builtins.exec')])
def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path, payload, name):
    """A checkpoint whose pickle creates a directory on load: refused with the file, the global
    and the opt-in named, and the directory is not created; ``trust_checkpoint=True`` loads it
    (and the code runs, which is what trusting means)."""
    refiner = _refiner()
    marker = str(tmp_path / 'code_ran')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': refiner.state_dict(), 'meta': {'note': payload(marker)}}, path)
    if name == 'posix.mkdir' and os.name != 'posix':
        name = 'mkdir'
    for load in (lambda: init_refiner(TINY_CONFIG, path), lambda: load_checkpoint(path)):
        with pytest.raises(UnsafeCheckpointError) as info:
            load()
        message = str(info.value)
        for part in ('evil.pth', name, 'trust_checkpoint=True', '--trust-checkpoint'):
            assert part in message, (part, message)
        assert not osp.exists(marker)
    trusted = init_refiner(TINY_CONFIG, path, trust_checkpoint=True)
    assert osp.isdir(marker)
    for key, value in refiner.state_dict().items():
        assert torch.equal(trusted.state_dict()[key], value), key


def test_allow_list_getattr_reaches_only_history_buffer_methods(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'state_dict': {}, 'x': _GetattrOnLoad()}, path)
    with pytest.raises(UnsafeCheckpointError, match='builtins.getattr'):
        load_checkpoint(path)


def _mmengine_style_checkpoint(path, refiner):
    """What mmengine's CheckpointHook writes: message hub with HistoryBuffers, numpy values."""
    from mmengine.logging import MessageHub
    hub = MessageHub('test_checkpoint_safety')
    for value in (0.5, 0.25):
        hub.update_scalar('train/loss', value)
    hub.update_info('eta', np.float64(3.0))
    hub.update_info('best_score', np.float32(0.75))
    torch.save(
        {
            'meta': {'iter': 2, 'seed': np.int64(0), 'dataset_meta': {'classes': ('fg', )}
                     }, 'state_dict': refiner.state_dict(), 'message_hub': hub.state_dict(),
            'optimizer': {'state': {}, 'param_groups': [{'lr': 4e-4, 'params': [0]}]}
        }, path)


def test_mmengine_checkpoint_loads_weights_only(tmp_path):
    refiner = _refiner()
    path = str(tmp_path / 'iter_2.pth')
    _mmengine_style_checkpoint(path, refiner)
    before = set(torch.serialization.get_safe_globals())
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path, map_location='cpu')  # torch's default: the allow-list is needed
    ckpt = load_checkpoint(path)
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(0.375)
    assert ckpt['message_hub']['runtime_info']['eta'] == 3.0
    assert set(torch.serialization.get_safe_globals()) == before  # for the call only
    loaded = init_refiner(TINY_CONFIG, path)
    for key, value in refiner.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_safe_globals_context_keeps_what_the_caller_allowed():
    from mmengine.logging import HistoryBuffer
    torch.serialization.add_safe_globals([HistoryBuffer])
    try:
        with mmengine_safe_globals():
            pass
        assert HistoryBuffer in torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()


def test_plugin_import_leaves_host_checkpoint_loading_alone(tmp_path):
    """After custom_imports of the plugin (and using it), mmengine's loader is the same
    function object and torch's allow-list is unchanged: the host's checkpoints load as
    they would without the plugin."""
    cfg = tmp_path / 'host_config.py'
    cfg.write_text("custom_imports = dict(imports=['mmseg_refiner'], "
                   "allow_failed_imports=False)\n")
    out = run_python(f'''
import pkgutil, warnings, torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
schemes = dict(CheckpointLoader._schemes)
safe = set(torch.serialization.get_safe_globals())
Config.fromfile({str(cfg)!r})
import mmseg_refiner
from mmseg_refiner.apis import init_refiner
for info in pkgutil.walk_packages(mmseg_refiner.__path__, 'mmseg_refiner.'):
    if not info.name.startswith('mmseg_refiner.cli'):
        __import__(info.name)
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    init_refiner({TINY_CONFIG!r})
assert CheckpointLoader._schemes[''] is load_from_local
assert dict(CheckpointLoader._schemes) == schemes
assert all(CheckpointLoader._schemes[k] is v for k, v in schemes.items())
assert set(torch.serialization.get_safe_globals()) == safe
print('host untouched')
''')
    assert 'host untouched' in out


def _train(data_root, work_dir, *extra):
    env = dict(os.environ, REFINER_DATA_ROOT=data_root, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, TRAIN, TINY_TRAIN_CFG, '--work-dir', work_dir, *extra],
                          env=env, capture_output=True, text=True, timeout=300)


def test_own_training_resumes_weights_only_and_refuses_malicious_load_from(tmp_path):
    """tools/train.py on torch >= 2.6: resume from its own mmengine checkpoint works without
    full unpickling; a load_from file that would run code is refused before it runs."""
    data = str(tmp_path / 'data')
    write_mask_folder(osp.join(data, 'train'), 4, seed=0, axes=(12, 8))
    write_mask_folder(osp.join(data, 'val'), 2, seed=1, axes=(12, 8))
    work = str(tmp_path / 'work')
    first = _train(data, work, '--cfg-options', 'train_cfg.val_interval=100')
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = _train(data, work, '--resume', '--cfg-options', 'train_cfg.max_iters=3',
                     'train_cfg.val_interval=100')
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert 'resumed epoch: 0, iter: 2' in log and osp.isfile(osp.join(work, 'iter_3.pth'))
    assert 'FileClient' not in log  # the stack's known notices are filtered in our tools

    marker = str(tmp_path / 'code_ran')
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'note': _MkdirOnLoad(marker)}}, evil)
    refused = _train(data, str(tmp_path / 'work2'), '--cfg-options', f'load_from={evil}')
    assert refused.returncode != 0
    assert '--trust-checkpoint' in refused.stderr and 'mkdir' in refused.stderr, \
        refused.stderr[-3000:]
    assert not osp.exists(marker)
