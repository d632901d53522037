"""Pre-generate coarse masks for large images (the reference HR recipe's offline masks).

For every ``<id>`` of ``<root>/<mask-dir>`` (or of a split file) writes
``<root>/<out-dir>/<id>.png`` (boundary modification + dilate/erode perturbation until the
IoU is below the target) and ``<root>/<expanded-dir>/<id>.png`` (the same, started from the
mask with its outer contours filled). Point a dataset's ``data_prefix`` ``coarse_path`` /
``expanded_path`` at the two folders.

Resumable: existing outputs are skipped (``--overwrite`` redoes them) and every file is
written atomically, so an interrupted run leaves no partial file. Each mask gets its own
generator seeded from (``--seed``, id), so results do not depend on order or ``--workers``.
Each output folder records the settings its masks were made with (``.make_coarse.json``): a
run with other settings (``--mode``, ``--iou-target``, ...) is refused instead of mixing its
masks with the earlier ones; ``--overwrite`` redoes them all, or choose another ``--out-dir``.

Example::

    python tools/make_coarse.py data/DIS5K/DIS-TR --mask-dir gt --max-side 1024 --workers 2
"""
import argparse
import json
import multiprocessing as mp
import os.path as osp
import sys
from functools import partial
from typing import List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from mmseg_refiner.cli.common import arg_type, int_at_least
from mmseg_refiner.datasets.coarse_synthesis import (DEGRADATIONS, fill_outer_contours,
                                                     synthesize_coarse)
from mmseg_refiner.datasets.mask_folder import index_images, read_split
from mmseg_refiner.inference.crops import crop_resize_mask
from mmseg_refiner.utils.io import InputError, atomic_write, maskread_checked, maskwrite_atomic
from mmseg_refiner.utils.rng import keyed_generator
from mmseg_refiner.utils.stack_warnings import filter_stack_warnings

MIN_SIDE = 16  # smallest --max-side: the perturbation's kernels are 3-9 px
SETTINGS_FILE = '.make_coarse.json'  # per output folder: the settings its masks were made with
SETTINGS = ('mask_dir', 'mode', 'iou_target', 'iou_min', 'max_side', 'seed')


def _float_in(low: float, high: float, low_open: bool, high_open: bool):
    """str -> float in the interval; a ValueError names it and the text."""
    span = f'{"(" if low_open else "["}{low:g}, {high:g}{")" if high_open else "]"}'

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float('nan')
        if not (low < value if low_open else low <= value) or \
                not (value < high if high_open else value <= high):
            raise ValueError(f'expected a number in {span}, got {text!r}')
        return value

    return parse


