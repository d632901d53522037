"""Quality benchmark: coarse masks of three kinds, refined per variant and step count.

For a folder ``<root>/images/<id>.jpg`` + ``<root>/masks/<id>.png`` (optional split file of
ids), makes deterministic coarse masks (:data:`COARSE_KINDS`), refines them for each variant
(:func:`parse_variant`) and number of reverse steps, and reports per kind and variant:
before / after IoU, mBA and Boundary IoU, the share of images made worse by more than 2 IoU
points, mean U-Net calls per mask and seconds per image. Per-image results are cached in the
output folder, so an interrupted run continues where it stopped.
"""
import hashlib
import json
import os
import os.path as osp
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from mmseg_refiner.apis.options import RefineOptions
from mmseg_refiner.benchmark.coarse import (COARSE_KINDS, LOWRES_FACTOR, PERTURB_IOU, POLYGON_EPS,
                                            make_coarse)
from mmseg_refiner.benchmark.timing import UNetCallCounter, check_positive
from mmseg_refiner.benchmark.variants import DEFAULT_VARIANT, Variant, unique_variants
from mmseg_refiner.evaluation import METRIC_NAMES as METRICS
from mmseg_refiner.evaluation import score_masks, summarize
from mmseg_refiner.inference.guard import guard_masks, resolve_guard
from mmseg_refiner.inference.strategies import choose_mode
from mmseg_refiner.utils.io import InputError


def list_pairs(root: str, split: Optional[str] = None,
               limit: Optional[int] = None) -> List[Tuple[str, str, str]]:
    """``[(id, image_path, mask_path)]`` of ``<root>/images`` + ``<root>/masks/<id>.png``.

    Sorted by id, or in the order of ``split``; pairing is the CLI's
    (:func:`mmseg_refiner.cli.common.pair_files`).

    Args:
        root (str): Dataset folder.
        split (str, optional): File of ids, one a line (a path, or a name inside ``root``).
        limit (int, optional): Keep the first ``limit`` (>= 1) ids; None: all.
    """
    from mmseg_refiner.cli.common import pair_files
    if limit is not None:
        check_positive(limit=limit)  # None: all ids
    img_dir, mask_dir = osp.join(root, 'images'), osp.join(root, 'masks')
    for d in (img_dir, mask_dir):
        if not osp.isdir(d):
            raise InputError(f'{d} not found: expected <root>/images and <root>/masks')
    pairs, missing = pair_files(dict(image=img_dir, mask=mask_dir), dict(mask='{id}.png'))
    found = {p['name']: (p['name'], p['image'], p['mask']) for p in pairs}
    ids = sorted(set(found) | set(missing['mask']))
    if split:
        path = split if osp.isfile(split) else osp.join(root, split)
        if not osp.isfile(path):
            raise InputError(f'split file not found: {split} (nor {path})')
        from mmseg_refiner.datasets.mask_folder import read_split
        ids = read_split(path)  # the training datasets' reading: comments, BOM, extensions
        no_image = [i for i in ids if i not in found and i not in missing['mask']]
        if no_image:
            raise InputError(f'{len(no_image)} ids of {path} have no image in {img_dir}, '
                             f'e.g. {no_image[:5]}')
    ids = ids if limit is None else ids[:limit]
    no_mask = [osp.join(mask_dir, f'{i}.png') for i in ids if i not in found]
    if no_mask:
        raise InputError(f'{len(no_mask)} masks are missing, e.g. {no_mask[:3]}')
    return [found[i] for i in ids]


