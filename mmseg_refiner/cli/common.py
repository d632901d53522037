"""Argument helpers and the resumable file loop shared by the subcommands."""
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Tuple

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def add_refiner_args(parser, with_mode: bool = True, with_guard: bool = False) -> None:
    """--config / --checkpoint / --device / --steps / --seed (and --mode, --no-guard)."""
    parser.add_argument('--config', help='refiner config (default: the shipped model)')
    parser.add_argument('--checkpoint', help='refiner weights (default: the shipped model)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument('--steps', type=int, default=None,
                        help='reverse steps (1..T; default: the config\'s, T=6)')
    parser.add_argument('--seed', type=int, default=0, help='sampling seed (default: 0)')
    if with_mode:
        parser.add_argument('--mode', default='auto', choices=('auto', 'instance', 'global', 'hr'),
                            help='inference strategy (default: auto)')
    if with_guard:
        parser.add_argument('--no-guard', action='store_true',
                            help='turn the growth guard off (the reference behaviour: changes '
                            'anywhere, new detached regions allowed)')


def guard_arg(args):
    """The ``guard`` argument of the API for ``--no-guard``: False (off) or None (config's)."""
    return False if getattr(args, 'no_guard', False) else None


def build_refiner(args):
    from mmseg_refiner.apis import init_refiner
    return init_refiner(args.config, args.checkpoint, device=args.device)


def list_images(folder: str) -> Dict[str, str]:
    """{stem: path} of the image files in ``folder`` (non-recursive)."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'folder not found: {folder}')
    return {osp.splitext(f)[0]: osp.join(folder, f) for f in sorted(os.listdir(folder))
            if f.lower().endswith(IMAGE_EXTS) and not f.startswith('.')}


def pair_by_stem(a: str, b: str, a_name: str, b_name: str) -> Tuple[List[tuple], List[str]]:
    """Pair files of two folders (or two files) by stem.

    Returns ``([(stem, a_path, b_path)], [stems only in a])``; raises when nothing pairs.
    """
    if osp.isfile(a) or osp.isfile(b):
        for path, name in ((a, a_name), (b, b_name)):
            if not osp.isfile(path):
                raise FileNotFoundError(f'{name} not found: {path} (give two files or two '
                                        f'folders)')
        return [(osp.splitext(osp.basename(a))[0], a, b)], []
    left, right = list_images(a), list_images(b)
    pairs = [(s, left[s], right[s]) for s in left if s in right]
    if not pairs:
        raise FileNotFoundError(f'no {a_name} in {a} has a {b_name} of the same name in {b}')
    return pairs, [s for s in left if s not in right]


def read_json(path: str, what: str):
    """Parse a json file; errors name ``what`` and the file."""
    import json

    from mmseg_refiner.utils.io import InputError
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as exc:
        raise InputError(f'{what} {path} is not valid json: {exc}') from exc


def run_over_pairs(args, pairs, unpaired, is_done, refine_one, desc: str, noun: str,
                   unpaired_msg: str) -> int:
    """The resumable loop of the file-refining subcommands.

    Skips pairs whose outputs exist (``is_done(stem)``) unless ``args.overwrite``, builds the
    refiner once, shows a progress bar, reports a failing pair with its name and goes on.

    Returns:
        int: exit status, 1 if any pair failed.
    """
    from tqdm import tqdm
    for stem in unpaired:
        print(unpaired_msg.format(stem=stem), file=sys.stderr)
    todo = [p for p in pairs if args.overwrite or not is_done(p[0])]
    if len(todo) < len(pairs):
        print(f'{len(pairs) - len(todo)} of {len(pairs)} already done in {args.out}, skipped')
    if not todo:
        return 0
    refiner = build_refiner(args)
    failed, start = [], time.perf_counter()
    for stem, first, second in tqdm(todo, desc=desc, unit='img', file=sys.stdout,
                                    disable=len(todo) < 2):
        try:
            refine_one(refiner, stem, first, second, args)
        except (ValueError, OSError) as exc:  # InputError is a ValueError
            failed.append(stem)
            print(f'error: {stem} ({first}, {second}): {exc}', file=sys.stderr)
    print(f'refined {len(todo) - len(failed)} {noun} in '
          f'{time.perf_counter() - start:.1f} s -> {args.out}')
    return 1 if failed else 0
