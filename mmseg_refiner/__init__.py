"""mmseg_refiner: SegRefiner as an OpenMMLab 2.x plugin.

Importing the package registers all components in the ``mmseg_refiner`` scope and applies
the compatibility fixes of :mod:`mmseg_refiner.utils.compat`.
"""
from .utils.compat import apply_compat_patches
from .version import __version__

apply_compat_patches()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration)
from .apis import init_refiner, refine_label_map, refine_mask, refine_masks  # noqa: E402

__all__ = ['__version__', 'init_refiner', 'refine_mask', 'refine_masks', 'refine_label_map']
