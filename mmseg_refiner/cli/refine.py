"""``mmseg-refiner refine IMAGE|DIR MASK|DIR --out DIR``: refine image + mask files."""
import os.path as osp

import numpy as np

from mmseg_refiner.cli.common import (OVERWRITE, PATTERN_HELP, add_refining_subcommand, arg,
                                      pair_by_stem, refine_options, run_over_pairs)


def add_parser(subparsers) -> None:
    """Refine IMAGE + MASK (or every same-named pair of two folders). Masks: 0 = background,
    any other value = foreground (0/1, 0/255, label maps of ids); soft masks with many values
    are cut at half range (>127); cut-out PNGs use their alpha. --out must be a folder of its
    own (not one of the inputs). Existing outputs are skipped, so an interrupted run resumes.
    Other naming schemes pair with --image-pattern / --mask-pattern, e.g. BIG / DIS:
    --image-pattern '{id}_im.jpg' --mask-pattern '{id}_seg.png'; outputs are named <id>.png."""
    add_refining_subcommand(
        subparsers, 'refine', run,
        help='refine binary masks of images (files or folders paired by name)',
        description=add_parser.__doc__, arguments=[
            arg('image', help='image file or folder'),
            arg('mask', help='coarse mask file or folder'),
            arg('--out', required=True, help='output folder for refined <name>.png masks'),
            arg('--image-pattern', metavar='PATTERN', help=f'image files: {PATTERN_HELP}'),
            arg('--mask-pattern', metavar='PATTERN',
                help="coarse mask files, e.g. '{id}_seg.png' (default: any image file)"),
            arg('--vis', action='store_true',
                help='also write <name>_vis.png before/after panels'),
            arg(
                '--confidence', action='store_true',
                help='also write <name>_conf.png (fine probability x 255; all 0 for a mask '
                'returned unchanged, e.g. empty or smaller than test_cfg.area_thr)'),
            OVERWRITE,
        ])


def _outputs_exist(out_dir, stem, args) -> bool:
    wanted = [f'{stem}.png'] + ([f'{stem}_vis.png'] if args.vis else []) + \
        ([f'{stem}_conf.png'] if args.confidence else [])
    return all(osp.isfile(osp.join(out_dir, w)) for w in wanted)


def _refine_one(refiner, stem, img_path, mask_path, args):
    from mmseg_refiner.apis import read_pair, refine_mask
    from mmseg_refiner.utils.io import imwrite_atomic, maskwrite_atomic
    image, coarse = read_pair(img_path, mask_path)
    refined, conf = refine_mask(refiner, image, coarse, return_confidence=True,
                                options=refine_options(args))
    maskwrite_atomic(refined, osp.join(args.out, f'{stem}.png'))
    if args.confidence:
        imwrite_atomic((np.clip(conf, 0, 1) * 255).astype(np.uint8),
                       osp.join(args.out, f'{stem}_conf.png'))
    if args.vis:
        from mmseg_refiner.vis import before_after_panel
        imwrite_atomic(before_after_panel(image, coarse, refined),
                       osp.join(args.out, f'{stem}_vis.png'))


def run(args) -> int:
    pairs, unpaired = pair_by_stem(args.image, args.mask, 'image', 'mask', args.image_pattern,
                                   args.mask_pattern)
    return run_over_pairs(args, pairs, unpaired, lambda stem: _outputs_exist(args.out, stem, args),
                          _refine_one, 'refine', 'mask(s)',
                          'warning: no mask for image {stem}, skipped')
