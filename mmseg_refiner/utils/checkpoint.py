"""Weights-only checkpoint loading; full unpickling only when the user trusts the file.

torch >= 2.6 unpickles checkpoints with ``weights_only=True`` by default: tensors, containers
and primitive types only, so a checkpoint cannot run code while it loads. Checkpoints written
by mmengine's ``CheckpointHook`` also pickle a few harmless objects (the ``HistoryBuffer``s of
the message hub, numpy arrays, dtypes and scalars). :func:`load_checkpoint` allow-lists exactly
those, for the duration of its own ``torch.load`` call, and refuses anything else with an
error that names the file, the offending global and the opt-in.

Nothing here changes how the host process (mmdet / mmseg) loads its own checkpoints:
mmengine's ``CheckpointLoader`` is left as it is. The plugin's own training script wraps its
runner in :func:`mmengine_safe_globals` so that ``load_from`` / ``resume`` of its checkpoints
work on torch >= 2.6 with the same allow-list.
"""
import contextlib
import os
import os.path as osp
import pickle
import re
from typing import Callable, Iterator, List, Optional, Tuple, Union

TRUST_HINT = ('init_refiner(..., trust_checkpoint=True) in Python or --trust-checkpoint on the '
              'command line')

# numpy's pickles name the module of these functions ``numpy._core.multiarray`` (numpy 2) or
# ``numpy.core.multiarray`` (numpy 1, e.g. older mmengine checkpoints): accept both spellings.
_NUMPY_MODULES = ('numpy._core.multiarray', 'numpy.core.multiarray')
# dtypes whose arrays / scalars mmengine's message hub and metrics store (bool, ints, floats).
_NUMPY_DTYPES = '?bBhHiIlLqQefdg'

# HistoryBuffer's own statistics methods (``register_statistics`` can add more).
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

_GLOBAL_PATTERN = re.compile(r'GLOBAL (\S+) (?:was not an allowed global|whose module)')


class UnsafeCheckpointError(ValueError):
    """A checkpoint needs globals outside the weights-only allow-list to load."""


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to the statistics methods of mmengine's ``HistoryBuffer``.

    A pickled ``HistoryBuffer`` refers to its methods (``min``, ``max``, ``mean``, ``current``)
    as ``getattr(HistoryBuffer, 'min')``. A general ``getattr`` would reach any attribute of
    any allow-listed object (e.g. ``ndarray.tofile``), so every other use is refused.
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS + tuple(
            HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'Unsupported global: GLOBAL builtins.getattr was not an '
                                 f'allowed global by default (getattr({obj!r}, {name!r}))')


