"""SegRefinerHook: refine the masks an mmdet / mmseg model predicts before they are scored."""
import functools
import os.path as osp
import time
from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook

from mmseg_refiner.apis import RefineOptions, init_refiner, refine_label_map, refine_masks
from mmseg_refiner.engine.hooks import adapters
from mmseg_refiner.registry import HOOKS
from mmseg_refiner.utils.io import is_int, is_number

PACKAGE_DIR = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _resolve_path(path: Optional[str], name: str) -> Optional[str]:
    """``path`` as given, or relative to the repository / the installed ``.mim`` folder."""
    if path is None or osp.isfile(path):
        return path
    for root in (osp.dirname(PACKAGE_DIR), osp.join(PACKAGE_DIR, '.mim')):
        if not osp.isabs(path) and osp.isfile(osp.join(root, path)):
            return osp.join(root, path)
    raise FileNotFoundError(f'SegRefinerHook: {name} not found: {path}')


@HOOKS.register_module()
class SegRefinerHook(Hook):
    """Refine predicted masks with SegRefiner inside the val and test loops.

    In ``before_val`` / ``before_test`` the hook wraps ``val_step`` / ``test_step`` of the
    object the loop calls (``runner.model``, DDP wrappers included), so every batch's
    predictions are refined in place before the evaluator (and visualizer) sees them; each
    rank refines its own batch. ``after_val`` / ``after_test`` restore the methods (an
    exception inside a step restores them too). The hook holds no refinement logic: it turns
    ``pred_instances`` (mmdet), ``pred_panoptic_seg`` (mmdet) and ``pred_sem_seg`` (mmseg)
    into masks / label maps with :mod:`.adapters` and calls :mod:`mmseg_refiner.apis`.

    Note:
        Instance boxes, scores and labels are kept (all-zero boxes, as SOLO gives, are
        replaced by the refined masks' boxes); ``seg_logits`` of mmseg are not changed. The
        image is read from ``metainfo['img_path']``, else taken from the raw batch inputs.
        Refining on CPU with ``MMSEG_REFINER_KEEP_FREED_MEMORY=1`` set, the hook keeps freed
        tensor memory in the host process for reuse
        (:func:`~mmseg_refiner.utils.hardware.keep_freed_memory`, glibc ``mallopt``: faster
        repeated U-Net calls, more memory held when image sizes vary).

    Args:
        refiner_config (str | dict, optional): Refiner config file (a path relative to the
            repository works) or dict. ``None`` uses the config in the checkpoint.
        refiner_checkpoint (str, optional): Refiner weights. ``None`` with
            ``refiner_config=None``: the shipped model. Defaults to None.
        mode (str, optional): 'auto', 'instance', 'global' or 'hr'. Defaults to 'auto'.
        steps (int | list[int], optional): Reverse steps. Defaults to the config's.
        seed (int, optional): Sampling seed, the same for every image. Defaults to 0.
        device (str, optional): Refiner device ('auto', 'cpu', 'cuda', 'cuda:1').
            Defaults to the model's device.
        area_thr (int, optional): Masks smaller than this (px) are kept as they are.
            Defaults to the refiner config's ``test_cfg.area_thr``.
        score_thr (float): Instances scoring below it are not refined. Defaults to 0.
        max_instances (int, optional): Refine only the K best-scoring instances of an image.
        classes (Sequence[int | str], optional): Semantic / panoptic classes to refine (ids
            or names from the dataset's metainfo). Defaults to all.
        ignore_index (int, optional): Label left untouched. Defaults to the evaluator's or
            dataset's ``ignore_index`` (mmseg), else 255; for panoptic maps to the void id
            ``len(metainfo['classes'])``.
        refine_val (bool): Refine in the val loop. Defaults to True.
        refine_test (bool): Refine in the test loop. Defaults to True.
        refine_options (dict, optional): Inference options, the fields of
            :class:`~mmseg_refiner.apis.RefineOptions` (``preset``, ``stop_thr``,
            ``stop_criterion``, ``guard``, ``autocast``, ...). ``mode`` / ``steps`` / ``seed``
            and ``**options`` override it. Defaults to None (the refiner config's test_cfg).
        cfg_options (dict, optional): Overrides of the refiner config, keys are paths in the
            whole config (``{'model.test_cfg.hr_size': 1024}``). Defaults to None.
        trust_checkpoint (bool): Load a refiner checkpoint that holds more than tensors
            (full unpickling). Defaults to False.
        **options: Any :class:`RefineOptions` field given directly, e.g.
            ``preset='reference'``.
    """

    priority = 'LOW'  # wrap last, after hooks that may replace runner.model

    def __init__(self, refiner_config: Union[str, dict, None] = None,
                 refiner_checkpoint: Optional[str] = None, mode: Optional[str] = None, steps=None,
                 seed: Optional[int] = None, device: Optional[str] = None,
                 area_thr: Optional[int] = None, score_thr: float = 0.0,
                 max_instances: Optional[int] = None,
                 classes: Optional[Sequence[Union[int, str]]] = None,
                 ignore_index: Optional[int] = None, refine_val: bool = True,
                 refine_test: bool = True, refine_options: Optional[dict] = None,
                 cfg_options: Optional[dict] = None, trust_checkpoint: bool = False, **options):
        _check_settings(refiner_config=refiner_config, area_thr=area_thr, score_thr=score_thr,
                        max_instances=max_instances, classes=classes, ignore_index=ignore_index,
                        cfg_options=cfg_options)
        self.options = _hook_options(refine_options, mode=mode, steps=steps, seed=seed, **options)
        self.refiner_config = refiner_config if isinstance(refiner_config, dict) else \
            _resolve_path(refiner_config, 'refiner_config')
        self.refiner_checkpoint = _resolve_path(refiner_checkpoint, 'refiner_checkpoint')
        self.device, self.cfg_options = device, dict(cfg_options or {})
        self.trust_checkpoint = trust_checkpoint
        self.area_thr, self.score_thr, self.max_instances = area_thr, score_thr, max_instances
        self.classes, self.ignore_index = classes, ignore_index
        self.refine_val, self.refine_test = refine_val, refine_test
        self.refiner = None
        self._patch = None  # (object, method name, its own attribute before or None)
        self._stats = dict(images=0, predictions=0, seconds=0.0)

    @property
    def _options(self) -> dict:
        """Keyword arguments of the API calls."""
        return dict(options=self.options)

    def before_val(self, runner) -> None:
        """Build the refiner (once) and wrap ``runner.model.val_step``."""
        if self.refine_val:
            self._start(runner, runner.val_loop, 'val_step')

    def after_val(self, runner) -> None:
        """Restore ``val_step`` and log what was refined."""
        self._finish(runner)

    def before_test(self, runner) -> None:
        """Build the refiner (once) and wrap ``runner.model.test_step``."""
        if self.refine_test:
            self._start(runner, runner.test_loop, 'test_step')

    def after_test(self, runner) -> None:
        """Restore ``test_step`` and log what was refined."""
        self._finish(runner)

    def _start(self, runner, loop, step_name: str) -> None:
        self.restore()
        self._build_refiner(runner.model)
        self._read_loop_meta(loop)
        self._stats = dict(images=0, predictions=0, seconds=0.0)
        self._wrap(runner.model, step_name)

    def _finish(self, runner) -> None:
        if self._patch is None:
            return
        self.restore()
        s = self._stats
        runner.logger.info(f'SegRefinerHook: refined {s["predictions"]} prediction(s) of '
                           f'{s["images"]} image(s) in {s["seconds"]:.2f} s')

    def _build_refiner(self, model) -> None:
        if self.refiner is not None:
            return
        from mmseg_refiner.utils.hardware import keep_freed_memory_if_asked, resolve_device
        device = _model_device(model) if self.device is None else resolve_device(self.device)
        if device == 'cpu':
            keep_freed_memory_if_asked()  # MMSEG_REFINER_KEEP_FREED_MEMORY=1, as entry points
        cfg_options = dict(self.cfg_options)
        if self.area_thr is not None:
            cfg_options['model.test_cfg.area_thr'] = self.area_thr
        self.refiner = init_refiner(self.refiner_config, self.refiner_checkpoint, device,
                                    cfg_options=cfg_options or None,
                                    trust_checkpoint=self.trust_checkpoint)

    def _read_loop_meta(self, loop) -> None:
        """Class names, ignore index and panoptic void id from the loop's dataset/evaluator."""
        dataset = getattr(loop.dataloader, 'dataset', None)
        names = list((getattr(dataset, 'metainfo', None) or {}).get('classes') or [])
        self._class_ids = None if self.classes is None else \
            [_class_id(c, names) for c in self.classes]
        found = [getattr(m, 'ignore_index', None) for m in getattr(loop.evaluator, 'metrics', [])]
        found += [getattr(dataset, 'ignore_index', None)]
        found = [i for i in found if isinstance(i, int)]
        self._ignore_index = self.ignore_index if self.ignore_index is not None else \
            (found[0] if found else 255)
        self._void = self.ignore_index if self.ignore_index is not None else \
            (len(names) if names else None)

    def _wrap(self, model, step_name: str) -> None:
        """Replace ``model.<step_name>`` by a function that refines its outputs."""
        original = getattr(model, step_name)

        @functools.wraps(original)
        def step(data, *args, **kwargs):
            try:
                outputs = original(data, *args, **kwargs)
                self._refine_batch(outputs, data)
            except BaseException:
                self.restore()  # the loop dies with the exception: leave the model clean
                raise
            return outputs

        self._patch = (model, step_name, vars(model).get(step_name))
        setattr(model, step_name, step)

    def restore(self) -> None:
        """Put back the wrapped method (idempotent)."""
        if self._patch is None:
            return
        model, name, own = self._patch
        if own is None:
            delattr(model, name)
        else:
            setattr(model, name, own)
        self._patch = None

    def _refine_batch(self, outputs, data) -> None:
        start = time.perf_counter()
        samples = adapters.prediction_samples(outputs)
        for index, sample in enumerate(samples):
            self._refine_sample(sample, data, index)
        self._stats['images'] += len(samples)
        self._stats['seconds'] += time.perf_counter() - start

    def _refine_sample(self, sample, data, index: int) -> None:
        """Refine every prediction kind of one data sample in place."""
        try:
            kinds = adapters.prediction_kinds(sample)
            shapes = {kind: adapters.prediction_shape(sample, kind) for kind in kinds}
            image = adapters.sample_image(sample, data, index, next(iter(shapes.values())))
        except ValueError as exc:
            path = sample.metainfo.get('img_path', f'batch sample {index}')
            raise ValueError(f'SegRefinerHook: {path}: {exc}') from exc
        for kind in kinds:
            shape = shapes[kind]
            img = image if image.shape[:2] == shape else \
                adapters.sample_image(sample, data, index, shape)
            getattr(self, f'_refine_{kind}')(sample, img)

    def _refine_instances(self, sample, image) -> None:
        instances = sample.pred_instances
        index = adapters.select_instances(instances, self.score_thr, self.max_instances)
        if len(index):
            masks = adapters.instance_masks(instances)[index]
            refined = refine_masks(self.refiner, image, masks, **self._options)
            adapters.write_instance_masks(instances, refined, index)
        self._stats['predictions'] += len(index)

    def _refine_panoptic(self, sample, image) -> None:
        if self._void is None:
            raise ValueError('SegRefinerHook: the dataset metainfo has no "classes", so the '
                             'panoptic void id is unknown: set ignore_index in the hook')
        ids = adapters.label_map(sample.pred_panoptic_seg, 'sem_seg')
        todo = adapters.panoptic_ids(ids, self._void, self._class_ids)
        refined = refine_label_map(self.refiner, image, ids, ignore_index=self._void, classes=todo,
                                   **self._options)
        adapters.write_label_map(sample.pred_panoptic_seg, 'sem_seg', refined)
        self._stats['predictions'] += 1

    def _refine_semantic(self, sample, image) -> None:
        labels = adapters.label_map(sample.pred_sem_seg, 'data')
        refined = refine_label_map(self.refiner, image, labels, ignore_index=self._ignore_index,
                                   classes=self._class_ids, **self._options)
        adapters.write_label_map(sample.pred_sem_seg, 'data', refined)
        self._stats['predictions'] += 1


