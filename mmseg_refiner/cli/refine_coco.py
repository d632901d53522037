"""``mmseg-refiner refine-coco RESULTS.segm.json --ann ANN.json --img-dir DIR --out OUT.json``.

Refines the masks of a COCO-format results file (as written by mmdet's ``CocoMetric`` with
``format_only`` / ``outfile_prefix``, or any detector) without running the detector again.
Every field but ``segmentation`` is kept; masks are written as compressed RLE. Finished
images are appended to ``OUT.partial.jsonl``, so an interrupted run resumes where it stopped.
"""
import json
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from tqdm import tqdm

from mmseg_refiner.cli.common import (add_refining_subcommand, arg, build_refiner, read_json,
                                      refine_options)
from mmseg_refiner.utils.io import InputError, atomic_write, imread_checked
from mmseg_refiner.utils.masks import decode_segmentation
from mmseg_refiner.utils.masks import rle_encode as encode_mask  # the former name here


def add_parser(subparsers) -> None:
    """Refine every mask of a COCO-style RESULTS.segm.json (list of {image_id, category_id,
    score, segmentation, ...}); image sizes and file names come from the annotation file. Other
    fields are kept. Resumable: finished images are cached in OUT.partial.jsonl until the final
    (atomic) write."""
    add_refining_subcommand(
        subparsers, 'refine-coco', run,
        help='refine the masks of a COCO results file (RLE in, RLE out)',
        description=add_parser.__doc__, arguments=[
            arg('results', help='COCO results json (e.g. mmdet results.segm.json)'),
            arg('--ann', required=True, help='COCO annotation json with the "images" list'),
            arg('--img-dir', required=True, help='folder of the images (file_name relative)'),
            arg('--out', required=True, help='refined results json'),
            arg(
                '--lvis-ann', metavar='FILE',
                help='then score the input and the refined masks against this LVIS-format '
                "annotation file (mask AP and boundary AP, the paper's COCO protocol with "
                'cocofied LVIS val); writes OUT.lvis_eval.json'),
            arg('--score-thr', type=float, default=0.0,
                help='masks scoring below it are copied unchanged (default: 0)'),
            arg('--restart', action='store_true',
                help='ignore a partial cache from an earlier run with other settings'),
        ])


def _load_inputs(args):
    """(results list, {image_id: image info}) with clear errors."""
    results = read_json(args.results, 'results file')
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise InputError(f'{args.results}: expected a list of result dicts (COCO results)')
    ann = read_json(args.ann, 'annotation file')
    if not isinstance(ann, dict) or not isinstance(ann.get('images'), list):
        raise InputError(f'{args.ann}: no "images" list (a COCO annotation file is needed)')
    images = {img['id']: img for img in ann['images']}
    for i, r in enumerate(results):
        if 'segmentation' not in r or 'image_id' not in r:
            raise InputError(f'{args.results}: result {i} has no "segmentation"/"image_id"')
        if r['image_id'] not in images:
            raise InputError(f'{args.results}: result {i} has image_id {r["image_id"]} that '
                             f'is not in {args.ann}')
    return results, images


def _settings(args) -> dict:
    """What the results depend on (the partial cache is only reused when it matches)."""
    keys = ('results', 'config', 'checkpoint', 'score_thr', 'cfg_options')
    settings = {
        k: osp.abspath(v) if k == 'results' else v
        for k, v in ((k, getattr(args, k)) for k in keys)
    }
    return json.loads(json.dumps(dict(settings, **refine_options(args).to_dict())))


def _read_cache(path: str, settings: dict, restart: bool) -> List[dict]:
    """Finished-image records of a partial cache (a torn last line is dropped)."""
    if restart or not osp.isfile(path):
        return []
    with open(path) as f:
        lines = f.read().splitlines()
    try:
        header = json.loads(lines[0])['header'] if lines else None
    except (ValueError, KeyError, TypeError):
        header = None
    if header != settings:
        raise InputError(f'{path} was written by a run with other inputs or settings: delete '
                         f'it or pass --restart')
    records = []
    for line in lines[1:]:
        try:
            record = json.loads(line)
            records.append(dict(image_id=record['image_id'], refined=list(record['refined'])))
        except (ValueError, KeyError, TypeError):
            break  # interrupted while writing this line: redo that image
    return records


