"""``mmseg-refiner benchmark PART`` (also ``tools/benchmark.py``): arguments and runs.

Parts: ``speed``, ``quality``, ``side-by-side`` and ``data``.

The measuring code is :mod:`mmseg_refiner.benchmark` (``speed``, ``quality``, ``report``);
this module only parses arguments, builds the refiner and writes the reports.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from mmseg_refiner.cli.common import arg_type, dilation_ratio, int_at_least

# Choices, spelled out so that building the parser imports neither torch nor the benchmark
# (tests check they match mmseg_refiner.benchmark's UNET_VARIANTS, TRAIN_VARIANTS, ...).
UNET_VARIANT_NAMES = ('fp32', 'fp32_cl', 'bf16', 'bf16_cl', 'compiled')
TRAIN_VARIANT_NAMES = ('fp32', 'bf16', 'bf16_cl')
COARSE_KIND_NAMES = ('lowres', 'polygon', 'perturb')
DEFAULT_VARIANT = 'guarded'
DESCRIPTION = ('Speed (hardware peaks, U-Net, end to end, training, memory), quality '
               '(coarse vs refined on a folder of image/mask pairs), side-by-side jobs '
               '(OpenMP waiting settings) of a refiner, and the training data pipeline.')


# ---------------------------------------------------------------------- argument types
def _out_folder(text: str) -> str:
    """The output folder: missing (made later) or a folder; not a file, nor under one."""
    from mmseg_refiner.utils.io import check_output_dir
    return check_output_dir(text)  # InputError is a ValueError: argparse reports it


# counts and sizes: 0 or less means nothing to measure (or a crash deep in torch / cv2)
POSITIVE = arg_type(int_at_least(1), 'positive integer')
SEED = arg_type(int_at_least(0, 2**32 - 1), 'seed')
OUT_FOLDER = arg_type(_out_folder, 'folder')


def _common_args(parser, trained: bool = True) -> None:
    """The flags every part takes; ``trained=False`` (``data``): a training config, no
    weights."""
    from mmseg_refiner.cli.common import add_runtime_args
    if trained:
        parser.add_argument('--config', help='refiner config (default: the shipped model)')
        parser.add_argument('--checkpoint', help='refiner weights (default: the shipped model)')
    else:
        parser.add_argument('--config', help='training config whose train_dataloader is timed '
                            '(required)')
    add_runtime_args(parser)
    parser.add_argument('--seed', type=SEED, default=0, help='seed (default: 0)')
    parser.add_argument('--out', required=True, type=OUT_FOLDER,
                        help='output folder (JSON, Markdown, PNG)')


def _speed_args(speed) -> None:
    speed.add_argument(
        '--sizes', type=POSITIVE, nargs='+', default=[256, 384],
        help='square U-Net input sizes: crop sizes the model takes '
        '(default: 256 384)')
    speed.add_argument('--batches', type=POSITIVE, nargs='+', default=[1, 8],
                       help='U-Net batch sizes (default: 1 8)')
    speed.add_argument(
        '--dtypes', nargs='+', default=['fp32', 'bf16', 'bf16_cl'],
        choices=list(UNET_VARIANT_NAMES), metavar='VARIANT',
        help=f'U-Net variants, of {list(UNET_VARIANT_NAMES)} (default: fp32 bf16 '
        'bf16_cl; --compile adds compiled)')
    speed.add_argument('--compile', action='store_true',
                       help='also time the torch.compile\'d U-Net (slow to build)')
    speed.add_argument('--iters', type=POSITIVE, default=3, help='timed runs, median (default: 3)')
    speed.add_argument('--no-peaks', action='store_true', help='skip the matmul/conv peaks')
    speed.add_argument('--modes', nargs='*', default=['instance', 'global', 'hr'],
                       help='end-to-end modes (none: skip end to end)')
    speed.add_argument('--e2e-size', type=POSITIVE, nargs=2, default=[480, 854],
                       metavar=('H', 'W'), help='end-to-end image size (default: 480 854)')
    speed.add_argument('--train-variants', nargs='*', default=['fp32', 'bf16', 'bf16_cl'],
                       choices=list(TRAIN_VARIANT_NAMES), metavar='VARIANT',
                       help=f'training steps to time, of {list(TRAIN_VARIANT_NAMES)} (none: skip)')
    speed.add_argument('--train-batch', type=POSITIVE, default=8,
                       help='training batch size (default: 8)')
    speed.add_argument('--train-size', type=POSITIVE, default=128,
                       help='training window size: a crop size the model takes (default: 128)')


def _quality_args(quality) -> None:
    quality.add_argument('--root', required=True, help='folder with images/ and masks/')
    quality.add_argument('--mode', default='auto', help='refine_mask mode (default: auto)')
    quality.add_argument('--split', help='file of ids (a path or a name inside --root)')
    quality.add_argument('--kinds', nargs='+', default=list(COARSE_KIND_NAMES),
                         choices=COARSE_KIND_NAMES)
    quality.add_argument('--limit', type=POSITIVE, metavar='N',
                         help='first N ids only (default: all)')
    quality.add_argument('--steps', type=POSITIVE, nargs='+',
                         help='reverse step counts to sweep (default: all T steps)')
    quality.add_argument(
        '--variants', nargs='+', default=[DEFAULT_VARIANT], metavar='VARIANT',
        help='refinement settings to compare, each cached separately: guarded '
        '(guard on, fixed schedule), unguarded (the reference), '
        '[unguarded-]adaptive-[coarse-|change-]THR (adaptive stopping at '
        'THR in [0, 1], e.g. adaptive-0.45 adaptive-change-0.01), or refine '
        'options KEY=VALUE[,KEY=VALUE] (e.g. preset=reference autocast=fp32 '
        f'guard=off); default: {DEFAULT_VARIANT}')
    quality.add_argument('--coarse-only', action='store_true',
                         help='score the coarse masks only (no refiner): the baseline')
    quality.add_argument('--dilation-ratio', type=dilation_ratio, default=0.02)
    quality.add_argument('--name', help='dataset label in the report (default: root/split)')
    quality.add_argument('--no-progress', action='store_true')
    quality.add_argument(
        '--by-path', action='store_true',
        help='also report per refinement path (instance / hr: the strategy mode=auto took '
        'for each image)')


def _side_by_side_args(parser) -> None:
    from mmseg_refiner.utils.hardware import OPENMP_SETTINGS
    parser.add_argument(
        '--settings', nargs='+', default=list(OPENMP_SETTINGS), metavar='SETTING',
        help='OpenMP environments to compare: default (none set) or KEY=VALUE[,KEY=VALUE] '
        f'(default: {" ".join(OPENMP_SETTINGS)})')
    parser.add_argument('--jobs', type=POSITIVE, default=2, help='jobs per group (default: 2)')
    parser.add_argument('--refines', type=POSITIVE, default=3,
                        help='timed refinements per job, after one warm-up (default: 3)')
    parser.add_argument('--e2e-size', type=POSITIVE, nargs=2, default=[480, 854],
                        metavar=('H', 'W'), help='image size (default: 480 854)')


def _data_args(parser) -> None:
    parser.add_argument(
        '--samples', type=POSITIVE, default=48,
        help='samples per pass, drawn from the parts by their shares '
        '(default: 48)')
    parser.add_argument(
        '--passes', type=POSITIVE, default=2,
        help='passes over the same samples: 1 decodes, 2 also reads the '
        'decoded-image cache (default: 2)')
    parser.add_argument('--iters', type=POSITIVE, default=3,
                        help='timed training steps, median (default: 3)')
    parser.add_argument(
        '--no-step', action='store_true',
        help='skip timing the training step the data is set against (on '
        '--device, with randomly initialised weights)')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``speed``, ``quality``, ``side-by-side`` and ``data`` parts of the benchmark."""
    sub = parser.add_subparsers(dest='part', metavar='PART', required=True)
    speed = sub.add_parser('speed', help='peaks, U-Net, end to end, training, memory')
    quality = sub.add_parser('quality', help='before/after IoU, mBA, BIoU on a folder of pairs')
    pair = sub.add_parser(
        'side-by-side', help='two refine jobs together vs one after the other, per OpenMP '
        'setting (new processes with the default threads)')
    data = sub.add_parser(
        'data', help='training data pipeline of a config (--config): ms per sample per '
        'transform, against the training step')
    for p in (speed, quality, pair):
        _common_args(p)
    _common_args(data, trained=False)
    _speed_args(speed)
    _quality_args(quality)
    _side_by_side_args(pair)
    _data_args(data)


