"""End-to-end training through tools/train.py (subprocesses): checkpoint, DDP, resume, AMP."""
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import write_mask_folder

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(REPO, 'tools', 'train.py')
TINY_CFG = osp.join(REPO, 'tests', 'data', 'segrefiner_tiny_folder.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('refiner_data'))
    write_mask_folder(osp.join(root, 'train'), 6, seed=0)
    write_mask_folder(osp.join(root, 'val'), 2, seed=1)
    return root


def _env(data_root):
    env = dict(os.environ, REFINER_DATA_ROOT=data_root, OMP_NUM_THREADS='1',
               PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return env


def _train(data_root, work_dir, *extra, timeout=300):
    cmd = [sys.executable, TRAIN, TINY_CFG, '--work-dir', work_dir, *extra]
    proc = subprocess.run(cmd, env=_env(data_root), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _ckpt_iter(path):
    return torch.load(path, map_location='cpu', weights_only=False)['meta']['iter']


def test_train_two_iterations_checkpoint_loads(data_root, tmp_path):
    work = str(tmp_path / 'work')
    log = _train(data_root, work)
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt), os.listdir(work)
    assert 'refiner/mBA' in log and 'loss_texture' in log
    assert [f for f in os.listdir(work) if f.startswith('best_refiner_mBA')]
    from mmseg_refiner.apis import init_refiner
    model = init_refiner(TINY_CFG, ckpt)
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value.cpu(), state[key]), key


def test_train_amp_bf16_on_cpu(data_root, tmp_path):
    work = str(tmp_path / 'amp')
    log = _train(data_root, work, '--amp', '--device', 'cpu', '--threads', '1', '--cfg-options',
                 'train_cfg.max_iters=1', 'train_cfg.val_interval=10')
    assert 'threads: 1 (torch; ' in log
    if not torch.cuda.is_available():
        assert 'AutocastOptimWrapper' in open(
            [osp.join(work, f) for f in os.listdir(work) if f.endswith('.py')][0]).read()
    assert osp.isfile(osp.join(work, 'iter_1.pth')), log[-2000:]


def test_train_device_that_does_not_exist_exits_2(data_root, tmp_path):
    for device, message in (('cuda:0', 'is not available; available here: cpu'),
                            ('tpu', "unknown device 'tpu'")):
        if device.startswith('cuda') and torch.cuda.is_available():
            continue
        proc = subprocess.run(
            [sys.executable, TRAIN, TINY_CFG, '--work-dir',
             str(tmp_path), '--device', device], env=_env(data_root), capture_output=True,
            text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert 'tools/train.py: error: ' in proc.stderr and message in proc.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_cpu_ddp(data_root, tmp_path):
    work = str(tmp_path / 'ddp')
    env = dict(_env(data_root), PYTHON=sys.executable, PORT=str(_free_port()))
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), TINY_CFG, '2', '--work-dir', work]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth')), os.listdir(work)
    assert 'Distributed launcher: pytorch' in out and 'GPU number: 2' in out, out[-3000:]
    # Both ranks end with the same weights (DDP synchronised the gradients).
    state = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu',
                       weights_only=False)['state_dict']
    assert not any(k.startswith('module.') for k in state)


def _wait_for_checkpoint(proc, work, timeout=240):
    last = osp.join(work, 'last_checkpoint')
    start = time.time()
    while time.time() - start < timeout:
        if osp.isfile(last) and open(last).read().strip():
            return
        if proc.poll() is not None:
            raise AssertionError(f'training ended before a checkpoint: {proc.stdout.read()}')
        time.sleep(0.2)
    raise AssertionError('no checkpoint within the timeout')


