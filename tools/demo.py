"""Refine the bundled example with the shipped model: ``make demo``.

Writes the refined mask and a before/after picture and prints where they are and how long
refinement took.
"""
import argparse
import os.path as osp
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(HERE))  # run from a checkout without installing

from mmseg_refiner.utils.hardware import prepare_process  # isort: skip

prepare_process()  # before torch loads: OpenMP waiting, malloc (utils/hardware.py)
from mmseg_refiner.apis import DEFAULT_CHECKPOINT, refine_mask
from mmseg_refiner.cli.common import add_refiner_args, build_refiner, refine_options
from mmseg_refiner.utils.io import (imread_checked, imwrite_atomic, maskread_checked,
                                    maskwrite_atomic)
from mmseg_refiner.utils.stack_warnings import filter_stack_warnings
from mmseg_refiner.vis import before_after_panel

DEMO_DIR = osp.join(osp.dirname(HERE), 'mmseg_refiner', 'demo')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--image', default=osp.join(DEMO_DIR, 'astronaut.png'))
    p.add_argument('--mask', default=osp.join(DEMO_DIR, 'astronaut_coarse.png'))
    p.add_argument('--reference', default=osp.join(DEMO_DIR, 'astronaut_reference.png'),
                   help='ground-truth mask to score coarse and refined against ("" = none)')
    p.add_argument('--out', default='demo_out')
    add_refiner_args(p)  # --config, --checkpoint, --device, --threads, --steps, --preset, ...
    return p.parse_args()


def print_scores(coarse, refined, reference) -> None:
    """IoU and mBA (percent) of the coarse and the refined mask against the reference."""
    from mmseg_refiner.evaluation.functional import mask_iou, mba
    for name, mask in (('coarse', coarse), ('refined', refined)):
        print(f'{name + ":":<9} IoU {100 * mask_iou(mask, reference):6.2f}   '
              f'mBA {100 * mba(mask, reference):6.2f}   (against the reference mask)')


def main():
    filter_stack_warnings()
    args = parse_args()
    if args.config is None and args.checkpoint is None and not osp.isfile(DEFAULT_CHECKPOINT):
        args.config = osp.join(osp.dirname(HERE), 'configs', 'segrefiner', 'segrefiner_tiny.py')
        print(f'NOTE: no shipped checkpoint at {DEFAULT_CHECKPOINT}: using an UNTRAINED tiny '
              'refiner, so the output only shows that the pipeline runs.')
    refiner = build_refiner(args)
    image, coarse = imread_checked(args.image), maskread_checked(args.mask)
    start = time.perf_counter()
    refined = refine_mask(refiner, image, coarse, options=refine_options(args))
    took = time.perf_counter() - start
    stem = osp.splitext(osp.basename(args.image))[0]
    mask_path = osp.join(args.out, f'{stem}_refined.png')
    panel_path = osp.join(args.out, f'{stem}_before_after.png')
    maskwrite_atomic(refined, mask_path)
    imwrite_atomic(before_after_panel(image, coarse, refined), panel_path)
    changed = (refined != coarse).mean() * 100
    print(f'refined {args.image} ({image.shape[1]}x{image.shape[0]}) in {took:.2f} s '
          f'({changed:.1f}% of pixels changed)')
    if args.reference:
        print_scores(coarse, refined, maskread_checked(args.reference))
    print(f'refined mask:        {osp.abspath(mask_path)}')
    print(f'before/after picture: {osp.abspath(panel_path)}')


if __name__ == '__main__':
    main()