def _hook_options(refine_options: Optional[dict], **given) -> RefineOptions:
    """The hook's options: seed 0, then ``refine_options``, then the keywords that are set.

    Raises:
        ValueError: an unknown option name or an invalid value (named in the message).
    """
    try:
        options = RefineOptions(seed=0).merged(**RefineOptions.coerce(refine_options).to_dict())
        return options.merged(**given).validate()
    except (TypeError, ValueError) as exc:
        raise ValueError(f'SegRefinerHook: {exc}') from None


def _model_device(model) -> str:
    """Device of the first parameter of ``model`` ('cpu' if it has none)."""
    param = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
    return str(param.device) if param is not None else 'cpu'


def _check_settings(refiner_config, area_thr, score_thr, max_instances, classes, ignore_index,
                    cfg_options) -> None:
    """The hook's own arguments, checked when it is built (not at the first batch)."""
    problems = []
    if refiner_config is not None and not isinstance(refiner_config, (str, dict)):
        problems.append(f'refiner_config must be a path or a dict, got {refiner_config!r}')
    if area_thr is not None and (not is_int(area_thr) or area_thr < 0):
        problems.append(f'area_thr must be an integer >= 0 (pixels), got {area_thr!r}')
    if not is_number(score_thr) or not 0 <= score_thr <= 1:
        problems.append(f'score_thr must be a number in [0, 1], got {score_thr!r}')
    if max_instances is not None and (not is_int(max_instances) or max_instances < 0):
        problems.append(f'max_instances must be None or an integer >= 0, got {max_instances!r}')
    if classes is not None and (isinstance(classes,
                                           (str, bytes)) or not isinstance(classes,
                                                                           (list, tuple)) or
                                not all(is_int(c) or isinstance(c, str) for c in classes)):
        problems.append('classes must be a list of class indices or names, got '
                        f'{classes!r}')
    if ignore_index is not None and not is_int(ignore_index):
        problems.append(f'ignore_index must be an integer, got {ignore_index!r}')
    if cfg_options is not None and not isinstance(cfg_options, dict):
        problems.append(f'cfg_options must be a dict of config paths, got {cfg_options!r}')
    if problems:
        raise ValueError('SegRefinerHook: ' + '; '.join(problems))


def _class_id(cls: Union[int, str], names: Sequence[str]) -> int:
    """A class index from an index or a name of the dataset's ``classes`` (checked against
    them when the dataset names its classes)."""
    if isinstance(cls, str):
        if cls not in names:
            raise ValueError(f'SegRefinerHook: class {cls!r} is not in the dataset classes '
                             f'{list(names)}')
        return names.index(cls)
    if names and not 0 <= cls < len(names):
        raise ValueError(f'SegRefinerHook: class index {cls} is not one of the dataset\'s '
                         f'{len(names)} classes (0-{len(names) - 1}: {list(names)})')
    return int(cls)