def test_killed_run_resumes_to_max_iters(data_root, tmp_path):
    work = str(tmp_path / 'resume')
    cmd = [
        sys.executable, TRAIN, TINY_CFG, '--work-dir', work, '--cfg-options',
        'train_cfg.max_iters=100000', 'train_cfg.val_interval=100000'
    ]
    proc = subprocess.Popen(cmd, env=_env(data_root), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for_checkpoint(proc, work)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    done = _ckpt_iter(open(osp.join(work, 'last_checkpoint')).read().strip())
    assert done >= 1
    target = done + 2
    log = _train(data_root, work, '--resume', '--cfg-options', f'train_cfg.max_iters={target}',
                 'train_cfg.val_interval=100000')
    assert f'resumed epoch: 0, iter: {done}' in log, log[-3000:]
    final = osp.join(work, f'iter_{target}.pth')
    assert osp.isfile(final) and _ckpt_iter(final) == target
    assert not osp.exists(osp.join(work, f'iter_{target + 1}.pth'))


@pytest.mark.parametrize('name,max_iters,milestones',
                         [('segrefiner_lr.py', 120000, [80000, 100000]),
                          ('segrefiner_hr.py', 40000, [20000, 35000]),
                          ('segrefiner_small_folder.py', None, None)])
def test_recipe_configs(name, max_iters, milestones):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'segrefiner', name))
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.optim_wrapper.optimizer.lr == 4e-4
    assert cfg.optim_wrapper.optimizer.weight_decay == 0
    assert cfg.default_hooks.checkpoint.save_best == 'refiner/mBA'
    assert cfg.model.type == 'DiffusionRefiner'
    if max_iters is not None:
        assert cfg.train_cfg.max_iters == max_iters
        assert cfg.param_scheduler[0].milestones == milestones
        assert cfg.model.backbone.model_channels == 128
    else:
        assert cfg.model.backbone.model_channels == 32
        assert cfg.train_dataloader.batch_size == 8


def test_lr_config_builds_full_size_model():
    from mmseg_refiner.apis import init_refiner
    with pytest.warns(UserWarning, match='random weights'):
        model = init_refiner(osp.join(REPO, 'configs', 'segrefiner', 'segrefiner_lr.py'))
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - 118.6) < 0.1


# --- the campaign and GPU configs (generated data folders; the real sets are not needed) ---

CAMPAIGN_CFG = osp.join(REPO, 'configs', 'segrefiner', 'segrefiner_small_campaign.py')
SHIPPED = osp.join(REPO, 'mmseg_refiner', 'checkpoints', 'segrefiner_small_people_hair.pth')
TINY_UNET = osp.join(REPO, 'configs', '_base_', 'models', 'segrefiner_tiny_unet.py')


def _tiny_model_options():
    """--cfg-options that turn a config's model into the one tiny definition (TINY_UNET)."""
    from mmengine.config import Config
    model = Config.fromfile(TINY_UNET).model
    options = [
        f'model.backbone.{k}={list(v) if isinstance(v, tuple) else v}'.replace(' ', '')
        for k, v in model.backbone.items() if k != 'type'
    ]
    return options + [
        f'model.test_cfg.{k}={v}'
        for k, v in model.test_cfg.items() if k in ('crop_size', 'batch_size')
    ]


# In-process data loading, and no validation (mmengine validates after the last iteration).
IN_PROCESS_LOADER = [
    'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
    'train_cfg.val_begin=1000000'
]


@pytest.fixture(scope='module')
def people_hair_root(tmp_path_factory):
    """``people/`` and ``hair/`` folders with train/val splits, laid out as the research data
    folder; generated here, nothing outside tmp_path is read."""
    root = str(tmp_path_factory.mktemp('people_hair'))
    for n, name in enumerate(('people', 'hair')):
        write_mask_folder(osp.join(root, name), 4, seed=10 + n)
        for split, ids in (('train.txt', '0\n1\n2\n'), ('val.txt', '3\n')):
            with open(osp.join(root, name, split), 'w') as f:
                f.write(ids)
    return root


