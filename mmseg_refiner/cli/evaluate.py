"""``mmseg-refiner evaluate --gt DIR --pred DIR [--coarse DIR]``: score mask folders.

Masks are paired by file stem. Prints mean IoU / mBA / Boundary IoU (percent); with
``--pooled`` also the pooled IoU (sum of intersections / sum of unions, as BIG / DIS results
are published); with ``--coarse`` also before / after / delta and how many images got worse.
Writes a per-image CSV, a JSON report and before/after/GT panels of the worst and best
images on request.
"""
import csv
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np
from tqdm import tqdm

from mmseg_refiner.cli.common import PATTERN_HELP, dilation_ratio, list_images, pair_files
from mmseg_refiner.utils.io import InputError


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
    p.add_argument('--dilation-ratio', type=dilation_ratio, default=0.02,
                   help='Boundary IoU band width, fraction of the diagonal (default: 0.02)')
    p.add_argument(
        '--pooled', action='store_true',
        help='also report the pooled IoU (sum of intersections / sum of unions over '
        'all images, as BIG / DIS results are published) next to the mean IoU')
    for key, example in (('gt', '{id}_gt.png'), ('pred', '{id}.png'), ('coarse', '{id}_seg.png'),
                         ('image', '{id}_im.jpg')):
        p.add_argument(
            f'--{key}-pattern', metavar='PATTERN',
            help=f'--{"img" if key == "image" else key} file names, e.g. '
            f"'{example}' (BIG / DIS)" + ('' if key != 'gt' else f': {PATTERN_HELP}'))
    p.set_defaults(func=run)


def _patterns(args) -> dict:
    return {k: getattr(args, f'{k}_pattern') for k in ('gt', 'pred', 'coarse')}


def _pair(gt_dir: str, pred_dir: str, coarse_dir: Optional[str],
          patterns: Optional[dict] = None) -> List[dict]:
    """[{'name', 'gt', 'pred'[, 'coarse']}] for every GT; missing partners are an error.

    ``patterns``: ``{'gt' | 'pred' | 'coarse': file name pattern}`` (``--gt-pattern`` ...).
    """
    folders = dict(gt=gt_dir, pred=pred_dir, **({'coarse': coarse_dir} if coarse_dir else {}))
    pairs, missing = pair_files(folders, patterns)
    gt_ids = {p['name'] for p in pairs}.union(*missing.values())
    if not gt_ids:
        raise InputError(f'no mask files (png/jpg/bmp/tif) in --gt folder {gt_dir}')
    for key, ids in missing.items():
        if ids:
            shown = ', '.join(ids[:10]) + (' ...' if len(ids) > 10 else '')
            raise InputError(f'{len(ids)} of {len(gt_ids)} ground-truth masks have no '
                             f'--{key} mask of the same name in {folders[key]}: {shown}')
    extra = [
        s for s in list_images(pred_dir, (patterns or {}).get('pred'), '--pred-pattern')
        if s not in gt_ids
    ] if osp.isdir(pred_dir) else []
    if extra:
        print(
            f'warning: {len(extra)} --pred masks have no ground truth and are ignored '
            f'(e.g. {extra[0]})', file=sys.stderr)
    return pairs


def _score_pair(pair: dict, dilation_ratio: float, pooled: bool = False) -> Dict[str, float]:
    """Per-image scores (percent): IoU, mBA, BIoU and, with a coarse mask, coarse_* and
    delta_* (refined minus coarse); with ``pooled`` the pixel counts inter / union."""
    from mmseg_refiner.evaluation import METRIC_NAMES, iou_counts, score_masks
    from mmseg_refiner.utils.io import maskread_checked
    masks = {
        k: maskread_checked(pair[k], f'{k} mask')
        for k in ('gt', 'pred', 'coarse') if k in pair
    }
    for key, mask in masks.items():
        if mask.shape != masks['gt'].shape:
            raise InputError(f'{key} mask {pair[key]} is {mask.shape[1]}x{mask.shape[0]} (WxH) '
                             f'but ground truth {pair["gt"]} is '
                             f'{masks["gt"].shape[1]}x{masks["gt"].shape[0]}')
    row = dict(name=pair['name'], **score_masks(masks['pred'], masks['gt'], dilation_ratio))
    if pooled:
        row.update(iou_counts(masks['pred'], masks['gt']))
    if 'coarse' in masks:
        row.update(score_masks(masks['coarse'], masks['gt'], dilation_ratio, prefix='coarse_'))
        row.update({f'delta_{m}': row[m] - row[f'coarse_{m}'] for m in METRIC_NAMES})
        if pooled:
            row.update(iou_counts(masks['coarse'], masks['gt'], prefix='coarse_'))
    return row


def format_table(summary: Dict[str, float]) -> str:
    """The printed table: one row per metric; before / after / delta with coarse masks."""
    from mmseg_refiner.evaluation.summary import METRIC_NAMES, WORSE_POINTS
    with_coarse = 'coarse_IoU' in summary
    header = ['metric', 'coarse', 'refined', 'delta'] if with_coarse else ['metric', 'mean']
    lines = [' | '.join(f'{h:>8}' for h in header)]
    lines.append('-' * len(lines[0]))
    names = list(METRIC_NAMES) + (['pooled_IoU'] if 'pooled_IoU' in summary else [])
    for m in names:
        vals = ([summary[f'coarse_{m}'], summary[m], summary[f'delta_{m}']]
                if with_coarse else [summary[m]])
        label = 'pooledIoU' if m == 'pooled_IoU' else m
        lines.append(' | '.join([f'{label:>8}'] + [f'{v:>8.2f}' for v in vals]))
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
    images = list_images(args.img, args.image_pattern, '--image-pattern') if args.img else {}
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
    from mmseg_refiner.evaluation import IOU_KINDS, summarize
    from mmseg_refiner.utils.io import check_output_dir, check_output_file
    for flag in ('json', 'csv'):  # before the work, not after it
        if getattr(args, flag):
            check_output_file(getattr(args, flag), f'--{flag}')
    if args.vis:
        check_output_dir(args.vis, '--vis')
    pairs = _pair(args.gt, args.pred, args.coarse, _patterns(args))
    rows = [
        _score_pair(p, args.dilation_ratio, args.pooled)
        for p in tqdm(pairs, desc='evaluate', unit='img', disable=len(pairs) < 2)
    ]
    summary = summarize(rows, pooled=args.pooled)
    print(format_table(summary))
    if args.csv:
        _write_csv(rows, args.csv)
    if args.json:
        kinds = {k: v for k, v in IOU_KINDS.items() if k in summary}
        _write_json(
            dict(gt=args.gt, pred=args.pred, coarse=args.coarse,
                 dilation_ratio=args.dilation_ratio, iou_kinds=kinds, summary=summary,
                 per_image=rows), args.json)
    if args.vis:
        print(f'wrote {_write_panels(pairs, rows, args)} panels to {args.vis}')
    return 0
