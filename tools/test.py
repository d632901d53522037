"""Test an mmdet or mmseg model, optionally with SegRefiner refining its masks.

The usual OpenMMLab test script for configs whose ``default_scope`` is ``mmdet`` or
``mmseg``; ``--refiner`` adds :class:`mmseg_refiner.SegRefinerHook` so the evaluator scores
the refined masks.

Examples::

    python tools/test.py configs/refine_with/mask-rcnn_r50_fpn_1x_coco_segrefiner.py \\
        mask_rcnn.pth --cfg-options custom_hooks.0.refiner_checkpoint=segrefiner_lr.pth
    python tools/test.py mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py mask_rcnn.pth \\
        --refiner configs/segrefiner/segrefiner_lr.py --refiner-checkpoint segrefiner_lr.pth
    bash tools/dist_test.sh mmseg_config.py seg.pth 4 --refiner ... --refiner-checkpoint ...
    mim test mmseg_refiner CONFIG --checkpoint CKPT --refiner ... --refiner-checkpoint ...

Every inference option of the refiner is a ``--refiner-*`` flag (``--refiner-preset``,
``--refiner-stop-thr``, ``--refiner-stop-criterion``, ... : the fields of
:class:`mmseg_refiner.apis.RefineOptions`; ``--preset`` etc. work too); ``--refiner-cfg-options``
overrides the refiner's config as ``--cfg-options`` does the tested model's.
"""
import argparse
import importlib
import os
import os.path as osp
import sys

# isort: off
from mmseg_refiner.utils.hardware import prepare_process

prepare_process()  # before torch loads: OpenMP waiting, malloc (utils/hardware.py)
from mmengine.config import Config, ConfigDict, DictAction  # loads neither torch nor a device

import mmseg_refiner  # noqa: F401  (the mmseg_refiner registry scope, as custom_imports)
from mmseg_refiner.cli.common import (RUN_DEVICE_HELP, add_refine_options, add_runtime_args,
                                      error_text, pin_run_device, refine_options)
from mmseg_refiner.utils.stack_warnings import filter_stack_warnings

# isort: on
# mmengine's Runner, hub and device load in main(), after --device is pinned: mmengine picks its
# device once, when mmengine.device is imported.

SCOPES = ('mmdet', 'mmseg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) an mmdet / mmseg model, optionally refining its '
        'masks with SegRefiner')
    parser.add_argument(
        'config', help='test config: a file, or a model-zoo config such as '
        'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py (default_scope mmdet or '
        'mmseg)')
    parser.add_argument('checkpoint', help='checkpoint file of the model')
    parser.add_argument('--work-dir', help='the directory to save logs and metrics')
    parser.add_argument(
        '--out', help='mmdet: dump the predictions to this .pkl file; mmseg: save the '
        'predicted label maps as PNGs into this directory')
    parser.add_argument(
        '--lvis-ann', metavar='FILE',
        help='mmdet: score masks against this LVIS-format annotation file '
        '(mask AP and boundary AP with the lvis API; the paper\'s COCO protocol '
        'uses cocofied LVIS val) instead of the config\'s test_evaluator')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images are saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. custom_hooks.0.refiner_checkpoint=x)')
    parser.add_argument(
        '--device', default='auto', help=RUN_DEVICE_HELP + '; the refiner '
        'runs there too unless --refiner-device says otherwise')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (needs tta_model and tta_pipeline)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    _add_refiner_args(parser)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _add_refiner_args(parser) -> None:
    group = parser.add_argument_group('SegRefiner (adds SegRefinerHook to custom_hooks)')
    group.add_argument('--refiner', metavar='CONFIG', help='refiner config: turns refining on')
    group.add_argument('--refiner-checkpoint', metavar='FILE', help='refiner weights')
    add_runtime_args(group, prefix='refiner-', device_default=None)
    add_refine_options(group, prefix='refiner-', aliases=True)


def init_scope(cfg: Config) -> str:
    """Register all modules of the config's framework and return its scope name."""
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(f'default_scope must be one of {SCOPES}, got {scope!r}: this script '
                         'tests mmdet and mmseg models')
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    return scope


