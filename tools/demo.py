"""Refine the bundled example with the shipped model: ``make demo``.

Writes the refined mask and a before/after picture and prints where they are and how long
refinement took.
"""
import argparse
import os
import os.path as osp
import sys
import time

import torch

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(HERE))  # run from a checkout without installing

from mmseg_refiner.apis import DEFAULT_CHECKPOINT, init_refiner, refine_mask  # noqa: E402
from mmseg_refiner.utils.io import (imread_checked, imwrite_atomic, maskread_checked,  # noqa
                                    maskwrite_atomic)
from mmseg_refiner.vis import before_after_panel  # noqa: E402

DEMO_DIR = osp.join(osp.dirname(HERE), 'mmseg_refiner', 'demo')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--image', default=osp.join(DEMO_DIR, 'astronaut.png'))
    p.add_argument('--mask', default=osp.join(DEMO_DIR, 'astronaut_coarse.png'))
    p.add_argument('--out', default='demo_out')
    p.add_argument('--config', default=None)
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--steps', type=int, default=None)
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.config is None and args.checkpoint is None and not osp.isfile(DEFAULT_CHECKPOINT):
        args.config = osp.join(osp.dirname(HERE), 'configs', 'segrefiner', 'segrefiner_tiny.py')
        print(f'NOTE: no shipped checkpoint at {DEFAULT_CHECKPOINT}: using an UNTRAINED tiny '
              'refiner, so the output only shows that the pipeline runs.')
    refiner = init_refiner(args.config, args.checkpoint)
    image, coarse = imread_checked(args.image), maskread_checked(args.mask)
    start = time.perf_counter()
    refined = refine_mask(refiner, image, coarse, steps=args.steps, seed=args.seed)
    took = time.perf_counter() - start
    stem = osp.splitext(osp.basename(args.image))[0]
    mask_path = osp.join(args.out, f'{stem}_refined.png')
    panel_path = osp.join(args.out, f'{stem}_before_after.png')
    maskwrite_atomic(refined, mask_path)
    imwrite_atomic(before_after_panel(image, coarse, refined), panel_path)
    changed = (refined != coarse).mean() * 100
    print(f'refined {args.image} ({image.shape[1]}x{image.shape[0]}) in {took:.2f} s '
          f'({changed:.1f}% of pixels changed)')
    print(f'refined mask:        {osp.abspath(mask_path)}')
    print(f'before/after picture: {osp.abspath(panel_path)}')


if __name__ == '__main__':
    main()
