"""``mmseg-refiner refine IMAGE|DIR MASK|DIR --out DIR``: refine image + mask files."""
import argparse
import os.path as osp

import numpy as np

from mmseg_refiner.cli.common import add_refiner_args, guard_arg, pair_by_stem, run_over_pairs


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'refine', help='refine binary masks of images (files or folders paired by name)',
        description='Refine IMAGE + MASK (or every same-named pair of two folders). Masks are '
        '8-bit PNGs (0 = background, >0 = foreground; 0/1 masks work too). Existing outputs '
        'are skipped, so an interrupted run resumes.')
    p.add_argument('image', help='image file or folder')
    p.add_argument('mask', help='coarse mask file or folder')
    p.add_argument('--out', required=True, help='output folder for refined <name>.png masks')
    add_refiner_args(p, with_guard=True)
    p.add_argument('--vis', action='store_true',
                   help='also write <name>_vis.png before/after panels')
    p.add_argument('--confidence', action='store_true',
                   help='also write <name>_conf.png (fine probability x 255)')
    p.add_argument('--stop-thr', type=_share, default=None, metavar='FLOAT',
                   help='adaptive stopping: stop a mask once the share of pixels still coarse '
                   '(or changed by the last step, per the config\'s test_cfg.stop_criterion) '
                   'is below FLOAT; 0 = the full fixed schedule (default: test_cfg.stop_thr, 0)')
    p.add_argument('--overwrite', action='store_true', help='redo existing outputs')
    p.set_defaults(func=run)


def _share(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f'expected a share in [0, 1], got {text!r}')
    return value


def _outputs_exist(out_dir, stem, args) -> bool:
    wanted = [f'{stem}.png'] + ([f'{stem}_vis.png'] if args.vis else []) + \
        ([f'{stem}_conf.png'] if args.confidence else [])
    return all(osp.isfile(osp.join(out_dir, w)) for w in wanted)


def _refine_one(refiner, stem, img_path, mask_path, args):
    from mmseg_refiner.apis import refine_mask
    from mmseg_refiner.utils.io import (imread_checked, imwrite_atomic, maskread_checked,
                                        maskwrite_atomic)
    image = imread_checked(img_path)
    coarse = maskread_checked(mask_path)
    refined, conf = refine_mask(refiner, image, coarse, mode=args.mode, steps=args.steps,
                                seed=args.seed, return_confidence=True,
                                guard=guard_arg(args), stop_thr=args.stop_thr)
    maskwrite_atomic(refined, osp.join(args.out, f'{stem}.png'))
    if args.confidence:
        imwrite_atomic((np.clip(conf, 0, 1) * 255).astype(np.uint8),
                       osp.join(args.out, f'{stem}_conf.png'))
    if args.vis:
        from mmseg_refiner.vis import before_after_panel
        imwrite_atomic(before_after_panel(image, coarse, refined),
                       osp.join(args.out, f'{stem}_vis.png'))


def run(args) -> int:
    pairs, unpaired = pair_by_stem(args.image, args.mask, 'image', 'mask')
    return run_over_pairs(args, pairs, unpaired, lambda stem: _outputs_exist(args.out, stem, args),
                          _refine_one, 'refine', 'mask(s)',
                          'warning: no mask for image {stem}, skipped')
