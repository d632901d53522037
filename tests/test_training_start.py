"""Checks that run before work starts: training checkpoints (``load_from`` / ``--resume``),
config overrides, refiner configs and weights, and atomic checkpoint writes."""
import os.path as osp
import subprocess
import sys
import warnings

import pytest
import torch
from mmengine.config import Config

from mmseg_refiner.apis import init_refiner
from mmseg_refiner.utils.checkpoint import check_training_start
from mmseg_refiner.utils.config import check_option_keys, runner_keys

from conftest import REPO_ROOT, TINY_CONFIG

TINY_MODELS = osp.join(REPO_ROOT, 'tests', 'data', 'tiny_models')


def _refiner(config=TINY_CONFIG):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.manual_seed(0)
        return init_refiner(config, device='cpu')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('start')
    model = _refiner()
    state = model.state_dict()
    paths = dict(weights=root / 'weights.pth', training=root / 'iter_2.pth',
                 other=root / 'other.pth', wide=root / 'wide.pth',
                 truncated=root / 'truncated.pth', text=root / 'text.pth',
                 empty=root / 'empty.pth', nan=root / 'nan.pth')
    torch.save({'state_dict': state, 'meta': {}}, paths['weights'])
    torch.save({'state_dict': state, 'meta': {'iter': 2, 'epoch': 0}, 'optimizer': {}},
               paths['training'])
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(3)}}, paths['other'])
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.merge_from_dict({'model.backbone.model_channels': 16})
    torch.save({'state_dict': _refiner(cfg).state_dict()}, paths['wide'])
    paths['truncated'].write_bytes(paths['weights'].read_bytes()[:300])
    paths['text'].write_text('not a checkpoint')
    paths['empty'].write_bytes(b'')
    torch.save(
        {
            'state_dict':
            {k: v * float('nan') if v.is_floating_point() else v
             for k, v in state.items()}
        }, paths['nan'])
    return model, {k: str(v) for k, v in paths.items()}


@pytest.mark.parametrize('name,resume,message', [
    ('truncated', False, 'not a readable checkpoint: truncated, or not a file that torch.save'),
    ('text', True, 'not a readable checkpoint'),
    ('empty', False, 'not a readable checkpoint'),
    ('weights', True, 'not a training checkpoint (no optimizer state or iteration'),
    ('other', False, 'none of its 1 tensors belongs to this model'),
    ('wide', False, 'do not fit this model (size mismatch for'),
])
def test_bad_start_checkpoints_are_named_before_training(files, name, resume, message):
    model, paths = files
    with pytest.raises(ValueError) as exc:
        check_training_start(model, paths[name], resume, '/nonexistent')
    text = str(exc.value)
    assert text.startswith(('--resume ' if resume else 'load_from ') + paths[name])
    assert message in text


def test_good_start_checkpoints_pass(files, tmp_path):
    model, paths = files
    check_training_start(model, paths['weights'], False, str(tmp_path))
    check_training_start(model, paths['training'], True, str(tmp_path))
    check_training_start(model, None, True, str(tmp_path))  # --resume, empty work dir: fresh
    check_training_start(model, None, False, str(tmp_path))


def test_refiner_config_and_weights_are_checked(files, tmp_path):
    _, paths = files
    with pytest.raises(ValueError, match=r'mask-rcnn_r18_fpn_64px.py builds a MaskRCNN, not a '
                       'refiner'):
        init_refiner(osp.join(TINY_MODELS, 'mask-rcnn_r18_fpn_64px.py'), device='cpu')
    with pytest.raises(ValueError, match=r'has NaN or infinite values in \d+ tensor'):
        init_refiner(TINY_CONFIG, paths['nan'], device='cpu')
    with pytest.raises(KeyError, match=r"the config has no 'modle' \(did you mean model\?\)"):
        init_refiner(TINY_CONFIG, paths['weights'], device='cpu',
                     cfg_options={'modle.test_cfg.steps': 3})


def test_check_option_keys():
    cfg = Config(dict(train_cfg=dict(max_iters=2), model=dict(type='X')))
    check_option_keys(cfg, {'train_cfg.max_iters': 1, 'model.type': 'Y'})
    check_option_keys(cfg, {'randomness.seed': 1}, known=runner_keys())
    with pytest.raises(
            KeyError, match=r"--cfg-options trian_cfg.max_iters: the config has no "
            r"'trian_cfg' \(did you mean train_cfg"):
        check_option_keys(cfg, {'trian_cfg.max_iters': 1}, known=runner_keys())


def test_atomic_local_backend_keeps_the_old_file_when_a_write_fails(tmp_path):
    from mmengine.fileio import get_file_backend

    import mmseg_refiner.engine  # noqa: F401  (registers 'atomic_local', as the configs' imports)
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend='atomic_local'))
    target = tmp_path / 'sub' / 'iter_1.pth'
    backend.put(b'old', str(target))
    with pytest.raises(TypeError):
        backend.put('not bytes', str(target))  # fails while writing
    assert target.read_bytes() == b'old'
    backend.put_text('iter_1.pth', str(tmp_path / 'last_checkpoint'))
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_1.pth'
    assert sorted(p.name for p in (tmp_path / 'sub').iterdir()) == ['iter_1.pth']


def test_train_script_refuses_bad_configs_before_the_runner(tmp_path):
    train = osp.join(REPO_ROOT, 'tools', 'train.py')
    tiny_train = osp.join(REPO_ROOT, 'tests', 'data', 'segrefiner_tiny_folder.py')
    for argv, message in (
        ([tiny_train, '--cfg-options', 'trian_cfg.max_iters=1'],
         "--cfg-options trian_cfg.max_iters: the config has no 'trian_cfg'"),
        ([TINY_CONFIG], 'has no train_dataloader: give a training config'),
    ):
        proc = subprocess.run([sys.executable, train] + argv +
                              ['--work-dir', str(tmp_path / 'w')], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert 'tools/train.py: error: ' in proc.stderr and message in proc.stderr
        assert not (tmp_path / 'w').exists()  # refused before the Runner made its work dir
