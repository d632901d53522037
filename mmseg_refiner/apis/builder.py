"""Build a refiner from a config and load its weights with the plugin's safe loader.

Example::

    from mmseg_refiner.apis import init_refiner
    refiner = init_refiner()                                  # the shipped small model
    refiner = init_refiner('configs/segrefiner/segrefiner_lr.py', 'segrefiner_lr.pth',
                           cfg_options={'model.test_cfg.steps': 4})
"""
import copy
import inspect
import os.path as osp
import warnings
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmseg_refiner.registry import MODELS
from mmseg_refiner.utils.checkpoint import UnsafeCheckpointError, load_checkpoint, state_dict_of
from mmseg_refiner.utils.hardware import resolve_device

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CHECKPOINT = osp.join(PACKAGE_DIR, 'checkpoints', 'segrefiner_small_people_hair.pth')


def _full_cfg(config) -> Config:
    """A private copy of a config path / Config / full config dict / bare model dict."""
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'refiner config not found: {config}')
        config = Config.fromfile(config)
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    elif isinstance(config, dict):
        config = copy.deepcopy(dict(config))
        config = Config(config if 'model' in config or 'type' not in config else dict(
            model=config))
    else:
        raise TypeError(f'config must be a path, Config or dict, got {type(config)}')
    if config.get('model') is None:
        raise KeyError('refiner config has no "model" entry')
    return config


def _model_keys(model_cfg) -> set:
    """Keys a model config may have: its own plus the model class's ``__init__`` arguments."""
    keys = set(model_cfg.keys())
    with DefaultScope.overwrite_default_scope('mmseg_refiner'):
        model_cls = MODELS.get(model_cfg.get('type', ''))
    if model_cls is not None:
        keys.update(inspect.signature(model_cls.__init__).parameters)
    return keys - {'self', 'args', 'kwargs'}


def merge_cfg_options(cfg: Config, cfg_options: Optional[dict]) -> Config:
    """Merge ``cfg_options`` (paths in the whole config) into ``cfg`` in place.

    Keys relative to ``model`` (``'test_cfg.steps'``, the convention before 0.3) still work
    for one release: they are prefixed with ``model.`` and a DeprecationWarning names them.
    """
    if not cfg_options:
        return cfg
    from mmseg_refiner.utils.config import check_option_keys
    model_keys = _model_keys(cfg.model)
    merged, relative = {}, []
    for key, value in cfg_options.items():
        head = key.split('.', 1)[0]
        if head != 'model' and head in model_keys:
            relative.append(key)
            key = f'model.{key}'
        merged[key] = value
    check_option_keys(cfg, merged, 'refiner cfg_options')
    if relative:
        warnings.warn(
            f'init_refiner: cfg_options keys relative to `model` ({", ".join(relative)}) are '
            'deprecated; write paths in the whole config, e.g. '
            f'"model.{relative[0]}"', DeprecationWarning, stacklevel=3)
    cfg.merge_from_dict(merged)
    return cfg


