"""``mmseg-refiner refine-coco RESULTS.segm.json --ann ANN.json --img-dir DIR --out OUT.json``.

Refines the masks of a COCO-format results file (as written by mmdet's ``CocoMetric`` with
``format_only`` / ``outfile_prefix``, or any detector) without running the detector again.
Every field but ``segmentation`` is kept; masks are written as compressed RLE. Finished
images are appended to ``OUT.partial.jsonl``, so an interrupted run resumes where it stopped.

Both input files are checked in full before any work: every entry of the annotation file's
``images`` list needs ``id``, and those the results use ``file_name``, ``height`` and
``width``; every result needs ``image_id`` (in the annotation file), ``segmentation`` (valid
for that image: :func:`~mmseg_refiner.utils.masks.check_segmentation`) and, when present, a
numeric ``score`` (a result without one is refined). The first problem is reported with the
file, the result index and its image id.
"""
import hashlib
import json
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from tqdm import tqdm

from mmseg_refiner.apis.options import RefineOptions
from mmseg_refiner.cli.common import (add_refining_subcommand, arg, arg_type, build_refiner,
                                      read_json, refine_options)
from mmseg_refiner.utils.io import (InputError, atomic_write, check_output_file, imread_checked,
                                    is_int, is_number)
from mmseg_refiner.utils.masks import check_segmentation, decode_segmentation
from mmseg_refiner.utils.masks import rle_encode as encode_mask  # the former name here


def add_parser(subparsers) -> None:
    """Refine every mask of a COCO-style RESULTS.segm.json (list of {image_id, category_id,
    score, segmentation, ...}); image sizes and file names come from the annotation file. Other
    fields are kept; a result without "score" is refined. Both files are checked in full before
    any work. Resumable: finished images are cached in OUT.partial.jsonl until the final
    (atomic) write. The cache is reused only by a run with the same inputs (the content of the
    results and annotation files, --img-dir) and settings; otherwise the run stops with an
    error (delete the cache or pass --restart to start over)."""
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
            arg('--score-thr', type=arg_type(_score_thr, 'score_thr'), default=0.0,
                help='masks scoring below it (in [0, 1]) are copied unchanged (default: 0)'),
            arg(
                '--restart', action='store_true',
                help='start over, ignoring a partial cache from an earlier run with other '
                'inputs or settings'),
        ])


def _score_thr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f'expected a number in [0, 1], got {text!r}') from None
    if not 0 <= value <= 1:  # NaN too
        raise ValueError(f'score_thr must be in [0, 1], got {text}')
    return value


def _index_images(ann, path: str) -> Dict[object, dict]:
    """{id: image entry} of a COCO annotation file (each entry needs an "id", once)."""
    if not isinstance(ann, dict) or not isinstance(ann.get('images'), list):
        raise InputError(f'{path}: no "images" list (a COCO annotation file is needed)')
    images = {}
    for k, img in enumerate(ann['images']):
        if not isinstance(img, dict):
            raise InputError(f'{path}: images[{k}] is not a dict (got {type(img).__name__})')
        if 'id' not in img:
            raise InputError(f'{path}: images[{k}] has no "id"')
        if not (is_int(img['id']) or isinstance(img['id'], str)):
            raise InputError(f'{path}: images[{k}] has "id" {img["id"]!r}; expected an '
                             'integer or a string')
        if img['id'] in images:
            raise InputError(f'{path}: images[{k}] repeats image id {img["id"]!r}')
        images[img['id']] = dict(img, _index=k)
    return images


def _check_image(img: dict, path: str) -> None:
    """The fields of an image entry that refining it reads."""
    where = f'{path}: images[{img["_index"]}] (id {img["id"]!r})'
    for key in ('file_name', 'height', 'width'):
        if key not in img:
            raise InputError(f'{where} has no "{key}"')
    if not isinstance(img['file_name'], str) or not img['file_name']:
        raise InputError(f'{where} has "file_name" {img["file_name"]!r}; expected a file name')
    for key in ('height', 'width'):
        if not is_int(img[key]) or img[key] < 1:
            raise InputError(f'{where} has "{key}" {img[key]!r}; expected a positive integer')


def _check_result(r: dict, i: int, args, images: Dict[object, dict], checked: set) -> None:
    if 'segmentation' not in r or 'image_id' not in r:
        raise InputError(f'{args.results}: result {i} has no "segmentation"/"image_id"')
    image_id = r['image_id']
    if not (is_int(image_id) or isinstance(image_id, str)):
        raise InputError(f'{args.results}: result {i} has image_id {image_id!r}; expected an '
                         'integer or a string')
    if image_id not in images:
        raise InputError(f'{args.results}: result {i} has image_id {image_id} that '
                         f'is not in {args.ann}')
    where = f'{args.results}: result {i} (image_id {image_id})'
    score = r.get('score', 1.0)
    if not is_number(score):
        raise InputError(f'{where}: "score" is {json.dumps(score)}; expected a number')
    img = images[image_id]
    if image_id not in checked:
        _check_image(img, args.ann)
        checked.add(image_id)
    check_segmentation(r['segmentation'], img['height'], img['width'], where,
                       size_from='the annotation file')


