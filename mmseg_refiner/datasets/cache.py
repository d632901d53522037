"""Per-process cache of decoded (and optionally down-scaled) training images and masks.

Decoding a multi-megapixel JPEG costs tens to hundreds of milliseconds; a training pipeline
that decodes every sample again starves the U-Net. :func:`read_image` / :func:`read_mask`
keep what they decoded in one least-recently-used cache per process, bounded in bytes. Data
loader workers are separate processes, so each worker fills its own cache (nothing is shared
or locked); with ``persistent_workers=True`` the caches live for the whole run.

``max_side`` down-scales on load (area interpolation, masks thresholded at 0.5) so the long
side is at most ``max_side`` pixels: training crops objects and resizes them to a few hundred
pixels anyway, and smaller arrays make both the cache and the crop cheaper.
"""
import os
from collections import OrderedDict
from typing import Optional, Tuple

import cv2
import numpy as np

from mmseg_refiner.utils.io import imread_checked, maskread_checked


class DecodedCache:
    """Least-recently-used cache of numpy arrays, bounded by their total size in bytes.

    Args:
        max_bytes (int): Budget; 0 disables caching. Defaults to 0.
    """

    def __init__(self, max_bytes: int = 0):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = self.misses = 0
        self._items = OrderedDict()

    def get(self, key):
        """The cached array for ``key`` (marked recently used), or None."""
        arr = self._items.get(key)
        if arr is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return arr

    def put(self, key, arr: np.ndarray) -> None:
        """Store ``arr`` (read-only) unless it alone exceeds the budget; evict the oldest."""
        if arr.nbytes > self.max_bytes or key in self._items:
            return
        arr.setflags(write=False)
        self._items[key] = arr
        self.nbytes += arr.nbytes
        while self.nbytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.nbytes -= old.nbytes

    def resize(self, max_bytes: int) -> None:
        """Raise the budget to ``max_bytes`` (never lowers it: several users share it)."""
        self.max_bytes = max(self.max_bytes, int(max_bytes))


_CACHE = {'pid': None, 'cache': None}


def process_cache(max_bytes: int = 0) -> DecodedCache:
    """The cache of this process (a new, empty one after a fork), with at least ``max_bytes``."""
    if _CACHE['pid'] != os.getpid():
        _CACHE['pid'], _CACHE['cache'] = os.getpid(), DecodedCache()
    _CACHE['cache'].resize(max_bytes)
    return _CACHE['cache']


def scaled_size(hw: Tuple[int, int], max_side: Optional[int]) -> Tuple[int, int]:
    """(h, w) scaled down so that max(h, w) <= ``max_side`` (unchanged when None or smaller)."""
    h, w = hw
    if not max_side or max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_mask(mask: np.ndarray, size_wh: Tuple[int, int]) -> np.ndarray:
    """A 0/1 mask resized to ``size_wh`` by area averaging, thresholded at 0.5 (uint8 0/1)."""
    small = cv2.resize(mask.astype(np.float32), size_wh, interpolation=cv2.INTER_AREA)
    return (small >= 0.5).astype(np.uint8)


def _shrink(arr: np.ndarray, max_side: Optional[int], is_mask: bool) -> np.ndarray:
    h, w = scaled_size(arr.shape[:2], max_side)
    if (h, w) == arr.shape[:2]:
        return arr
    if is_mask:
        return resize_mask(arr, (w, h))
    return cv2.resize(arr, (w, h), interpolation=cv2.INTER_AREA)


def _cached(path: str, max_side: Optional[int], cache_bytes: int, is_mask: bool, read):
    cache = process_cache(cache_bytes) if cache_bytes > 0 else None
    key = (path, max_side, is_mask)
    arr = cache.get(key) if cache is not None else None
    if arr is None:
        arr = _shrink(read(path), max_side, is_mask)
        if cache is not None:
            cache.put(key, arr)
    return arr


def read_image(path: str, max_side: Optional[int] = None, cache_bytes: int = 0) -> np.ndarray:
    """A BGR uint8 (H, W, 3) image, down-scaled to ``max_side``, from this process's cache.

    The returned array may be shared with the cache: it is read-only, copy before writing.
    """
    return _cached(path, max_side, cache_bytes, False, imread_checked)


def read_mask(path: str, max_side: Optional[int] = None, cache_bytes: int = 0) -> np.ndarray:
    """A uint8 0/1 (H, W) mask, down-scaled to ``max_side``, from this process's cache."""
    return _cached(path, max_side, cache_bytes, True,
                   lambda p: maskread_checked(p, name='mask').astype(np.uint8))
