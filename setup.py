"""setuptools shim that gives the package a ``.mim`` folder with ``configs/`` and ``tools/``.

OpenMMLab's ``mim`` looks for a package's scripts and configs under ``<package>/.mim`` where
the package is installed (``mim train mmseg_refiner segrefiner_small_folder.py``). As in
mmdet's ``setup.py`` (``add_mim_extension``):

* wheels (``python -m build``, ``pip install .``) carry copies, written into the build
  folder (the source tree is left alone);
* editable installs (``pip install -e .``) get relative symlinks in the source tree, so
  ``mmseg_refiner/.mim`` never goes stale (copies where symlinks are unavailable).

``MANIFEST.in`` puts ``configs/`` and ``tools/`` into the sdist, so a wheel built from the
sdist (what ``python -m build`` does) has them too.
"""
import os
import os.path as osp
import shutil
from setuptools import setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
MIM_ITEMS = ('configs', 'tools')
IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc')


def _remove(path):
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def add_mim_extension(mim_root, mode):
    """Put ``configs/`` and ``tools/`` into ``mim_root`` as 'symlink's or 'copy's."""
    os.makedirs(mim_root, exist_ok=True)
    for item in MIM_ITEMS:
        src, dst = osp.join(HERE, item), osp.join(mim_root, item)
        if not osp.isdir(src):  # keep what is there rather than end up with nothing
            continue
        _remove(dst)
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src, mim_root), dst, target_is_directory=True)
                continue
            except OSError:  # e.g. Windows without the privilege: fall back to a copy
                pass
        shutil.copytree(src, dst, ignore=IGNORE)


class BuildPyWithMim(build_py):
    """build_py that adds ``.mim``: copies into the wheel, symlinks in editable installs."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            add_mim_extension(osp.join(HERE, 'mmseg_refiner', '.mim'), 'symlink')
        else:
            add_mim_extension(osp.join(self.build_lib, 'mmseg_refiner', '.mim'), 'copy')


setup(cmdclass=dict(build_py=BuildPyWithMim))
