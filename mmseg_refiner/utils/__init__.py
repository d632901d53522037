from .checkpoint import UnsafeCheckpointError, load_checkpoint, mmengine_safe_globals
from .compat import apply_compat_patches
from .io import (IMAGE_EXTS, InputError, atomic_write, imread_checked, imwrite_atomic,
                 maskread_checked, maskwrite_atomic)

__all__ = [
    'apply_compat_patches', 'atomic_write', 'imread_checked', 'maskread_checked', 'InputError',
    'imwrite_atomic', 'maskwrite_atomic', 'IMAGE_EXTS', 'load_checkpoint', 'mmengine_safe_globals',
    'UnsafeCheckpointError'
]
