"""``mmseg-refiner evaluate --gt DIR --pred DIR [--coarse DIR]``: score mask folders.

Masks are paired by file stem. Prints mean IoU / mBA / Boundary IoU (percent); with
``--coarse`` also before / after / delta and how many images got worse. Writes a per-image
CSV, a JSON report and before/after/GT panels of the worst and best images on request.
"""
import csv
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np
from tqdm import tqdm

from mmseg_refiner.cli.common import list_images
from mmseg_refiner.utils.io import InputError

METRIC_NAMES = ('IoU', 'mBA', 'BIoU')
WORSE_POINTS = 2.0  # "clearly worse": IoU lower by more than this many points


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'evaluate', help='score predicted masks against ground truth (IoU, mBA, Boundary IoU)',
        description='Pair --gt and --pred (and --coarse) mask files by name and report IoU, '
        'mBA (CascadePSP) and Boundary IoU in percent. Every ground truth needs a prediction.')
    p.add_argument('--gt', required=True, help='folder of ground-truth masks')
    p.add_argument('--pred', required=True, help='folder of predicted (refined) masks')
    p.add_argument('--coarse', help='folder of the coarse input masks: report before/after')
    p.add_argument('--img', help='folder of the images, for --vis (default: grey backdrop)')
    p.add_argument('--json', help='write the summary and per-image scores to this JSON file')
    p.add_argument('--csv', help='write per-image scores to this CSV file')
    p.add_argument('--vis', help='write before/after/GT panels of the worst and best images here')
    p.add_argument('--num-vis', type=int, default=5,
                   help='panels of this many worst and this many best images (default: 5)')
    p.add_argument('--dilation-ratio', type=float, default=0.02,
                   help='Boundary IoU band width, fraction of the diagonal (default: 0.02)')
    p.set_defaults(func=run)


def _pair(gt_dir: str, pred_dir: str, coarse_dir: Optional[str]) -> List[dict]:
    """[{'name', 'gt', 'pred'[, 'coarse']}] for every GT; missing partners are an error."""
    folders = dict(gt=gt_dir, pred=pred_dir, **({'coarse': coarse_dir} if coarse_dir else {}))
    files = {key: list_images(folder) for key, folder in folders.items()}
    if not files['gt']:
        raise InputError(f'no mask files (png/jpg/bmp/tif) in --gt folder {gt_dir}')
    for key in files:
        missing = [s for s in files['gt'] if s not in files[key]]
        if missing:
            shown = ', '.join(missing[:10]) + (' ...' if len(missing) > 10 else '')
            raise InputError(f'{len(missing)} of {len(files["gt"])} ground-truth masks have no '
                             f'--{key} mask of the same name in {folders[key]}: {shown}')
    extra = [s for s in files['pred'] if s not in files['gt']]
    if extra:
        print(f'warning: {len(extra)} --pred masks have no ground truth and are ignored '
              f'(e.g. {extra[0]})', file=sys.stderr)
    return [dict(name=s, **{k: files[k][s] for k in files}) for s in files['gt']]


def _score_pair(pair: dict, dilation_ratio: float) -> Dict[str, float]:
    """Per-image scores (percent): IoU, mBA, BIoU and, with a coarse mask, coarse_* and
    delta_* (refined minus coarse)."""
    from mmseg_refiner.evaluation import score_masks
    from mmseg_refiner.utils.io import maskread_checked
    masks = {k: maskread_checked(pair[k], f'{k} mask') for k in ('gt', 'pred', 'coarse')
             if k in pair}
    for key, mask in masks.items():
        if mask.shape != masks['gt'].shape:
            raise InputError(f'{key} mask {pair[key]} is {mask.shape[1]}x{mask.shape[0]} (WxH) '
                             f'but ground truth {pair["gt"]} is '
                             f'{masks["gt"].shape[1]}x{masks["gt"].shape[0]}')
    row = dict(name=pair['name'], **score_masks(masks['pred'], masks['gt'], dilation_ratio))
    if 'coarse' in masks:
        row.update(score_masks(masks['coarse'], masks['gt'], dilation_ratio, prefix='coarse_'))
        row.update({f'delta_{m}': row[m] - row[f'coarse_{m}'] for m in METRIC_NAMES})
    return row


