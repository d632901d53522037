"""tools/test.py --refiner on tiny random-init mmdet / mmseg models (subprocess), and the
example configs under configs/refine_with/."""
import glob
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmseg_refiner.apis.builder import DEFAULT_CHECKPOINT

from conftest import REPO_ROOT, TINY_CONFIG
from test_refiner_hook import TINY_MODELS, save_noisy_refiner, write_tiny_data

TEST_SCRIPT = osp.join(REPO_ROOT, 'tools', 'test.py')


def save_random_model(name, path) -> str:
    """Build tests/data/tiny_models/<name>.py's model (random init) and save its weights."""
    cfg = Config.fromfile(osp.join(TINY_MODELS, f'{name}.py'))
    scope = cfg.default_scope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    __import__(f'{scope}.utils', fromlist=['x']).register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    with registry.switch_scope_and_registry(scope) as models:
        model = models.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return str(path)


def run_test_script(config, ckpt, args, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    cmd = [sys.executable, TEST_SCRIPT, config, ckpt, '--work-dir', str(tmp_path / 'work')]
    proc = subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=300,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('tools_test')
    (root / 'data').mkdir()
    return dict(data=write_tiny_data(root / 'data'),
                refiner=save_noisy_refiner(root / 'refiner.pth'), root=root)


def _refiner_args(files):
    return [
        '--refiner', TINY_CONFIG, '--refiner-checkpoint', files['refiner'], '--refiner-mode',
        'instance', '--refiner-steps', '3', '--refiner-seed', '1', '--refiner-stop-thr', '0',
        '--threads', '1'
    ]


def test_tools_test_mmdet_with_refiner(tiny_files, tmp_path):
    name, data = 'mask-rcnn_r18_fpn_64px', tiny_files['data']
    ckpt = save_random_model(name, tmp_path / 'det.pth')
    out = str(tmp_path / 'preds.pkl')
    log = run_test_script(osp.join(TINY_MODELS, f'{name}.py'), ckpt, [
        '--out', out, '--cfg-options', f'test_dataloader.dataset.data_root={data}',
        f'test_evaluator.ann_file={data}/ann.json', 'randomness.seed=0'
    ] + _refiner_args(tiny_files), tmp_path)
    assert 'SegRefinerHook: refined' in log and 'of 2 image(s)' in log
    assert 'coco/segm_mAP' in log
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 2 and all('masks' in p['pred_instances'] for p in preds)


def test_tools_test_mmseg_with_refiner(tiny_files, tmp_path):
    name, data = 'fast-scnn_64px', tiny_files['data']
    ckpt = save_random_model(name, tmp_path / 'seg.pth')
    log = run_test_script(osp.join(TINY_MODELS, f'{name}.py'), ckpt, [
        '--out',
        str(tmp_path / 'pred_png'), '--cfg-options', f'test_dataloader.dataset.data_root={data}',
        '--device', 'cpu'
    ] + _refiner_args(tiny_files), tmp_path)
    assert 'SegRefinerHook: refined 2 prediction(s) of 2 image(s)' in log
    assert 'mIoU' in log
    assert len(glob.glob(str(tmp_path / 'pred_png' / '*.png'))) == 2


def _test_script_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location('refiner_tools_test', TEST_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tools_test_adds_hook_and_import(tmp_path):
    """--refiner appends the hook to cfg.custom_hooks and mmseg_refiner to custom_imports."""
    module = _test_script_module()
    args = module.parse_args([
        osp.join(TINY_MODELS, 'fast-scnn_64px.py'), 'x.pth', '--refiner', TINY_CONFIG,
        '--refiner-checkpoint', DEFAULT_CHECKPOINT, '--refiner-steps', '2'
    ])
    cfg, scope = module.build_cfg(args)
    assert scope == 'mmseg' and cfg.load_from == 'x.pth'
    assert 'mmseg_refiner' in cfg.custom_imports['imports']
    hook = cfg.custom_hooks[-1]
    assert hook['type'] == 'mmseg_refiner.SegRefinerHook'
    assert hook['refine_options'] == dict(mode='auto', steps=2, seed=0)
    assert hook['refiner_config'] == TINY_CONFIG and hook['device'] is None


def test_tools_test_refiner_options_device_and_cfg_options():
    module = _test_script_module()
    args = module.parse_args([
        osp.join(TINY_MODELS, 'fast-scnn_64px.py'), 'x.pth', '--refiner', TINY_CONFIG,
        '--refiner-checkpoint', DEFAULT_CHECKPOINT, '--refiner-preset', 'reference', '--stop-thr',
        '0.1', '--refiner-stop-criterion', 'change', '--refiner-no-guard', '--refiner-device',
        'cpu', '--threads', '1', '--refiner-cfg-options', 'model.test_cfg.hr_size=99',
        '--cfg-options', 'randomness.seed=3', '--refiner-trust-checkpoint'
    ])
    cfg, _ = module.build_cfg(args)
    hook = cfg.custom_hooks[-1]
    assert hook['refine_options'] == dict(mode='auto', seed=0, guard=False, stop_thr=0.1,
                                          stop_criterion='change', preset='reference')
    assert hook['device'] == 'cpu' and hook['trust_checkpoint'] is True
    assert hook['cfg_options'] == {'model.test_cfg.hr_size': 99}
    assert cfg.randomness.seed == 3 and args.threads == 1
    from mmseg_refiner.registry import HOOKS
    built = HOOKS.build(hook)  # the dict builds the hook as written
    assert built.options.preset == 'reference' and built.options.guard is False


@pytest.mark.parametrize('argv,message', [
    (['--refiner-device', 'cuda:99'], "device 'cuda:99' is not available; available here: "),
    (['--threads', '0'], 'expected a number of threads >= 1'),
    (['--refiner-preset', 'paper'], 'preset must be one of'),
    (['--refiner-mode', 'fast'], 'mode must be one of'),
])
def test_tools_test_bad_refiner_flags_exit_with_status_2(argv, message, capsys):
    module = _test_script_module()
    with pytest.raises(SystemExit) as exc:
        module.parse_args(
            [osp.join(TINY_MODELS, 'fast-scnn_64px.py'), 'x.pth', '--refiner', TINY_CONFIG] + argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_tools_test_refiner_without_weights_is_refused():
    module = _test_script_module()
    args = module.parse_args(
        [osp.join(TINY_MODELS, 'fast-scnn_64px.py'), 'x.pth', '--refiner', TINY_CONFIG])
    with pytest.raises(ValueError, match=f'--refiner {TINY_CONFIG} needs --refiner-checkpoint'):
        module.build_cfg(args)


def test_tools_test_device_that_does_not_exist_exits_2(tmp_path):
    config = osp.join(TINY_MODELS, 'fast-scnn_64px.py')
    for device, message in (('cuda:0', 'is not available; available here: cpu'),
                            ('gpu', "unknown device 'gpu'")):
        if device.startswith('cuda') and torch.cuda.is_available():
            continue
        proc = subprocess.run([sys.executable, TEST_SCRIPT, config, 'x.pth', '--device', device],
                              capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert f'tools/test.py: error: --device {device}: ' in proc.stderr
        assert message in proc.stderr


@pytest.mark.parametrize('name,scope', [
    ('mask-rcnn_r50_fpn_1x_coco_segrefiner', 'mmdet'),
    ('mask2former_r50_8xb2-lsj-50e_coco-panoptic_segrefiner', 'mmdet'),
    ('pspnet_r50-d8_4xb2-40k_cityscapes-512x1024_segrefiner', 'mmseg'),
])
def test_example_configs_parse_and_add_only_the_hook(name, scope):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'refine_with', f'{name}.py'))
    assert cfg.default_scope == scope
    assert cfg.custom_imports['imports'] == ['mmseg_refiner']
    (hook, ) = cfg.custom_hooks
    assert hook['type'] == 'mmseg_refiner.SegRefinerHook'
    assert hook['refiner_config'] == 'configs/_base_/models/segrefiner_lr_unet.py'
    assert osp.isfile(osp.join(REPO_ROOT, hook['refiner_config']))
    assert 'model' in cfg and 'test_dataloader' in cfg


def test_dist_test_sh_two_cpu_processes_each_refine_their_share(tiny_files, tmp_path):
    import socket
    name, data = 'fast-scnn_64px', tiny_files['data']
    ckpt = save_random_model(name, tmp_path / 'seg.pth')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', PYTHON=sys.executable,
               PORT=str(port))
    cmd = [
        'bash',
        osp.join(REPO_ROOT, 'tools', 'dist_test.sh'),
        osp.join(TINY_MODELS, f'{name}.py'), ckpt, '2', '--work-dir',
        str(tmp_path / 'w'), '--cfg-options', f'test_dataloader.dataset.data_root={data}',
        'test_dataloader.batch_size=1'
    ] + _refiner_args(tiny_files)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log and 'mIoU' in log
    # rank 0 logs its own share: one of the two images
    assert 'SegRefinerHook: refined 1 prediction(s) of 1 image(s)' in log
