"""Export a training checkpoint as a small, self-describing refiner checkpoint.

The output holds the model weights (optionally float16) and, under ``meta.model_cfg``, the
model config, so ``init_refiner(checkpoint=OUT)`` needs no config file. This is how the
shipped ``mmseg_refiner/checkpoints/segrefiner_small_people_hair.pth`` was made.

Example::

    python tools/export_checkpoint.py configs/segrefiner/segrefiner_small_people_hair_stage2.py \
        work_dirs/stage2/iter_3000.pth mmseg_refiner/checkpoints/segrefiner_small_people_hair.pth
"""
import argparse
import hashlib
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_refiner.apis import init_refiner
from mmseg_refiner.cli.common import error_text
from mmseg_refiner.utils.checkpoint import load_checkpoint
from mmseg_refiner.utils.io import atomic_write, check_output_file
from mmseg_refiner.utils.stack_warnings import filter_stack_warnings


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('out')
    p.add_argument('--fp32', action='store_true', help='keep float32 weights')
    p.add_argument('--note', default='', help='free text stored in meta.note')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='unpickle the checkpoint fully (only for files you trust)')
    return p.parse_args()


def main():
    filter_stack_warnings()
    args = parse_args()
    try:
        check_output_file(args.out, 'out')
        model = init_refiner(args.config, args.checkpoint, device='cpu',
                             trust_checkpoint=args.trust_checkpoint)
    except (ValueError, KeyError, FileNotFoundError) as exc:  # InputError: a ValueError
        sys.exit(f'tools/export_checkpoint.py: error: {error_text(exc)}')
    ckpt = load_checkpoint(args.checkpoint, trust=args.trust_checkpoint)
    dtype = torch.float32 if args.fp32 else torch.float16
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    meta = dict(model_cfg=model.cfg.model.to_dict(), note=args.note,
                source=osp.basename(args.checkpoint), iter=ckpt.get('meta', {}).get('iter'))
    with atomic_write(args.out) as tmp:
        torch.save(dict(state_dict=state, meta=meta), tmp)
    digest = hashlib.sha256(open(args.out, 'rb').read()).hexdigest()
    print(f'wrote {args.out}: {osp.getsize(args.out) / 1e6:.1f} MB, sha256 {digest[:16]}..., '
          f'iter {meta["iter"]}')


if __name__ == '__main__':
    main()