def _build_refiner(args):
    from mmseg_refiner.cli.common import build_refiner
    return build_refiner(args)  # sets the threads first


def _check_speed_args(refiner, args) -> None:
    """Before any timing: ``--modes`` must be refine modes, ``--sizes`` and ``--train-size``
    (when training is timed) crop sizes the model takes (a multiple of its U-Net's
    downsampling)."""
    from mmseg_refiner.apis import RefineOptions, check_options
    for mode in args.modes:
        try:
            RefineOptions.check('mode', mode)
        except ValueError as exc:
            raise ValueError(f'--modes {mode}: {exc}') from None
    flags = [('--sizes', s) for s in args.sizes]
    flags += [('--train-size', args.train_size)] if args.train_variants else []
    for flag, size in flags:
        try:
            check_options(refiner, crop_size=size)
        except ValueError as exc:
            raise ValueError(f'{flag} {size}: {exc}') from None


def run_speed(args) -> int:
    """Measure everything of ``speed`` in this one process; write speed.json / speed.md."""
    import torch

    from mmseg_refiner.benchmark import report, speed, training
    refiner = _build_refiner(args)
    _check_speed_args(refiner, args)
    device = str(refiner.data_preprocessor.mean.device)
    torch.manual_seed(args.seed)
    matmul, conv = {}, {}
    if not args.no_peaks:
        matmul = speed.matmul_rate(device=device, iters=args.iters)
        conv = speed.conv_rate(device=device, iters=args.iters)
    variants = list(dict.fromkeys(args.dtypes + (['compiled'] if args.compile else [])))
    unet_rows = speed.unet_speed(refiner.backbone, args.sizes, args.batches, variants, args.iters)
    speed.add_peak_shares(unet_rows, conv, matmul)
    e2e_rows = speed.end_to_end_speed(refiner, args.modes, tuple(args.e2e_size), iters=args.iters,
                                      seed=args.seed) if args.modes else []
    train_rows = training.train_speed(refiner, args.train_batch, args.train_size,
                                      args.train_variants, args.iters,
                                      seed=args.seed) if args.train_variants else []
    header = report.machine_line(device, torch.get_num_threads())
    text = report.speed_markdown(unet_rows, e2e_rows, train_rows, header,
                                 report.peaks_markdown(matmul, conv) if matmul else '')
    report.write_json(
        dict(machine=header, device=device, torch=torch.__version__,
             threads=torch.get_num_threads(), test_cfg=_jsonable(refiner.test_cfg),
             matmul_gflops=matmul, conv3x3_gflops=conv, unet=unet_rows,
             end_to_end=e2e_rows, training=train_rows, **speed.peak_memory_mb(device)),
        osp.join(args.out, 'speed.json'))
    report.write_text(text, osp.join(args.out, 'speed.md'))
    print(text)
    return 0


