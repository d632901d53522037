"""Compatibility with the current OpenMMLab stack, without changing the host process.

Up to version 0.2 importing the plugin re-registered mmengine's local checkpoint loader with
``weights_only=False`` so that mmengine checkpoints (which pickle a ``HistoryBuffer`` and numpy
objects) load on torch >= 2.6. That made every checkpoint the host mmdet / mmseg process
loaded fully unpickled. Nothing is patched any more:

* the plugin loads its weights with :func:`mmseg_refiner.utils.checkpoint.load_checkpoint`
  (weights only, with an allow-list of exactly the types mmengine checkpoints contain);
* ``tools/train.py`` runs its Runner inside
  :func:`mmseg_refiner.utils.checkpoint.mmengine_safe_globals`, so ``load_from`` and
  ``resume`` of the plugin's own training work with the same allow-list.
"""


def apply_compat_patches() -> None:
    """Kept for backward compatibility; there is nothing to patch (a no-op)."""
