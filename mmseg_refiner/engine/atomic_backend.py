"""``atomic_local``: mmengine's local file backend, but a file appears only once complete.

mmengine's ``LocalBackend`` writes checkpoints (``iter_N.pth``, ``best_*.pth``) and the
``last_checkpoint`` pointer in place, so a run killed (or a disk filled) while saving leaves a
truncated file under the final name, which ``--resume`` then trips over. This backend writes a
temporary file next to the target and renames it into place (:func:`mmseg_refiner.utils.io.
atomic_write`). The training configs select it with
``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')``; reading is unchanged.
"""
import os
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from mmseg_refiner.utils.io import atomic_write


class AtomicLocalBackend(LocalBackend):
    """:class:`mmengine.fileio.LocalBackend` whose ``put`` / ``put_text`` are atomic."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        with atomic_write(str(filepath)) as tmp:
            with open(tmp, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        with atomic_write(str(filepath)) as tmp:
            with open(tmp, 'w', encoding=encoding) as f:
                f.write(obj)


register_backend('atomic_local', AtomicLocalBackend, force=True)