def _jsonable(cfg: dict) -> dict:
    return {
        k: v if isinstance(v, (int, float, str, bool, type(None), list, tuple, dict)) else str(v)
        for k, v in cfg.items()
    }


def _quality_name(args, num_pairs: int, coarse_only: bool) -> tuple:
    name = args.name or (osp.basename(osp.normpath(args.root)) +
                         (f' / {osp.splitext(osp.basename(args.split))[0]}' if args.split else ''))
    title = f'{name}: {num_pairs} images' + (' (coarse masks only)' if coarse_only else '')
    return name, title


def run_quality(args) -> int:
    """Run (or resume) the quality sweep; write quality.json / quality.md and plots."""
    from mmseg_refiner.benchmark import QualityRun, list_pairs, report, unique_variants
    variants = unique_variants(args.variants)  # bad names fail before any work
    pairs = list_pairs(args.root, args.split, args.limit)
    refiner = None if args.coarse_only else _build_refiner(args)
    refiner_id = '' if refiner is None else f'{args.config}|{args.checkpoint}'
    qrun = QualityRun(pairs, args.out, args.kinds, refiner, args.steps, args.mode, args.seed,
                      args.dilation_ratio, refiner_id, variants)
    qrun.run(progress=not args.no_progress)
    rows = qrun.summary(by_path=args.by_path and refiner is not None)
    name, title = _quality_name(args, len(pairs), refiner is None)
    text = report.quality_markdown(rows, title)
    options = {v.name: qrun.refine_kwargs(v) for v in qrun.variants}
    summary = dict(root=args.root, split=args.split, limit=args.limit, seed=args.seed,
                   mode=args.mode, config=args.config, checkpoint=args.checkpoint,
                   variants=options, rows=rows)
    report.write_json(summary, osp.join(args.out, 'quality.json'))
    report.write_text(text, osp.join(args.out, 'quality.md'))
    if refiner is not None:
        overall = [r for r in rows if r.get('path', 'all') == 'all']
        report.plot_quality_vs_steps(overall, osp.join(args.out, 'quality_vs_steps.png'), name)
        report.plot_quality_vs_calls(overall, osp.join(args.out, 'quality_vs_calls.png'), name)
    print(text)
    return 0


