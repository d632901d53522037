"""Train a refiner with mmengine's Runner (single process, DDP via torchrun, or slurm).

Examples::

    python tools/train.py configs/segrefiner/segrefiner_small_folder.py --amp
    python tools/train.py CONFIG --resume                # newest checkpoint in the work dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_2000.pth
    bash tools/dist_train.sh CONFIG 2 --amp               # 2 processes (gloo on CPU)
    mim train mmseg_refiner CONFIG --amp                  # from an installed package

Checkpoints (``load_from``, ``--resume``) load weights-only with the types mmengine checkpoints
contain allow-listed (:func:`mmseg_refiner.utils.checkpoint.mmengine_safe_globals`), in this
process only; ``--trust-checkpoint`` unpickles them fully.
"""
import argparse
import os
import os.path as osp
import pickle
import sys

# isort: off
from mmseg_refiner.utils.hardware import prepare_process

prepare_process()  # before torch loads: OpenMP waiting, malloc (utils/hardware.py)
from mmengine.config import Config, DictAction  # loads neither torch nor mmengine's device

from mmseg_refiner.cli.common import RUN_DEVICE_HELP, error_text, pin_run_device  # nor these

# isort: on
# torch, mmengine's Runner and what needs them load in main(), after --device is pinned:
# mmengine picks its device once, when mmengine.device is imported.


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a SegRefiner model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or (no value) from the newest checkpoint '
        'in the work dir')
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed precision: AmpOptimWrapper (float16) on CUDA, bfloat16 autocast on CPU')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'train_dataloader.dataset.datasets.0.data_root=/data/people)')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='unpickle load_from / resume checkpoints fully (can run code from the file: only '
        'for files you trust); default: weights only plus the types mmengine checkpoints hold')
    parser.add_argument('--device', default='auto', help=RUN_DEVICE_HELP)
    parser.add_argument(
        '--threads', type=int, default=None, metavar='N',
        help='torch threads of this process (default: OMP_NUM_THREADS, else torch\'s: the '
        'cores); data-loader workers use one each, OpenCV follows env_cfg.mp_cfg')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed.launch passes --local-rank (older: --local_rank).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mixed precision for the available device."""
    import torch
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        return
    if wrapper != 'OptimWrapper':
        raise ValueError(f'--amp works with optim_wrapper type OptimWrapper, got {wrapper}')
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'


def build_cfg(args) -> Config:
    """Config from file + command line (work dir, resume, amp, launcher)."""
    from mmseg_refiner.utils.config import check_option_keys, runner_keys
    cfg = Config.fromfile(args.config)
    if 'train_dataloader' not in cfg:
        raise ValueError(f'{args.config} has no train_dataloader: give a training config (e.g. '
                         'configs/segrefiner/segrefiner_small_folder.py); a model-only config '
                         'serves init_refiner and --refiner')
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        check_option_keys(cfg, args.cfg_options, '--cfg-options', runner_keys())
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    from mmseg_refiner.utils.io import check_output_dir
    check_output_dir(cfg.work_dir, 'work dir')  # a file there: refused before the Runner
    if args.amp:
        setup_amp(cfg)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    from mmseg_refiner.utils.launch import setup_cpu_distributed
    setup_cpu_distributed(cfg, args.launcher, 'training')
    return cfg


def setup_threads_or_exit(threads) -> None:
    """``--threads``: exit 2 on a bad number."""
    if threads is None:
        return
    from mmseg_refiner.utils.hardware import setup_threads
    try:
        setup_threads(threads, opencv=False)  # OpenCV: env_cfg.mp_cfg (the Runner)
    except ValueError as exc:
        print(f'tools/train.py: error: {exc}', file=sys.stderr)
        sys.exit(2)


def check_start(cfg: Config, trust: bool) -> None:
    """A ``load_from`` / ``--resume`` checkpoint checked against the config's model before
    the Runner starts (:func:`mmseg_refiner.utils.checkpoint.check_training_start`)."""
    if not cfg.get('load_from') and not cfg.get('resume'):
        return
    from mmengine.registry import DefaultScope

    from mmseg_refiner.registry import MODELS
    from mmseg_refiner.utils.checkpoint import check_training_start
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmseg_refiner')):
        model = MODELS.build(cfg.model)
    check_training_start(model, cfg.get('load_from'), cfg.get('resume'), cfg.work_dir, trust)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    pin_run_device('tools/train.py', argv)  # before torch / mmengine pick a device
    args = parse_args(argv)
    setup_threads_or_exit(args.threads)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmseg_refiner.utils.checkpoint import mmengine_safe_globals, refused_global
    from mmseg_refiner.utils.io import InputError
    from mmseg_refiner.utils.stack_warnings import filter_stack_warnings
    filter_stack_warnings()
    try:
        cfg = build_cfg(args)
        check_start(cfg, args.trust_checkpoint)
    except (ValueError, KeyError, FileNotFoundError) as exc:  # UnsafeCheckpointError too
        sys.exit(f'tools/train.py: error: {error_text(exc)}')
    if args.trust_checkpoint:  # mmengine calls torch.load without weights_only: torch's switch
        os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
    try:
        with mmengine_safe_globals():
            runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
            filter_stack_warnings(runner.logger)
            runner.train()
    except InputError as exc:  # a bad image / mask file met while training (a worker's too)
        lines = [line for line in str(exc).splitlines() if line.strip()]
        sys.exit(f'tools/train.py: error: {lines[-1].split("InputError: ")[-1]}')
    except pickle.UnpicklingError as exc:
        name = refused_global(exc)
        if name is None:
            raise
        sys.exit(f'tools/train.py: refused to load the checkpoint of load_from / --resume '
                 f'({cfg.get("load_from")}): it contains the global {name}, which is outside '
                 'the weights-only allow-list; unpickling it can run code from the file. If you '
                 'trust its source, pass --trust-checkpoint.')


if __name__ == '__main__':
    main()