def add_refiner_hook(cfg: Config, args) -> None:
    """Append SegRefinerHook (and the ``mmseg_refiner`` import) to the config."""
    imports = cfg.get('custom_imports') or dict(imports=[], allow_failed_imports=False)
    if 'mmseg_refiner' not in imports['imports']:
        imports['imports'] = list(imports['imports']) + ['mmseg_refiner']
    cfg.custom_imports = imports
    hook = dict(type='mmseg_refiner.SegRefinerHook', refiner_config=args.refiner,
                refiner_checkpoint=args.refiner_checkpoint, device=args.refiner_device,
                refine_options=refine_options(args, prefix='refiner_').to_dict(),
                cfg_options=args.refiner_cfg_options,
                trust_checkpoint=args.refiner_trust_checkpoint)
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [hook]


def setup_visualization(cfg: Config, args, scope: str) -> None:
    """Turn on the framework's visualization hook for --show / --show-dir."""
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise KeyError('--show/--show-dir need default_hooks.visualization in the config')
    vis = hooks['visualization']
    vis['draw'] = True
    if args.show:
        vis['show'], vis['wait_time'] = True, args.wait_time
    if args.show_dir and scope == 'mmdet':
        vis['test_out_dir'] = args.show_dir
    elif args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir


def use_lvis_evaluator(cfg: Config, ann_file: str, scope: str) -> None:
    """Score with :class:`mmseg_refiner.LVISMaskMetric` (mask + boundary AP) on ``ann_file``."""
    if scope != 'mmdet':
        raise ValueError(f'--lvis-ann scores instance masks: it needs an mmdet config, got '
                         f'default_scope {scope!r}')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'--lvis-ann: annotation file {ann_file} not found')
    cfg.test_evaluator = dict(type='mmseg_refiner.LVISMaskMetric', ann_file=ann_file)


def setup_tta(cfg: Config) -> None:
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise KeyError('--tta needs tta_model and tta_pipeline in the config')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def build_cfg(args) -> tuple:
    """(Config, scope) from the file and the command line."""
    if '::' in args.config:
        from mmengine.hub import get_config
        cfg = get_config(args.config)
    else:
        cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        from mmseg_refiner.utils.config import check_option_keys, runner_keys
        check_option_keys(cfg, args.cfg_options, '--cfg-options', runner_keys())
        cfg.merge_from_dict(args.cfg_options)
    scope = init_scope(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    from mmseg_refiner.utils.io import check_output_dir
    check_output_dir(cfg.work_dir, 'work dir')  # a file there: refused before the Runner
    cfg.load_from = args.checkpoint
    if args.refiner and not args.refiner_checkpoint:
        raise ValueError(f'--refiner {args.refiner} needs --refiner-checkpoint: without weights '
                         'the refiner is random and the scores meaningless (--refiner-checkpoint '
                         'alone uses the config stored in the checkpoint)')
    if args.refiner or args.refiner_checkpoint:
        add_refiner_hook(cfg, args)
    if args.show or args.show_dir:
        setup_visualization(cfg, args, scope)
    if args.tta:
        setup_tta(cfg)
    if args.lvis_ann:
        use_lvis_evaluator(cfg, args.lvis_ann, scope)
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    from mmseg_refiner.utils.launch import setup_cpu_distributed
    setup_cpu_distributed(cfg, args.launcher, 'testing')
    return cfg, scope


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    pin_run_device('tools/test.py', argv)  # before torch / mmengine pick a device
    filter_stack_warnings()
    args = parse_args(argv)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmseg_refiner.utils.checkpoint import mmengine_safe_globals
    from mmseg_refiner.utils.hardware import setup_threads
    setup_threads(args.threads)
    try:
        cfg, scope = build_cfg(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        sys.exit(f'tools/test.py: error: {error_text(exc)}')
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    if args.out is not None and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl/.pickle file for mmdet, got {args.out}')
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    filter_stack_warnings(runner.logger)
    # The tested model's checkpoint, if mmengine wrote it (HistoryBuffer, numpy values), loads
    # weights-only with those types allow-listed, in this process only.
    with mmengine_safe_globals():
        runner.test()


if __name__ == '__main__':
    main()