def _load_inputs(args):
    """(results list, {image_id: image info}), both checked in full, with clear errors."""
    results = read_json(args.results, 'results file')
    if not isinstance(results, list):
        raise InputError(f'{args.results}: expected a list of result dicts (COCO results)')
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise InputError(f'{args.results}: result {i} is not a dict (got '
                             f'{type(r).__name__}); expected a list of result dicts')
    images = _index_images(read_json(args.ann, 'annotation file'), args.ann)
    checked = set()
    for i, r in enumerate(results):
        _check_result(r, i, args, images, checked)
    return results, images


def _fingerprint(path: str) -> dict:
    """Identifies a file's content: absolute path, size and sha256."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return dict(path=osp.abspath(path), size=osp.getsize(path), sha256=digest.hexdigest())


def _settings(args) -> dict:
    """What the results depend on (the partial cache is only reused when it matches): the
    content of the results and annotation files, the image folder, the model and options."""
    settings = {k: getattr(args, k) for k in ('config', 'checkpoint', 'score_thr', 'cfg_options')}
    settings.update(results=_fingerprint(args.results), ann=_fingerprint(args.ann),
                    img_dir=osp.abspath(args.img_dir))
    return json.loads(json.dumps(dict(settings, **refine_options(args).to_dict())))


def _what(key: str) -> str:
    """How a mismatch message names a key of :func:`_settings`."""
    named = dict(results='the results file', ann='the annotation file', img_dir='--img-dir')
    if key in named:
        return named[key]
    flag = RefineOptions.cli_spec(key)[1].get('flag') if key in RefineOptions.names() else None
    return '--' + (flag or key.replace('_', '-'))


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
        changed = [_what(k) for k in settings
                   if header.get(k) != settings[k]] if isinstance(header, dict) else []
        raise InputError(f'{path} was written by a run with other inputs or settings '
                         f'({", ".join(changed) or "another version"}): delete it or pass '
                         '--restart to start over')
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


def _check_outputs(args) -> str:
    """The partial cache's path, after refusing output paths that cannot be written or that
    would replace an input file."""
    check_output_file(args.out, '--out')
    for path, what in ((args.results, 'the results file'), (args.ann, '--ann')):
        if osp.isfile(path) and osp.exists(args.out) and osp.samefile(path, args.out):
            raise InputError(f'--out {args.out} is {what}; choose another file')
    cache_path = check_output_file(args.out + '.partial.jsonl', 'the partial cache')
    if args.lvis_ann:
        check_output_file(args.out + '.lvis_eval.json', 'the LVIS evaluation file')
    return cache_path


def run(args) -> int:
    if args.lvis_ann and not osp.isfile(args.lvis_ann):
        raise InputError(f'--lvis-ann: annotation file {args.lvis_ann} not found')
    cache_path = _check_outputs(args)
    results, images = _load_inputs(args)
    by_image = OrderedDict()
    for i, r in enumerate(results):
        by_image.setdefault(r['image_id'], []).append(i)
    settings = _settings(args)
    records = _read_cache(cache_path, settings, args.restart)
    done = {r['image_id'] for r in records}
    todo = [(k, v) for k, v in by_image.items() if k not in done]
    if done:
        print(f'{len(by_image) - len(todo)} of {len(by_image)} image(s) already refined '
              f'({cache_path}), resuming')
    if todo:
        _refine_images(args, todo, images, results, records, cache_path, settings)
    refined = {int(i): segm for r in records for i, segm in r['refined']}
    _write_output(args, results, refined)
    if osp.exists(cache_path):
        os.remove(cache_path)
    print(f'refined {len(refined)} of {len(results)} mask(s) of {len(by_image)} image(s) '
          f'-> {args.out}')
    if args.lvis_ann:
        _report_lvis(args, results)
    return 0


def _refine_images(args, todo, images, results, records, cache_path, settings) -> None:
    """Refine image by image; the cache is rewritten (header + valid records), then appended."""
    refiner = build_refiner(args)
    from mmseg_refiner.apis import check_options
    check_options(refiner, refine_options(args))  # a bad option: one error before any image
    with atomic_write(cache_path) as tmp, open(tmp, 'w') as cache:  # drops a torn last line
        cache.write(json.dumps({'header': settings}) + '\n')
        cache.writelines(json.dumps(r) + '\n' for r in records)
    with open(cache_path, 'a') as cache:
        for image_id, indices in tqdm(todo, desc='refine-coco', unit='img', file=sys.stdout,
                                      disable=len(todo) < 2):
            try:
                refined = _refine_image(refiner, args, images[image_id], results, indices)
            except InputError as exc:  # the image file: name the image it belongs to
                raise InputError(f'image_id {image_id!r} of {args.ann}: {exc}') from exc
            record = dict(image_id=image_id, refined=refined)
            cache.write(json.dumps(record) + '\n')
            cache.flush()
            records.append(record)