def _load_state_dict(path: str, trust: bool = False) -> tuple:
    """(state_dict, meta) of a checkpoint file (mmengine, released SegRefiner, or shipped)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'refiner checkpoint not found: {path}')
    try:
        ckpt = load_checkpoint(path, map_location='cpu', trust=trust)
    except UnsafeCheckpointError:
        raise
    except Exception as exc:  # truncated zip, pickle errors, text files ...
        raise ValueError(f'{path} is not a readable checkpoint '
                         f'({type(exc).__name__}: {exc})') from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} is not a checkpoint (got {type(ckpt).__name__})')
    return state_dict_of(ckpt), ckpt.get('meta', {}) or {}


def _head(keys) -> str:
    return ', '.join(keys[:8]) + (f' ... (+{len(keys) - 8})' if len(keys) > 8 else '')


def _load_into(model: torch.nn.Module, state: dict, path: str) -> None:
    """Load ``state`` strictly; the error lists missing and unexpected keys."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # torch lists every tensor of the wrong shape
        raise ValueError(f'checkpoint {path} does not match the refiner config '
                         f'(tensor shape mismatch): {exc}') from exc
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(f'checkpoint {path} does not match the refiner config: '
                       f'{len(result.missing_keys)} missing keys [{_head(result.missing_keys)}], '
                       f'{len(result.unexpected_keys)} unexpected keys '
                       f'[{_head(result.unexpected_keys)}]')
    broken = [
        k for k, v in state.items()
        if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if broken:
        raise ValueError(f'checkpoint {path} has NaN or infinite values in {len(broken)} '
                         f'tensor(s) [{_head(broken)}] (saved from a diverged training run?): '
                         'a refiner with them leaves every mask unchanged')


def load_refiner_weights(model: torch.nn.Module, path: str, trust: bool = False) -> None:
    """Load the weights of ``path`` into ``model`` strictly.

    Args:
        model (nn.Module): A refiner built from the matching config.
        path (str): Checkpoint file.
        trust (bool): Unpickle fully (see :func:`mmseg_refiner.utils.checkpoint.
            load_checkpoint`). Defaults to False.
    """
    state, _ = _load_state_dict(path, trust)
    _load_into(model, state, path)


def init_refiner(config=None, checkpoint: Optional[str] = None, device: str = 'auto',
                 cfg_options: Optional[dict] = None,
                 trust_checkpoint: bool = False) -> torch.nn.Module:
    """Build a :class:`DiffusionRefiner` and load its weights.

    Args:
        config (str | Config | dict, optional): A refiner config (file, Config, full config
            dict or a bare model dict). ``None``: the config embedded in ``checkpoint`` (or in
            the shipped checkpoint when that is ``None`` too).
        checkpoint (str, optional): Weights: mmengine checkpoints, the released SegRefiner
            files (``denoise_model.*`` keys) and the shipped file all load. ``None`` with
            ``config=None`` loads the shipped small model; ``None`` with a config leaves the
            weights random (a warning says so).
        device (str): 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:<i>'.
            Defaults to 'auto'.
        cfg_options (dict, optional): Overrides as paths in the whole config, e.g.
            ``{'model.test_cfg.steps': 4}`` (as ``--cfg-options`` and mmdet's
            ``init_detector``). Keys relative to ``model`` are deprecated.
        trust_checkpoint (bool): Unpickle the checkpoint fully. By default it is loaded
            weights-only (tensors, containers, numpy values, mmengine's HistoryBuffer), and a
            file that needs more is refused, because unpickling can run code from the file.
            Defaults to False.

    Returns:
        DiffusionRefiner: in eval mode on ``device``, with ``.cfg`` the merged config.
    """
    device = resolve_device(device)
    state = None
    if config is None:
        checkpoint = checkpoint or DEFAULT_CHECKPOINT
        state, meta = _load_state_dict(checkpoint, trust_checkpoint)
        if 'model_cfg' not in meta:
            raise ValueError(f'{checkpoint} carries no model config: pass `config` as well')
        config = dict(model=meta['model_cfg'])
    cfg = merge_cfg_options(_full_cfg(config), cfg_options)
    with DefaultScope.overwrite_default_scope('mmseg_refiner'):
        model = MODELS.build(cfg.model)
    from mmseg_refiner.models.refiner import DiffusionRefiner
    if not isinstance(model, DiffusionRefiner):
        source = config if isinstance(config, str) else 'the config'
        raise ValueError(f'{source} builds a {type(model).__name__}, not a refiner: give a '
                         'refiner config (model type DiffusionRefiner), e.g. '
                         'configs/segrefiner/segrefiner_lr.py')
    if checkpoint is None:
        warnings.warn('init_refiner: no checkpoint given, the refiner has random weights')
    elif state is None:
        load_refiner_weights(model, checkpoint, trust_checkpoint)
    else:
        _load_into(model, state, checkpoint)
    model.cfg = cfg
    return model.to(device).eval()
