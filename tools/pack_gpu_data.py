"""Pack down-scaled copies of image + mask sets for a machine that gets only the working tree.

A rented GPU machine may receive nothing but a copy of the repository (size-limited), not
the data folder beside it. This writes the named sets' splits, down-scaled so the long side
is at most ``--max-side`` (JPEG images, PNG masks), into a folder that git ignores; carry
that folder along and point ``REFINER_DATA_ROOT`` at it (``tools/gpu_train.sh``).

The data stays research-only: the tool refuses a destination inside the repository that
git does not ignore, so the copy can never be committed.

Example::

    echo /.gpu_data/ >> .git/info/exclude
    python tools/pack_gpu_data.py ../shared/data .gpu_data   # people + hair: about 34 MB
    # on the GPU machine:  REFINER_DATA_ROOT=.gpu_data bash tools/gpu_train.sh
"""
import argparse
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('src', help='folder holding the sets (e.g. ../shared/data)')
    p.add_argument('dst', help='output folder (git-ignored when inside the repository)')
    p.add_argument('--sets', nargs='+', default=['people', 'hair'])
    p.add_argument('--splits', nargs='+', default=['train.txt', 'val.txt'])
    p.add_argument('--max-side', type=int, default=320)
    p.add_argument('--quality', type=int, default=80, help='JPEG quality')
    return p.parse_args(argv)


def check_destination(dst: str) -> None:
    """Refuse a destination inside the repository that git would track."""
    dst = osp.abspath(dst)
    if osp.commonpath([dst, REPO]) != REPO:
        return
    probe = osp.relpath(osp.join(dst, 'probe.jpg'), REPO)
    ignored = subprocess.run(['git', '-C', REPO, 'check-ignore', '-q', probe]).returncode == 0
    if not ignored:
        sys.exit(f'pack_gpu_data.py: {dst} is inside the repository and not git-ignored; the '
                 f'data is research-only: add it to .git/info/exclude first')


def pack_one(src_set: str, dst_set: str, sample_id: str, args) -> None:
    img = cv2.imread(osp.join(src_set, 'images', sample_id + '.jpg'), cv2.IMREAD_COLOR)
    mask = cv2.imread(osp.join(src_set, 'masks', sample_id + '.png'), cv2.IMREAD_GRAYSCALE)
    if img is None or mask is None:
        raise FileNotFoundError(f'{src_set}: image or mask of {sample_id} missing')
    scale = min(1.0, args.max_side / max(img.shape[:2]))
    size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    fg = cv2.resize((mask > 0).astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    cv2.imwrite(osp.join(dst_set, 'images', sample_id + '.jpg'), img,
                [cv2.IMWRITE_JPEG_QUALITY, args.quality])
    cv2.imwrite(osp.join(dst_set, 'masks', sample_id + '.png'), fg.astype(np.uint8) * 255)


def main(argv=None):
    args = parse_args(argv)
    check_destination(args.dst)
    for name in args.sets:
        src_set, dst_set = osp.join(args.src, name), osp.join(args.dst, name)
        os.makedirs(osp.join(dst_set, 'images'), exist_ok=True)
        os.makedirs(osp.join(dst_set, 'masks'), exist_ok=True)
        ids = []
        for split in args.splits:
            path = osp.join(src_set, split)
            if not osp.isfile(path):
                continue
            with open(path, encoding='utf-8') as f:
                split_ids = [line.strip() for line in f if line.strip()]
            with open(osp.join(dst_set, split), 'w', encoding='utf-8') as f:
                f.write('\n'.join(split_ids) + '\n')
            ids += split_ids
        for sample_id in dict.fromkeys(ids):
            pack_one(src_set, dst_set, sample_id, args)
        print(f'{name}: {len(set(ids))} samples -> {dst_set}')


if __name__ == '__main__':
    main()