def _refine_image(refiner, args, info: dict, results: List[dict], indices: List[int]) -> list:
    """[[result index, refined RLE]] for the results of one image above the score threshold."""
    todo = [i for i in indices if results[i].get('score', 1.0) >= args.score_thr]
    if not todo:
        return []
    from mmseg_refiner.apis import refine_masks
    h, w = int(info['height']), int(info['width'])
    image = imread_checked(osp.join(args.img_dir, info['file_name']), 'image')
    if image.shape[:2] != (h, w):
        raise InputError(f'image {info["file_name"]} is {image.shape[1]}x{image.shape[0]} '
                         f'but the annotation file says {w}x{h}')
    masks = np.stack([
        decode_segmentation(results[i]['segmentation'], h, w, f'{args.results}: result {i}',
                            size_from='the annotation file') for i in todo
    ])
    refined = refine_masks(refiner, image, masks, options=refine_options(args))
    return [[i, encode_mask(m)] for i, m in zip(todo, refined)]


def _write_output(args, results: List[dict], refined: Dict[int, dict]) -> None:
    out = [dict(r, segmentation=refined[i]) if i in refined else r for i, r in enumerate(results)]
    with atomic_write(args.out) as tmp, open(tmp, 'w') as f:
        json.dump(out, f)


def _report_lvis(args, results: List[dict]) -> None:
    """Print and write mask AP / boundary AP (percent) of the input and the refined results."""
    from mmseg_refiner.evaluation.lvis import load_lvis, lvis_mask_and_boundary_ap
    gt = load_lvis(args.lvis_ann)
    scores = dict(input=lvis_mask_and_boundary_ap(gt, results),
                  refined=lvis_mask_and_boundary_ap(gt, read_json(args.out, 'refined results')))
    print(f'LVIS evaluation against {args.lvis_ann} (percent):')
    print(f'{"metric":>12} | {"input":>7} | {"refined":>7} | {"delta":>7}')
    for key in ('segm_AP', 'boundary_AP'):
        a, b = 100 * scores['input'][key], 100 * scores['refined'][key]
        print(f'{key:>12} | {a:7.2f} | {b:7.2f} | {b - a:+7.2f}')
    with atomic_write(args.out + '.lvis_eval.json') as tmp, open(tmp, 'w') as f:
        json.dump(dict(ann=args.lvis_ann, **scores), f, indent=2)


def run(args) -> int:
    if args.lvis_ann and not osp.isfile(args.lvis_ann):
        raise InputError(f'--lvis-ann: annotation file {args.lvis_ann} not found')
    results, images = _load_inputs(args)
    by_image = OrderedDict()
    for i, r in enumerate(results):
        by_image.setdefault(r['image_id'], []).append(i)
    cache_path = args.out + '.partial.jsonl'
    records = _read_cache(cache_path, _settings(args), args.restart)
    done = {r['image_id'] for r in records}
    todo = [(k, v) for k, v in by_image.items() if k not in done]
    if done:
        print(f'{len(by_image) - len(todo)} of {len(by_image)} image(s) already refined '
              f'({cache_path}), resuming')
    if todo:
        _refine_images(args, todo, images, results, records, cache_path)
    refined = {int(i): segm for r in records for i, segm in r['refined']}
    _write_output(args, results, refined)
    if osp.exists(cache_path):
        os.remove(cache_path)
    print(f'refined {len(refined)} of {len(results)} mask(s) of {len(by_image)} image(s) '
          f'-> {args.out}')
    if args.lvis_ann:
        _report_lvis(args, results)
    return 0


def _refine_images(args, todo, images, results, records, cache_path) -> None:
    """Refine image by image; the cache is rewritten (header + valid records), then appended."""
    refiner = build_refiner(args)
    with atomic_write(cache_path) as tmp, open(tmp, 'w') as cache:  # drops a torn last line
        cache.write(json.dumps({'header': _settings(args)}) + '\n')
        cache.writelines(json.dumps(r) + '\n' for r in records)
    with open(cache_path, 'a') as cache:
        for image_id, indices in tqdm(todo, desc='refine-coco', unit='img', file=sys.stdout,
                                      disable=len(todo) < 2):
            refined = _refine_image(refiner, args, images[image_id], results, indices)
            record = dict(image_id=image_id, refined=refined)
            cache.write(json.dumps(record) + '\n')
            cache.flush()
            records.append(record)