def run_side_by_side(args) -> int:
    """Time jobs side by side and one after the other; write side_by_side.json / .md."""
    from mmseg_refiner.benchmark import report, side_by_side
    rows = side_by_side.side_by_side(args.settings, args.jobs, config=args.config,
                                     checkpoint=args.checkpoint, device=args.device,
                                     refines=args.refines, size=tuple(args.e2e_size),
                                     threads=args.threads)
    header = report.machine_line(args.device, rows[0]['threads'] if rows else 0)
    text = side_by_side.markdown(rows, header, args.refines)
    report.write_json(dict(machine=header, rows=rows), osp.join(args.out, 'side_by_side.json'))
    report.write_text(text, osp.join(args.out, 'side_by_side.md'))
    print(text)
    return 0


def run_data(args) -> int:
    """Time the training data pipeline of ``--config``; write data.json / data.md."""
    if not args.config:
        raise ValueError('benchmark data needs --config: a training config, e.g. '
                         'configs/segrefiner/segrefiner_small_campaign.py')
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'benchmark data: config not found: {args.config}')
    import numpy as np
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmseg_refiner.benchmark import data, report, training
    from mmseg_refiner.registry import DATASETS, MODELS
    from mmseg_refiner.utils.hardware import setup_threads
    setup_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if 'train_dataloader' not in cfg:
        raise ValueError(f'benchmark data: {args.config} has no train_dataloader (give a '
                         f'training config)')
    init_default_scope('mmseg_refiner')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    rows = data.data_speed(dataset, args.samples, args.passes)
    step = None
    if not args.no_step:
        size = int(np.shape(data.leaf_datasets(dataset)[0][0]['inputs'])[-1])
        wrapper = cfg.get('optim_wrapper', {}).get('type', 'OptimWrapper')
        variant = 'bf16_cl' if wrapper == 'AutocastOptimWrapper' else 'fp32'
        torch.manual_seed(args.seed)
        model = MODELS.build(cfg.model).to(args.device)  # random weights: speed only
        step = training.train_speed(model, cfg.train_dataloader.batch_size, size, (variant, ),
                                    args.iters, seed=args.seed)[0]
    data.add_step_shares(rows, step['ms'] / step['batch'] if step else None)
    header = report.machine_line(args.device, torch.get_num_threads())
    text = data.data_markdown(rows, header, step)
    report.write_json(dict(machine=header, config=args.config, rows=rows, training_step=step),
                      osp.join(args.out, 'data.json'))
    report.write_text(text, osp.join(args.out, 'data.md'))
    print(text)
    return 0


def run(args) -> int:
    """Entry point of both ``tools/benchmark.py`` and ``mmseg-refiner benchmark``."""
    parts = {'speed': run_speed, 'side-by-side': run_side_by_side, 'data': run_data}
    return parts.get(args.part, run_quality)(args)


def add_parser(subparsers) -> None:
    """Register ``benchmark`` in the ``mmseg-refiner`` command line."""
    p = subparsers.add_parser(
        'benchmark', help='speed (peaks, U-Net, end to end, training, '
        'memory) and quality (coarse vs refined)', description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/benchmark.py``: parse ``argv``, run, exit status 1 on bad input."""
    from mmseg_refiner.utils.hardware import DeviceError, prepare_process
    from mmseg_refiner.utils.io import InputError
    prepare_process()  # before torch loads: OpenMP waiting, malloc (utils/hardware.py)
    parser = argparse.ArgumentParser(prog='benchmark', description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except DeviceError as exc:
        print(f'benchmark: error: {exc}', file=sys.stderr)
        return 2
    except (InputError, FileNotFoundError, ValueError) as exc:
        print(f'benchmark: error: {exc}', file=sys.stderr)
        return 1
