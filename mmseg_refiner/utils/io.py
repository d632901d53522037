"""Image / mask IO with clear errors and atomic writes (mmcv image IO underneath).

mmcv is imported inside the functions: ``import mmcv`` imports torch, and the command line
imports this module (for :class:`InputError`) before it knows whether it needs either.
"""
import contextlib
import math
import numbers
import os
import os.path as osp
import tempfile
from typing import Union

import numpy as np

# File extensions read as images (lower case), the one list every folder reader uses.
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class InputError(ValueError):
    """A user-supplied file or array is unusable; the message names it and the problem."""


def is_int(value) -> bool:
    """An integer (Python or numpy), not a bool: the type test of every count, id and label
    read from a user's file or argument."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite real number (Python or numpy), not a bool (NaN and infinities are not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        math.isfinite(value)


@contextlib.contextmanager
def atomic_write(path: str, suffix: str = None):
    """Yield a temporary path next to ``path``; move it into place only on success.

    Readers never see a half-written file, and an interrupted job leaves no truncated
    output that a resumed run would skip.
    """
    path = osp.abspath(path)
    os.makedirs(osp.dirname(path), exist_ok=True)
    suffix = suffix if suffix is not None else osp.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', suffix=suffix, dir=osp.dirname(path))
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def check_output_file(path: str, what: str = 'output') -> str:
    """Refuse, before any work, an output file path that cannot be written.

    Args:
        path (str): The file to be written (its folder is created when missing).
        what (str): How the message names it, e.g. ``'--out'``.

    Returns:
        str: ``path``.

    Raises:
        InputError: ``path`` is an existing folder, or a part of its folder is a file.
    """
    if osp.isdir(path):
        raise InputError(f'{what} {path} is a folder; give a file name')
    _check_parent_folders(path, f'{what} ')
    return path


def check_output_dir(path: str, what: str = '') -> str:
    """Refuse, before any work, an output folder that cannot be made: empty, an existing file,
    or under a file. ``what`` (e.g. ``'--out'``) goes before the path in the message."""
    shown = f'{what} ' if what else ''
    if not path.strip():
        raise InputError(f'{shown}expected a folder, got an empty path')
    if osp.exists(path) and not osp.isdir(path):
        raise InputError(f'{shown}{path} is a file, not a folder')
    _check_parent_folders(path, shown)
    return path


def _check_parent_folders(path: str, shown: str) -> None:
    parent = osp.dirname(osp.abspath(path))
    while parent and not osp.exists(parent):
        parent = osp.dirname(parent)
    if parent and not osp.isdir(parent):
        raise InputError(f'{shown}{path}: {parent} is a file, not a folder')


def imread_checked(image: Union[str, np.ndarray], name: str = 'image') -> np.ndarray:
    """Read a colour image (BGR uint8 HxWx3) or validate an array, with readable errors.

    Grey images are expanded to 3 channels and alpha is dropped; 16-bit or float arrays are
    refused rather than silently rescaled.
    """
    if isinstance(image, (str, os.PathLike)):
        import mmcv
        path = str(image)
        _check_not_empty_file(path, name)
        try:
            arr = mmcv.imread(path, flag='color', channel_order='bgr')
        except Exception as exc:  # mmcv/cv2 raise various types for corrupt files
            raise InputError(f'{name} file {path} could not be decoded: {exc}') from exc
        if arr is None or arr.size == 0:
            raise InputError(f'{name} file {path} could not be decoded as an image')
        return arr
    if not isinstance(image, np.ndarray):
        raise InputError(f'{name} must be a file path or a numpy array, got {type(image)}')
    arr = image
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputError(f'{name} array must be HxW, HxWx3 or HxWx4, got shape {image.shape}')
    if arr.dtype != np.uint8:
        raise InputError(f'{name} array must be uint8 (0-255, BGR), got dtype {arr.dtype}')
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f'{name} array is empty: shape {image.shape}')
    return np.ascontiguousarray(arr[..., :3])


# Integer masks with at most this many distinct values are label maps (ids, VOC's 255 void).
LABEL_MAP_MAX_VALUES = 32


def _distinct_values(arr: np.ndarray) -> int:
    if arr.dtype in (np.uint8, np.uint16):
        return int(np.count_nonzero(np.bincount(arr.ravel(), minlength=1)))
    return len(np.unique(arr))


def _binarize(arr: np.ndarray, name: str) -> np.ndarray:
    """Foreground of a mask array, by a documented rule.

    * bool: as is;
    * two values or fewer (0/1, 0/255, 0/65535, 0/k): every non-zero pixel is foreground;
    * label maps (integers with 0 among at most :data:`LABEL_MAP_MAX_VALUES` distinct
      values: instance or class ids, VOC's 255 void): every non-zero pixel is foreground;
    * soft masks (floats, or integers with more values): above half of the range, i.e.
      ``> 0.5`` for floats in [0, 1], ``> 127`` for values up to 255, ``> 32767`` above.
      An integer soft mask with no value above that midpoint is refused (it would come out
      empty): it is neither binary nor 0-255.
    """
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f'{name} has unsupported dtype {arr.dtype}')
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise InputError(f'{name} contains NaN or infinite values')
    if arr.size and arr.min() < 0:
        raise InputError(f'{name} has negative values (min {arr.min()}); expected a binary '
                         'or 0-255 mask')
    vmax = arr.max() if arr.size else 0
    if not np.any((arr != 0) & (arr != vmax)):  # two values at most: 0 and vmax
        return arr > 0
    if np.issubdtype(arr.dtype, np.floating) and vmax <= 1:
        return arr > 0.5
    integer = np.issubdtype(arr.dtype, np.integer)
    values = _distinct_values(arr) if integer else None
    if integer and arr.min() == 0 and values <= LABEL_MAP_MAX_VALUES:
        return arr > 0
    mid = 32767 if vmax > 255 else 127
    if integer and vmax <= mid:
        raise InputError(
            f'{name} is neither binary nor a 0-255 soft mask: {values} values from '
            f'{arr.min()} to {vmax}, none above the midpoint {mid}, so it would come out empty. '
            'Save it as 0/255 (binary), or scale a soft mask to 0-255')
    return arr > mid


def open_pil(path: str):
    """``PIL.Image.open(path)`` without Pillow's decompression-bomb check.

    Pillow warns above 89 MP and refuses above 179 MP (a guard for untrusted web uploads);
    the images and masks here are the user's own files, which OpenCV decodes anyway, and a
    108 MP phone photo is a normal input. The check is lifted for this call only (it sets
    Pillow's module-wide limit meanwhile, so it is not thread-safe against other Pillow use).
    """
    from PIL import Image
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        return Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _palette_indices(path: str):
    """The index array of a palette (mode ``P``) PNG, else None: its colours are no labels."""
    if not path.lower().endswith('.png'):
        return None
    try:
        with open_pil(path) as img:
            return np.asarray(img) if img.mode == 'P' else None
    except Exception:  # not readable by PIL: mmcv reports the problem
        return None


def exif_orientation(path: str) -> int:
    """The EXIF orientation tag of an image file (1 = upright; 1 when absent or unreadable).

    :func:`imread_checked` (as mmcv and mmdet's ``LoadImageFromFile``) returns the image
    turned as this tag says; a mask drawn on the stored pixels then does not fit it.
    """
    try:
        with open_pil(path) as img:
            return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1


def _check_not_empty_file(path: str, name: str) -> None:
    if not osp.isfile(path):
        raise InputError(f'{name} file not found: {path}')
    if osp.getsize(path) == 0:
        raise InputError(f'{name} file {path} is empty (0 bytes)')


def maskread_checked(mask: Union[str, np.ndarray], name: str = 'mask') -> np.ndarray:
    """Read a binary mask (file or array: bool, 0/1 or 0-255) as a bool HxW array.

    Files: palette PNGs are read as their indices (index 0 = background, whatever its
    colour); a 4-channel file whose alpha varies is a cut-out and its alpha is the mask;
    other colour files are reduced to their maximum over channels (any non-black pixel is
    foreground). Then the rule of :func:`_binarize` applies.
    """
    if isinstance(mask, (str, os.PathLike)):
        import mmcv
        path = str(mask)
        _check_not_empty_file(path, name)
        arr = _palette_indices(path)
        if arr is None:
            try:
                arr = mmcv.imread(path, flag='unchanged')
            except Exception as exc:
                raise InputError(f'{name} file {path} could not be decoded: {exc}') from exc
        if arr is None or arr.size == 0:
            raise InputError(f'{name} file {path} could not be decoded as an image')
        if arr.ndim == 3 and arr.shape[2] == 4 and arr[..., 3].min() != arr[..., 3].max():
            arr = arr[..., 3]  # a cut-out: the alpha channel holds the mask
        elif arr.ndim == 3:
            arr = arr[..., :3].max(axis=2)
        return _binarize(arr, f'{name} file {path}')
    if not isinstance(mask, np.ndarray):
        raise InputError(f'{name} must be a file path or a numpy array, got {type(mask)}')
    arr = np.squeeze(mask) if mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[-1]) else mask
    if arr.ndim != 2:
        raise InputError(f'{name} array must be HxW, got shape {mask.shape}')
    return _binarize(arr, f'{name} array')


def maskwrite_atomic(mask: np.ndarray, path: str) -> None:
    """Write a bool/0-1 mask as an 8-bit 0/255 PNG, atomically."""
    imwrite_atomic((np.asarray(mask) > 0).astype(np.uint8) * 255, path, what='mask')


def imwrite_atomic(img: np.ndarray, path: str, what: str = 'image') -> None:
    """Write an image atomically (format from ``path``'s extension)."""
    import mmcv
    with atomic_write(path) as tmp:  # creates the folder: no ``auto_mkdir`` (deprecated)
        if not mmcv.imwrite(img, tmp):
            raise OSError(f'could not write {what} {path}')
