"""``mmseg-refiner refine-semantic PRED_DIR --img-dir DIR --out DIR``: refine label-map PNGs.

Each prediction (a single-channel PNG of class indices, 8/16-bit or palette, as mmseg's
``--out`` / ``output_dir`` writes) is paired with the image of the same name; the refined map
is written with the same name, bit depth and palette. Existing outputs are skipped (resume).
"""
import os.path as osp

import numpy as np
from PIL import Image

from mmseg_refiner.cli.common import (OVERWRITE, add_refining_subcommand, arg, pair_by_stem,
                                      refine_options, run_over_pairs)
from mmseg_refiner.utils.io import InputError, atomic_write, open_pil

LABEL_MODES = ('L', 'P', 'I;16', 'I')


def add_parser(subparsers) -> None:
    """Refine every class of each label map in PRED_DIR (single-channel PNGs of class indices)
    with the image of the same name in --img-dir. Classes are refined as binary masks and merged
    by confidence; --ignore-index pixels are kept. Outputs keep name, bit depth and palette
    (32-bit inputs are written as 16-bit PNGs); existing outputs are skipped, so a run
    resumes."""
    add_refining_subcommand(
        subparsers, 'refine-semantic', run, help='refine semantic label maps (a folder of PNGs)',
        description=add_parser.__doc__, arguments=[
            arg('pred_dir', help='folder (or one file) of predicted label-map PNGs'),
            arg('--img-dir', required=True, help='folder (or one file) of the images'),
            arg('--out', required=True, help='output folder for refined label maps'),
            arg('--ignore-index', type=int, default=255,
                help='label left untouched (default: 255)'),
            arg('--classes', type=int, nargs='+', default=None,
                help='refine only these class indices (default: all present)'),
            OVERWRITE,
        ])


def read_label_map(path: str):
    """(labels (H, W) integer ndarray, PIL image it came from) of a label-map PNG."""
    try:
        img = open_pil(path)  # a label map of any size (no decompression-bomb limit)
        img.load()
    except (OSError, ValueError) as exc:
        raise InputError(f'label map {path} could not be read: {exc}') from exc
    if img.mode not in LABEL_MODES:
        raise InputError(f'label map {path} has mode {img.mode}; expected a single-channel '
                         f'image of class indices ({", ".join(LABEL_MODES)})')
    labels = np.array(img)
    if img.mode == 'I' and labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise InputError(f'label map {path} (32-bit) has labels from {labels.min()} to '
                         f'{labels.max()}; class indices must lie in [0, 65535]')
    return labels, img


def write_label_map(labels: np.ndarray, like: Image.Image, path: str) -> None:
    """Write ``labels`` atomically with the mode (and palette) of the image ``like``; 32-bit
    label maps (mode ``I``, which PNG cannot hold) are written as 16-bit PNGs."""
    dtype = np.uint16 if like.mode == 'I' else np.array(like).dtype
    out = Image.fromarray(labels.astype(dtype))
    if like.mode == 'P':
        out.putpalette(like.getpalette())  # 'L' -> 'P', values kept as palette indices
    with atomic_write(path, suffix='.png') as tmp:
        out.save(tmp, format='PNG')


def _refine_one(refiner, stem, pred_path, img_path, args) -> None:
    from mmseg_refiner.apis import refine_label_map
    labels, like = read_label_map(pred_path)
    refined = refine_label_map(refiner, img_path, labels, ignore_index=args.ignore_index,
                               classes=args.classes, options=refine_options(args))
    write_label_map(refined, like, osp.join(args.out, f'{stem}.png'))


def run(args) -> int:
    pairs, unpaired = pair_by_stem(args.pred_dir, args.img_dir, 'label map', 'image')
    return run_over_pairs(args, pairs, unpaired,
                          lambda stem: osp.isfile(osp.join(args.out, f'{stem}.png')), _refine_one,
                          'refine-semantic', 'label map(s)',
                          'warning: no image for label map {stem}, skipped')