def _run(cmd, data_root, timeout=300, **env):
    """Run ``cmd`` in its own process group; on a timeout the whole group is killed."""
    proc = subprocess.Popen(cmd, env=dict(_env(data_root), **env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f'timed out after {timeout} s: {out[-3000:]}')
    assert proc.returncode == 0, out[-4000:]
    return out


def test_campaign_config_warm_starts_from_shipped_weights(people_hair_root, tmp_path):
    """Two iterations of the campaign recipe (shipped architecture) from the fp16 export."""
    work = str(tmp_path / 'campaign')
    log = _run([
        sys.executable, TRAIN, CAMPAIGN_CFG, '--work-dir', work, '--cfg-options',
        f'load_from={SHIPPED}', 'train_cfg.max_iters=2', 'train_dataloader.batch_size=2',
        *IN_PROCESS_LOADER
    ], people_hair_root)
    assert 'Load checkpoint from' in log and osp.isfile(osp.join(work, 'iter_2.pth')), log[-3000:]
    ckpt = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu', weights_only=False)
    assert 'ema_state_dict' in ckpt  # EMAHook: state_dict holds the averaged weights
    assert ckpt['meta']['iter'] == 2


def _campaign_then_resume(work, root, first_iters, total_iters, options) -> str:
    """Train the campaign config for ``first_iters``, resume it to ``total_iters`` in a new
    process (same ``--cfg-options``); return the resumed run's log."""
    _run([
        sys.executable, TRAIN, CAMPAIGN_CFG, '--work-dir', work, '--cfg-options',
        f'train_cfg.max_iters={first_iters}', *options
    ], root)
    return _run([
        sys.executable, TRAIN, CAMPAIGN_CFG, '--work-dir', work, '--resume', '--cfg-options',
        f'train_cfg.max_iters={total_iters}', *options
    ], root)


def test_campaign_resume_reseeds_the_data(people_hair_root, tmp_path):
    work = str(tmp_path / 'resume')
    common = ['train_dataloader.batch_size=2', *_tiny_model_options(), *IN_PROCESS_LOADER]
    log = _campaign_then_resume(work, people_hair_root, 1, 2, common)
    assert 'resumed at iteration 1: data re-seeded' in log, log[-3000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))


def test_campaign_resume_with_worker_processes(people_hair_root, tmp_path):
    """The campaign's own loader (2 persistent workers, InfiniteSampler): a resumed run
    restarts the workers and keeps drawing data past the batches they had prefetched (the
    sampler's shared index generator was once closed with the old workers: the stage-3b run
    stopped 4 batches after its resume at iteration 1650)."""
    work = str(tmp_path / 'resume_workers')
    common = [
        'train_dataloader.batch_size=2', *_tiny_model_options(), 'train_cfg.val_begin=1000000',
        'train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True'
    ]
    log = _campaign_then_resume(work, people_hair_root, 2, 12, common)
    assert 'resumed at iteration 2: data re-seeded' in log, log[-3000:]
    assert 'Reach the end of the dataloader' not in log, log[-3000:]
    assert osp.isfile(osp.join(work, 'iter_12.pth')), log[-3000:]


def test_gpu_train_script_on_cpu(people_hair_root, tmp_path):
    """tools/gpu_train.sh end to end, shrunk to 2 iterations of a tiny model on CPU."""
    out, work = str(tmp_path / 'out'), str(tmp_path / 'work')
    # 64 px crops: the tiny U-Net's attention at stride 2 is quadratic in the crop's pixels.
    crops = [
        f'train_dataloader.dataset.datasets.{i}.pipeline.{int(i < 2)}.size=64' for i in range(4)
    ]
    log = _run([
        'bash',
        osp.join(REPO, 'tools', 'gpu_train.sh'), '--cfg-options', 'train_cfg.max_iters=2',
        'train_dataloader.batch_size=2', *crops, *_tiny_model_options(), *IN_PROCESS_LOADER
    ], people_hair_root, OUT=out, WORK_DIR=work, PYTHON=sys.executable,
               REFINER_DATA_ROOT=people_hair_root)
    assert 'TimeBudgetHook' in open(osp.join(work, 'segrefiner_base_gpu.py')).read()
    exported = osp.join(out, 'segrefiner_base_gpu.pth')
    assert osp.isfile(exported) and osp.isfile(osp.join(out, 'train.log')), log[-3000:]
    from mmseg_refiner.apis import init_refiner
    model = init_refiner(checkpoint=exported)
    assert model.backbone.model_channels == 8