def summarize(rows: List[dict]) -> Dict[str, float]:
    """Means of every score column; with coarse scores, counts of images that got worse.

    Returns:
        dict: ``num_images``, ``IoU``, ``mBA``, ``BIoU`` (+ ``coarse_*``, ``delta_*``,
        ``num_worse`` (IoU dropped), ``num_worse_2pt`` (IoU dropped by > 2 points)).
    """
    keys = [k for k in rows[0] if k != 'name']
    out = dict(num_images=len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in keys})
    if 'delta_IoU' in rows[0]:
        out['num_worse'] = int(sum(r['delta_IoU'] < 0 for r in rows))
        out['num_worse_2pt'] = int(sum(r['delta_IoU'] < -WORSE_POINTS for r in rows))
    return out


def format_table(summary: Dict[str, float]) -> str:
    """The printed table: one row per metric; before / after / delta with coarse masks."""
    with_coarse = 'coarse_IoU' in summary
    header = ['metric', 'coarse', 'refined', 'delta'] if with_coarse else ['metric', 'mean']
    lines = [' | '.join(f'{h:>8}' for h in header)]
    lines.append('-' * len(lines[0]))
    for m in METRIC_NAMES:
        vals = ([summary[f'coarse_{m}'], summary[m], summary[f'delta_{m}']] if with_coarse
                else [summary[m]])
        lines.append(' | '.join([f'{m:>8}'] + [f'{v:>8.2f}' for v in vals]))
    lines.append(f'{summary["num_images"]} images')
    if with_coarse:
        lines[-1] += (f'; IoU worse on {summary["num_worse"]}, by more than '
                      f'{WORSE_POINTS:g} points on {summary["num_worse_2pt"]}')
    return '\n'.join(lines)


def _write_csv(rows: List[dict], path: str) -> None:
    from mmseg_refiner.utils.io import atomic_write
    with atomic_write(path) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_json(obj: dict, path: str) -> None:
    from mmseg_refiner.utils.io import atomic_write
    with atomic_write(path) as tmp, open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)


def _write_panels(pairs: List[dict], rows: List[dict], args) -> int:
    """Panels of the ``--num-vis`` worst and best images (by IoU gain, else by IoU)."""
    from mmseg_refiner.utils.io import imread_checked, imwrite_atomic, maskread_checked
    from mmseg_refiner.vis import before_after_panel
    key = 'delta_IoU' if 'delta_IoU' in rows[0] else 'IoU'
    order = np.argsort([r[key] for r in rows], kind='stable')
    n = max(0, min(args.num_vis, len(rows)))
    picks = [('worst', i) for i in order[:n]] + [('best', i) for i in order[::-1][:n]]
    images = list_images(args.img) if args.img else {}
    for rank, (tag, i) in enumerate(picks):
        pair, row = pairs[i], rows[i]
        masks = {k: maskread_checked(pair[k]) for k in ('gt', 'pred', 'coarse') if k in pair}
        image = imread_checked(images[pair['name']]) if pair['name'] in images else None
        if image is not None and image.shape[:2] != masks['gt'].shape:
            raise InputError(f'image {images[pair["name"]]} size differs from its ground truth')
        titles = ([f'coarse IoU {row["coarse_IoU"]:.1f}'] if 'coarse' in masks else []) + \
            [f'refined IoU {row["IoU"]:.1f}', 'ground truth']
        panel = before_after_panel(image, masks.get('coarse'), masks['pred'], masks['gt'],
                                   titles=titles)
        imwrite_atomic(panel, osp.join(args.vis, f'{tag}_{rank % n:02d}_{pair["name"]}.png'))
    return len(picks)


def run(args) -> int:
    pairs = _pair(args.gt, args.pred, args.coarse)
    rows = [_score_pair(p, args.dilation_ratio)
            for p in tqdm(pairs, desc='evaluate', unit='img', disable=len(pairs) < 2)]
    summary = summarize(rows)
    print(format_table(summary))
    if args.csv:
        _write_csv(rows, args.csv)
    if args.json:
        _write_json(dict(gt=args.gt, pred=args.pred, coarse=args.coarse,
                         dilation_ratio=args.dilation_ratio, summary=summary, per_image=rows),
                    args.json)
    if args.vis:
        print(f'wrote {_write_panels(pairs, rows, args)} panels to {args.vis}')
    return 0
