"""Fixes for the current OpenMMLab stack, applied once when ``mmseg_refiner`` is imported.

* torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, while mmengine 0.10
  calls ``torch.load`` without the argument. Checkpoints written by mmengine's CheckpointHook
  pickle a ``HistoryBuffer`` and numpy objects, so ``load_from`` and ``resume`` fail. We
  re-register mmengine's local-file loader with ``weights_only=False`` (files the user named
  explicitly; the same trust mmengine had before torch 2.6).
"""
import inspect

import torch

_APPLIED = False


def _torch_load_full(filename, map_location=None):
    """``torch.load`` of a trusted local checkpoint with full unpickling."""
    return torch.load(filename, map_location=map_location, weights_only=False)


def _patch_local_checkpoint_loader():
    from mmengine.runner.checkpoint import CheckpointLoader

    if 'weights_only' not in inspect.signature(torch.load).parameters:
        return

    @CheckpointLoader.register_scheme(prefixes='', force=True)
    def load_from_local(filename, map_location):
        import os.path as osp
        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        return _torch_load_full(filename, map_location=map_location)


def apply_compat_patches():
    """Apply all compatibility fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_local_checkpoint_loader()
    _APPLIED = True