def test_campaign_anneal_config_decays_the_learning_rate():
    """Stage 3c: the campaign's data and model, a 50-iteration warm-up to 3e-4, then a cosine
    decay to 1 % of it at the last iteration, and a shorter EMA horizon."""
    from mmengine.config import Config
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'segrefiner', 'segrefiner_small_campaign_anneal.py'))
    base = Config.fromfile(CAMPAIGN_CFG)
    assert cfg.train_dataloader.dataset == base.train_dataloader.dataset
    assert cfg.model == base.model
    assert cfg.custom_hooks[0].type == 'EMAHook' and cfg.custom_hooks[0].momentum == 0.003
    max_iters = cfg.train_cfg.max_iters
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))],
                                  lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer)) for s in cfg.param_scheduler
    ]
    lrs = []
    for _ in range(max_iters):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        for s in schedulers:
            s.step()
    assert lrs[0] == pytest.approx(3e-5) and lrs[50] == pytest.approx(3e-4)
    assert all(a >= b for a, b in zip(lrs[50:], lrs[51:]))  # decays after the warm-up
    assert lrs[-1] == pytest.approx(3e-6, rel=0.05)


def test_campaign_fixres_config_crops_objects_at_the_inference_size():
    """Stage 3d: stage 3c's datasets and pipelines with one change, objects cropped at the
    inference crop size (384) instead of 256, and a lower peak rate (1e-4, decayed to 1 %)."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'segrefiner', 'segrefiner_small_campaign_fixres.py'))
    anneal = Config.fromfile(
        osp.join(REPO, 'configs', 'segrefiner', 'segrefiner_small_campaign_anneal.py'))
    assert cfg.model == anneal.model and cfg.model.test_cfg.crop_size == 384
    datasets = cfg.train_dataloader.dataset.datasets
    expected = anneal.train_dataloader.dataset.datasets
    assert len(datasets) == len(expected) == 4
    for got, want in zip(datasets, expected):
        crops = [t for t in got.pipeline if t.type == 'CropAroundObject']
        assert len(crops) == 1 and crops[0].size == 384
        want = want.to_dict() if hasattr(want, 'to_dict') else want
        for t in want['pipeline']:
            if t['type'] == 'CropAroundObject':
                assert t['size'] == 256
                t['size'] = 384
        assert got.to_dict() == want, got.type
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.param_scheduler[-1].eta_min == pytest.approx(1e-6)
    assert cfg.train_cfg.max_iters == 1200 and cfg.custom_hooks == anneal.custom_hooks


def test_campaign_mixres_config_takes_both_crop_sizes():
    """Stage 3e: every data part of stage 3d twice, once with 384 px and once with 256 px
    object crops (so half the samples at each size); everything else as stage 3d."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'segrefiner', 'segrefiner_small_campaign_mixres.py'))
    fixres = Config.fromfile(
        osp.join(REPO, 'configs', 'segrefiner', 'segrefiner_small_campaign_fixres.py'))
    anneal = Config.fromfile(
        osp.join(REPO, 'configs', 'segrefiner', 'segrefiner_small_campaign_anneal.py'))
    datasets = [d.to_dict() for d in cfg.train_dataloader.dataset.datasets]
    assert datasets[:4] == [d.to_dict() for d in fixres.train_dataloader.dataset.datasets]
    assert datasets[4:] == [d.to_dict() for d in anneal.train_dataloader.dataset.datasets]
    for key in ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'custom_hooks'):
        assert cfg[key] == fixres[key], key