class ResultCache:
    """Append-only JSON-lines store of per-image results, keyed by string.

    Every record is flushed as written; a line torn by an interruption is ignored on load.
    """

    def __init__(self, path: str):
        self.path, self.records = path, {}
        if osp.isfile(path):
            self._load()
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)

    def _load(self) -> None:
        with open(self.path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    self.records[rec['key']] = rec['value']
                except (ValueError, KeyError, TypeError):
                    continue
        with open(self.path, 'rb+') as f:  # end a torn last line so appends start clean
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b'\n':
                    f.write(b'\n')

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> Optional[dict]:
        return self.records.get(key)

    def add(self, key: str, value: dict) -> None:
        self.records[key] = value
        with open(self.path, 'a') as f:
            f.write(json.dumps(dict(key=key, value=value)) + '\n')
            f.flush()


def _read_image(path: str, gt: np.ndarray) -> np.ndarray:
    from mmseg_refiner.utils.io import imread_checked
    image = imread_checked(path)
    if image.shape[:2] != gt.shape:
        raise InputError(f'image {path} is {image.shape[1]}x{image.shape[0]} but its mask is '
                         f'{gt.shape[1]}x{gt.shape[0]} (WxH)')
    return image


def _fingerprint(**fields) -> str:
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _coarse_means(coarse: List[dict]) -> dict:
    """``coarse_<metric>``: the mean coarse score of each metric over the images."""
    return {f'coarse_{m}': float(np.mean([c[m] for c in coarse])) for m in METRICS}


def refined_means(coarse: List[dict], refined: List[dict]) -> dict:
    """Means of refined scores, their change from coarse, worse share and cost per image.

    Uses :func:`mmseg_refiner.evaluation.summarize` on per-image rows that hold both.
    """
    costs = ('unet_calls', 'unet_samples', 'seconds')
    rows = []
    for c, r in zip(coarse, refined):
        row = {m: r[m] for m in METRICS}
        row.update({f'coarse_{m}': c[m] for m in METRICS})
        row.update({k: r[k] for k in costs})
        rows.append(row)
    means = summarize(rows)
    out = {m: means[m] for m in METRICS}
    out.update({f'delta_{m}': means[m] - means[f'coarse_{m}'] for m in METRICS})
    out['worse_2pt_share'] = means['worse_2pt_share']
    out.update({f'mean_{k}': means[k] for k in ('unet_calls', 'unet_samples', 'seconds')})
    return out


class QualityRun:
    """The quality benchmark's loop over images x coarse kinds x variants x steps (resumable).

    Args:
        pairs (list[tuple]): ``(id, image_path, mask_path)`` from :func:`list_pairs`.
        out_dir (str): Output folder (holds the cache ``cache.jsonl``).
        kinds (list[str]): Coarse kinds. Defaults to :data:`COARSE_KINDS`.
        refiner (nn.Module, optional): None = coarse masks only.
        steps_list (list[int]): Reverse step counts to sweep. Defaults to [T].
        mode (str): ``refine_mask`` mode. Defaults to 'auto'.
        seed (int): Seed of the coarse masks and the sampling. Defaults to 0.
        dilation_ratio (float): Boundary IoU band. Defaults to 0.02.
        refiner_id (str): Identifies the weights in the cache keys (config + checkpoint).
        variants (list[str | Variant], optional): Refinement settings (:func:`parse_variant`),
            each cached separately. Defaults to ``['guarded']``.
    """

    def __init__(self, pairs, out_dir: str, kinds: Sequence[str] = COARSE_KINDS, refiner=None,
                 steps_list: Optional[Sequence[int]] = None, mode: str = 'auto', seed: int = 0,
                 dilation_ratio: float = 0.02, refiner_id: str = '',
                 variants: Optional[Sequence] = None):
        unknown = [k for k in kinds if k not in COARSE_KINDS]
        if unknown:
            raise ValueError(f'unknown coarse kinds {unknown}; choose from {COARSE_KINDS}')
        self.pairs, self.kinds, self.refiner = pairs, list(kinds), refiner
        default_steps = [refiner.sampler.num_timesteps] if refiner is not None else []
        self.steps_list = list(steps_list or default_steps) if refiner is not None else []
        self.variants = (unique_variants(variants or [DEFAULT_VARIANT])
                         if refiner is not None else [])
        self.mode, self.seed, self.dilation_ratio = mode, seed, dilation_ratio
        self.cache = ResultCache(osp.join(out_dir, 'cache.jsonl'))
        self._coarse_fp = _fingerprint(seed=seed, ratio=dilation_ratio, lowres=LOWRES_FACTOR,
                                       polygon=POLYGON_EPS, perturb=PERTURB_IOU)
        self._refine_fp = _fingerprint(coarse=self._coarse_fp, refiner=refiner_id, mode=mode)
        self._variant_fp = {
            v.name: _fingerprint(refine=self._refine_fp, **self.refine_kwargs(v))
            for v in self.variants
        }

    def refine_kwargs(self, variant: Variant) -> dict:
        """The refine options of a variant, as run (and keyed in the cache).

        ``guard`` (the resolved guard dict, or False; a generic variant without ``guard=``
        follows :meth:`RefineOptions.resolve`: off with ``preset=reference``), ``stop_thr``,
        ``stop_criterion`` (None for the fixed schedule, ``stop_thr=0``, where it has no
        effect) and the variant's further options.
        """
        config_guard = self.refiner.test_cfg['guard']
        guard_on = variant.guard
        if guard_on is None:  # not set: on (a variant's default) unless resolve turns it off
            cfg = RefineOptions.from_dict(variant.options).resolve(
                dict(self.refiner.test_cfg, guard=config_guard or True))
            guard_on = cfg['guard'] is not None
        guard = (resolve_guard(config_guard) or resolve_guard(True)) if guard_on else False
        return dict(guard=guard, stop_thr=float(variant.stop_thr),
                    stop_criterion=variant.stop_criterion if variant.stop_thr > 0 else None,
                    **variant.options)

    def coarse_key(self, kind, sample_id):
        return f'coarse|{self._coarse_fp}|{kind}|{sample_id}'

    def refined_key(self, kind, variant: Variant, steps, sample_id):
        return f'refined|{self._variant_fp[variant.name]}|{kind}|{steps}|{sample_id}'

    def _todo(self, sample_id: str, kind: str) -> list:
        """Missing work for one (sample, kind): None = coarse scores, (variant, steps) pairs."""
        todo = [] if self.coarse_key(kind, sample_id) in self.cache else [None]
        keys = set(self.cache.records)  # variants of equal settings share a key: run once
        for variant in self.variants:
            for steps in self.steps_list:
                key = self.refined_key(kind, variant, steps, sample_id)
                if key not in keys:
                    keys.add(key)
                    todo.append((variant, steps))
        return todo

    def run(self, progress: bool = True) -> None:
        """Compute and cache everything missing; a finished run returns at once."""
        from mmseg_refiner.utils.io import maskread_checked
        work = [p for p in self.pairs if any(self._todo(p[0], k) for k in self.kinds)]
        for sample_id, img_path, mask_path in tqdm(work, desc='quality', unit='img',
                                                   disable=not progress or not work):
            gt = maskread_checked(mask_path, 'ground-truth mask')
            image = None
            for kind in self.kinds:
                todo = self._todo(sample_id, kind)
                if not todo:
                    continue
                coarse = make_coarse(gt, kind, self.seed, sample_id)
                if None in todo:
                    self.cache.add(self.coarse_key(kind, sample_id),
                                   score_masks(coarse, gt, self.dilation_ratio))
                groups = {}  # jobs that one refinement serves (see _share_key)
                for variant, steps in (job for job in todo if job is not None):
                    groups.setdefault(self._share_key(variant, steps, coarse), []).append(
                        (variant, steps))
                for jobs in groups.values():
                    image = image if image is not None else _read_image(img_path, gt)
                    for (variant, steps), result in zip(jobs,
                                                        self._refine(image, coarse, gt, jobs)):
                        self.cache.add(self.refined_key(kind, variant, steps, sample_id), result)

    def _share_key(self, variant: Variant, steps, coarse: np.ndarray) -> str:
        """Jobs of equal keys are served by one refinement with the guard off.

        The growth guard runs after sampling, on the thresholded mask, so variants that differ
        only in the guard share the U-Net calls; on the ``instance`` path (the one ``mode``
        picks for this coarse mask) the presets differ only in the guard, so ``preset`` is
        left out of the key there too.
        """
        kwargs = {k: v for k, v in self.refine_kwargs(variant).items() if k != 'guard'}
        cfg = RefineOptions.from_dict({k: v for k, v in kwargs.items() if v is not None}) \
            .resolve(self.refiner.test_cfg)
        if choose_mode(self.refiner, coarse, self.mode, cfg=cfg) == 'instance':
            kwargs.pop('preset', None)
        return json.dumps(dict(kwargs, steps=steps), sort_keys=True, default=str)

    def _refine(self, image, coarse, gt, jobs) -> List[dict]:
        """Scores of the jobs ``[(variant, steps)]`` of one share key: one refinement without
        the guard, then each variant's guard. ``seconds`` = the refinement + that guard."""
        from mmseg_refiner import apis
        variant, steps = jobs[0]
        options = {k: v for k, v in self.refine_kwargs(variant).items() if v is not None}
        start = time.perf_counter()
        with UNetCallCounter(self.refiner.backbone) as counter:
            raw = apis.refine_mask(self.refiner, image, coarse, mode=self.mode, steps=steps,
                                   seed=self.seed, options=dict(options, guard=False))
        seconds = time.perf_counter() - start
        path = choose_mode(self.refiner, coarse, self.mode,
                           cfg=RefineOptions.from_dict(options).resolve(self.refiner.test_cfg))
        results = []
        for variant, _ in jobs:
            start = time.perf_counter()
            refined = guard_masks(raw[None], coarse[None],
                                  self.refine_kwargs(variant)['guard']).mask[0]
            results.append(
                dict(score_masks(refined, gt, self.dilation_ratio), unet_calls=counter.calls,
                     unet_samples=counter.samples, seconds=seconds + time.perf_counter() - start,
                     path=path))
        return results

    def _path(self, kind: str, sample_id: str, record: dict) -> str:
        """The strategy ``mode`` took for this image's coarse mask ('instance', 'hr', ...):
        stored with the result, else (results cached before it was) recomputed."""
        if 'path' not in record:
            from mmseg_refiner.utils.io import maskread_checked
            mask_path = next(p[2] for p in self.pairs if p[0] == sample_id)
            coarse = make_coarse(maskread_checked(mask_path), kind, self.seed, sample_id)
            record['path'] = choose_mode(self.refiner, coarse, self.mode)
        return record['path']

    def summary(self, by_path: bool = False) -> List[dict]:
        """One row per kind (coarse only) or per (kind, variant, steps): means over images.

        Args:
            by_path (bool): Also one row per refinement path (the strategy ``mode`` took for
                the image: 'instance', or 'hr' for objects over ``hr_size``), with a ``path``
                key ('all' on the row over all images). Defaults to False.
        """
        rows = []
        for kind in self.kinds:
            coarse = [self.cache.get(self.coarse_key(kind, p[0])) for p in self.pairs]
            coarse_means = _coarse_means(coarse)
            if not self.steps_list:
                rows.append(dict(kind=kind, num_images=len(coarse), **coarse_means))
            for variant in self.variants:
                for steps in self.steps_list:
                    ref = [
                        self.cache.get(self.refined_key(kind, variant, steps, p[0]))
                        for p in self.pairs
                    ]
                    rows.append(
                        dict(kind=kind, variant=variant.name, steps=steps, num_images=len(ref),
                             **coarse_means, **refined_means(coarse, ref)))
                    if by_path:
                        rows[-1]['path'] = 'all'
                        rows += self._path_rows(kind, variant, steps, coarse, ref)
        return rows

    def _path_rows(self, kind, variant, steps, coarse, ref) -> List[dict]:
        paths = [self._path(kind, p[0], r) for p, r in zip(self.pairs, ref)]
        rows = []
        for path in sorted(set(paths)):
            idx = [i for i, p in enumerate(paths) if p == path]
            sub_coarse, sub_ref = [coarse[i] for i in idx], [ref[i] for i in idx]
            rows.append(
                dict(kind=kind, variant=variant.name, steps=steps, path=path, num_images=len(idx),
                     **_coarse_means(sub_coarse), **refined_means(sub_coarse, sub_ref)))
        return rows
