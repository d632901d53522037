"""Python API: :func:`init_refiner`, :func:`refine_mask`, :func:`refine_masks`,
:func:`refine_label_map` and their options, :class:`RefineOptions`.

The names are imported on first use (PEP 562), so ``from mmseg_refiner.apis.options import
RefineOptions`` (the command line's argument definitions) does not import torch.
"""
import importlib

_HOMES = {
    'RefineOptions': 'options',
    'init_refiner': 'inference',
    'refine_mask': 'inference',
    'refine_masks': 'inference',
    'refine_label_map': 'inference',
    'check_options': 'inference',
    'read_pair': 'inference',
    'load_refiner_weights': 'inference',
    'DEFAULT_CHECKPOINT': 'inference',
}

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'{__name__}.{_HOMES[name]}'), name)
    globals()[name] = value  # later lookups (and monkeypatching) see a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