def _max_side(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value != 0 and value < MIN_SIDE:
        raise ValueError(f'expected 0 (full size) or a side >= {MIN_SIDE} px, got {text!r}')
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Pre-generate coarse masks (resumable).')
    p.add_argument('root', help='dataset folder')
    p.add_argument('--mask-dir', default='masks', help='ground-truth folder under root')
    p.add_argument('--split', help='split file (one id a line), relative to root')
    p.add_argument('--out-dir', default='coarse', help='coarse masks folder under root')
    p.add_argument('--expanded-dir', default='coarse_expand',
                   help="'expanded' coarse masks folder under root ('' to skip them)")
    p.add_argument('--iou-target', type=arg_type(_float_in(0, 1, True, False), 'IoU'), default=0.8,
                   help='perturb until IoU < this, in (0, 1] (reference: 0.8)')
    p.add_argument(
        '--iou-min', type=arg_type(_float_in(0, 1, False, True), 'IoU'), default=0.0,
        help='reject rounds below this IoU, in [0, 1), below --iou-target '
        '(default: 0)')
    p.add_argument(
        '--mode', default='reference', choices=DEGRADATIONS,
        help=f'coarse-mask recipe, one of {", ".join(DEGRADATIONS)} '
        '(default: reference)')
    p.add_argument(
        '--max-side', type=arg_type(_max_side, 'max_side'), default=0,
        help='synthesize at most at this long side, then upsample (0: full size; '
        f'else >= {MIN_SIDE})')
    p.add_argument('--seed', type=arg_type(int_at_least(0), 'seed'), default=0,
                   help='seed, >= 0 (default: 0)')
    p.add_argument('--workers', type=arg_type(int_at_least(1), 'workers'), default=1,
                   help='processes, >= 1 (default: 1)')
    p.add_argument('--overwrite', action='store_true', help='redo existing outputs')
    args = p.parse_args(argv)
    if args.iou_min >= args.iou_target:
        p.error(f'--iou-min {args.iou_min:g} must be below --iou-target {args.iou_target:g} '
                '(masks land in [iou-min, iou-target))')
    if not args.out_dir.strip():
        p.error('--out-dir must name a folder under root')
    folders = [('--mask-dir', args.mask_dir), ('--out-dir', args.out_dir)]
    folders += [('--expanded-dir', args.expanded_dir)] if args.expanded_dir else []
    for i, (flag, folder) in enumerate(folders):
        for other, seen in folders[:i]:
            if osp.normpath(folder) == osp.normpath(seen):
                hint = " (--expanded-dir '' skips them)" if flag == '--expanded-dir' else ''
                p.error(f'{flag} {folder} is also {other}: each needs its own folder{hint}')
    return args


def list_ids(root: str, mask_dir: str, split: Optional[str]) -> List[str]:
    """Ids of the split file, or the stems of every mask in ``mask_dir``."""
    if split:
        return read_split(osp.join(root, split))
    ids = list(index_images(osp.join(root, mask_dir), ('.png', )))
    if not ids:
        raise InputError(f'no .png masks in {osp.join(root, mask_dir)}')
    return ids


def _synthesize(gt: np.ndarray, rng: np.random.Generator, args) -> np.ndarray:
    """Coarse mask of a (H, W) bool ``gt``, at most ``args.max_side`` px while working."""
    h, w = gt.shape
    scale = args.max_side / max(h, w) if args.max_side and max(h, w) > args.max_side else 1.0
    work = gt if scale == 1.0 else crop_resize_mask(gt, (0, 0, w, h), (max(1, round(w * scale)),
                                                                       max(1, round(h * scale))))
    coarse, _, _ = synthesize_coarse(work, rng, args.iou_target, args.iou_min, mode=args.mode)
    if scale != 1.0:
        coarse = crop_resize_mask(coarse > 0, (0, 0, coarse.shape[1], coarse.shape[0]), (w, h))
    return coarse


def process_one(sample_id: str, args) -> Tuple[str, str]:
    """Write the missing outputs of one id; returns (id, 'done' | 'skipped' | error text)."""
    todo = [(osp.join(args.root, d, sample_id + '.png'), e) for d, e in _output_dirs(args)]
    todo = [(p, e) for p, e in todo if args.overwrite or not osp.isfile(p)]
    if not todo:
        return sample_id, 'skipped'
    try:
        gt = maskread_checked(osp.join(args.root, args.mask_dir, sample_id + '.png'))
        for path, expanded in todo:
            rng = keyed_generator(args.seed, sample_id, int(expanded))
            source = fill_outer_contours(gt) > 0 if expanded else gt
            maskwrite_atomic(_synthesize(source, rng, args), path)
    except (InputError, OSError) as exc:
        return sample_id, f'error: {exc}'
    return sample_id, 'done'


def _output_dirs(args) -> List[Tuple[str, bool]]:
    """(folder under root, expanded?) of every output."""
    return [(args.out_dir, False)] + ([(args.expanded_dir, True)] if args.expanded_dir else [])


def record_settings(args) -> None:
    """Check the settings recorded in each output folder against this run's, then record them.

    A folder whose masks were made with other settings is refused (``InputError`` naming
    them) unless ``--overwrite``: resuming would otherwise mix two recipes in one folder.
    An ``--overwrite`` run marks its records ``overwriting`` until it has redone every mask
    (:func:`finish_records`): cut short, its folder still holds masks of the earlier
    settings, so a resume without ``--overwrite`` is refused too.
    """
    for folder, expanded in _output_dirs(args):
        here = _record(args, expanded)
        path = osp.join(args.root, folder, SETTINGS_FILE)
        if osp.isfile(path) and not args.overwrite:
            try:
                with open(path) as f:
                    before = json.load(f)
            except ValueError:
                before = None
            if not isinstance(before, dict):
                raise InputError(f'{path} is not a settings record of make_coarse.py; '
                                 'delete it, or give --overwrite to redo the masks')
            differ = [k for k in here if before.get(k) != here[k]]
            if differ:
                was = ', '.join(f'{k}={before.get(k)!r}' for k in differ)
                now = ', '.join(f'{k}={here[k]!r}' for k in differ)
                raise InputError(
                    f'the masks in {osp.join(args.root, folder)} were made with {was}; this run '
                    f'has {now}. Give --overwrite to redo them all, or another --out-dir')
            if before.get('overwriting'):
                raise InputError(
                    f'an --overwrite run in {osp.join(args.root, folder)} did not finish: masks '
                    'of the earlier settings may remain there. Give --overwrite again')
            continue
        _write_record(path, dict(here, overwriting=True) if args.overwrite else here)


def finish_records(args) -> None:
    """After an ``--overwrite`` run that redid every mask: its records lose ``overwriting``."""
    for folder, expanded in _output_dirs(args):
        _write_record(osp.join(args.root, folder, SETTINGS_FILE), _record(args, expanded))


def _record(args, expanded: bool) -> dict:
    """The settings a folder's masks are made with (what its record holds)."""
    return dict({k: getattr(args, k) for k in SETTINGS}, expanded=expanded)


def _write_record(path: str, record: dict) -> None:
    with atomic_write(path) as tmp, open(tmp, 'w') as f:
        json.dump(record, f, indent=1)


def run(args) -> dict:
    """Process every id (in a pool when ``args.workers > 1``); counts per status."""
    ids = list_ids(args.root, args.mask_dir, args.split)
    record_settings(args)
    counts, errors = {'done': 0, 'skipped': 0, 'error': 0}, []
    work = partial(process_one, args=args)
    pool = mp.Pool(args.workers) if args.workers > 1 else None
    try:
        results = pool.imap_unordered(work, ids) if pool else map(work, ids)
        for sample_id, status in tqdm(results, total=len(ids), desc='coarse masks'):
            key = status if status in counts else 'error'
            counts[key] += 1
            if key == 'error':
                errors.append(f'{sample_id}: {status}')
    finally:
        if pool:
            pool.close()
            pool.join()
    for line in errors:
        print(line, file=sys.stderr)
    if args.overwrite and not errors:
        finish_records(args)
    return counts


def main(argv=None):
    filter_stack_warnings()
    args = parse_args(argv)
    try:
        counts = run(args)
    except InputError as exc:  # no masks folder, no split file, other settings: before work
        print(f'make_coarse: error: {exc}', file=sys.stderr)
        return 1
    print(f"coarse masks: {counts['done']} written, {counts['skipped']} already there, "
          f"{counts['error']} failed")
    return 1 if counts['error'] else 0


if __name__ == '__main__':
    sys.exit(main())