def mmengine_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals an mmengine checkpoint pickles besides tensors and containers.

    ``HistoryBuffer`` (message hub scalars) and the ``getattr`` that names its statistics
    methods (restricted to them), numpy array and scalar reconstruction, ``dtype`` and its
    per-type classes (``numpy.dtypes.Float64DType`` ...). Items are objects or
    ``(object, 'module.name')`` pairs, as :func:`torch.serialization.add_safe_globals` takes.
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer

    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    allowed = [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'), np.ndarray, np.dtype]
    for module in _NUMPY_MODULES:
        allowed += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    for char in _NUMPY_DTYPES:
        dtype_cls = type(np.dtype(char))
        if dtype_cls is not np.dtype:  # numpy >= 1.25: one class per dtype
            allowed.append((dtype_cls, f'numpy.dtypes.{dtype_cls.__name__}'))
    return allowed


@contextlib.contextmanager
def mmengine_safe_globals() -> Iterator[None]:
    """Allow-list :func:`mmengine_globals` for weights-only loads inside the ``with`` block.

    Only the entries that were not allow-listed already are added, and only those are removed
    on exit, so the caller's own ``add_safe_globals`` survive.
    """
    from torch import serialization
    present = set(serialization.get_safe_globals())
    added = [g for g in mmengine_globals() if g not in present]
    with serialization.safe_globals(added):
        yield


def refused_global(exc: BaseException):
    """The global named in torch's weights-only refusal ``exc``, or None for other errors."""
    match = _GLOBAL_PATTERN.search(str(exc))
    if match is None:
        return None
    name = match.group(1)
    return name if '.' in name else f'builtins.{name}'  # torch drops the 'builtins.' prefix


def load_checkpoint(path: Union[str, os.PathLike], map_location='cpu', trust: bool = False):
    """Load a checkpoint file, weights only unless ``trust`` is set.

    Args:
        path (str | PathLike): A local checkpoint file (``torch.save`` output).
        map_location (str | torch.device | callable): As :func:`torch.load`.
            Defaults to 'cpu'.
        trust (bool): Unpickle fully, which can run arbitrary code from the file: only for
            files from a source you trust. Defaults to False.

    Returns:
        The unpickled object (a dict for every checkpoint format the plugin knows).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        UnsafeCheckpointError: the file needs a global outside :func:`mmengine_globals`; the
            message names the file, the global and how to opt in.
    """
    import torch

    path = osp.expanduser(os.fspath(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if trust:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with mmengine_safe_globals():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        name = refused_global(exc)
        if name is None:  # a corrupt or non-checkpoint file, not a refused global
            raise
        raise UnsafeCheckpointError(
            f'refused to load checkpoint {path}: it contains the global {name}, which is not '
            'a tensor, container, numpy array/scalar or mmengine HistoryBuffer. Fully '
            'unpickling it can run arbitrary code from the file. If you trust its source, '
            f'load it with {TRUST_HINT}.') from None


def state_dict_of(ckpt: dict) -> dict:
    """The weights of a loaded checkpoint (its ``state_dict``, or the dict itself for bare
    weight files), without DDP's ``module.`` key prefix."""
    state = ckpt.get('state_dict', ckpt)
    return {k[7:] if k.startswith('module.') else k: v for k, v in state.items()}


def check_training_start(model, load_from: Optional[str], resume, work_dir: str,
                         trust: bool = False) -> None:
    """Refuse, before a training run starts, a checkpoint that mmengine would fail on deep
    inside (truncated, not a checkpoint, no training state to resume) or load nothing from
    (another model: mmengine's ``load_from`` is not strict and would train from scratch).

    Args:
        model (nn.Module): The model to be trained (not wrapped).
        load_from (str, optional): ``cfg.load_from`` (with ``resume``: the file to resume).
        resume (bool): ``cfg.resume``; without ``load_from`` the newest checkpoint of
            ``work_dir`` is resumed (none: a fresh start, nothing to check).
        work_dir (str): The run's work dir.
        trust (bool): Unpickle fully (``--trust-checkpoint``). Defaults to False.

    Raises:
        ValueError: Naming the file and the problem.
        UnsafeCheckpointError: As :func:`load_checkpoint`.
    """
    import copy

    path = load_from
    if resume and path is None:
        from mmengine.runner import find_latest_checkpoint
        path = find_latest_checkpoint(work_dir)
    if not path:
        return
    what = f'--resume {path}' if resume else f'load_from {path}'
    if not osp.isfile(path):
        raise ValueError(f'{what}: file not found')
    try:
        ckpt = load_checkpoint(path, trust=trust)
    except UnsafeCheckpointError:
        raise
    except Exception as exc:  # truncated zip, 0 bytes, text, pickle errors ...
        raise ValueError(f'{what}: not a readable checkpoint: truncated, or not a file that '
                         f'torch.save wrote ({type(exc).__name__})') from None
    if not isinstance(ckpt, dict):
        raise ValueError(f'{what}: not a checkpoint (it holds a {type(ckpt).__name__})')
    meta = ckpt.get('meta')
    if resume and not ('optimizer' in ckpt and isinstance(meta, dict) and 'iter' in meta):
        raise ValueError(f'{what}: not a training checkpoint (no optimizer state or iteration: '
                         'weights only, e.g. exported or released); to start from its weights, '
                         f'pass --cfg-options load_from={path} instead of --resume')
    state = state_dict_of(ckpt)
    scratch = copy.deepcopy(model)
    try:
        result = scratch.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # torch lists every tensor of the wrong shape
        lines = [line.strip() for line in str(exc).splitlines() if 'size mismatch' in line]
        raise ValueError(f'{what}: {len(lines)} tensor(s) do not fit this model ('
                         f'{lines[0] if lines else exc}): a checkpoint of another model '
                         'config?') from None
    expected = len(scratch.state_dict())
    if len(result.missing_keys) >= expected:
        raise ValueError(f'{what}: none of its {len(state)} tensors belongs to this model '
                         f'(its keys start {", ".join(list(state)[:3])}): a checkpoint of '
                         'another model?')
