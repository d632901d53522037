"""mmseg_refiner: SegRefiner as an OpenMMLab 2.x plugin.

Importing the package is cheap and changes nothing in the host process: the public API
(``init_refiner``, ``refine_mask`` ...) and the subpackages load on first access (PEP 562
``__getattr__``), so ``mmseg-refiner --help`` does not import torch.

Components are registered in the ``mmseg_refiner`` registry scope (:mod:`mmseg_refiner.registry`).
Each registry names the modules that define its components (``locations``), and mmengine
imports them the first time the registry is searched. So after
``custom_imports=dict(imports=['mmseg_refiner'])`` every component builds as
``type='mmseg_refiner.Name'`` from mmdet / mmseg configs, and by plain name under
``default_scope='mmseg_refiner'``.
"""
import importlib

from .version import __version__

__all__ = ['__version__', 'init_refiner', 'refine_mask', 'refine_masks', 'refine_label_map']

_API = ('init_refiner', 'refine_mask', 'refine_masks', 'refine_label_map')
_SUBMODULES = ('apis', 'benchmark', 'cli', 'datasets', 'engine', 'evaluation', 'inference',
               'models', 'registry', 'utils', 'vis')


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f'{__name__}.apis'), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f'{__name__}.{name}')
    else:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API) | set(_SUBMODULES))
