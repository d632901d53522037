"""setuptools shim that copies ``configs/`` and ``tools/`` into ``mmseg_refiner/.mim``.

OpenMMLab's ``mim`` looks for a package's scripts and configs under ``<package>/.mim`` in
site-packages; a non-editable install (wheel) therefore has to carry them there.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
MIM_ITEMS = ('configs', 'tools')


def add_mim_extension():
    """Copy (or refresh) configs/ and tools/ into mmseg_refiner/.mim."""
    mim_root = os.path.join(HERE, 'mmseg_refiner', '.mim')
    os.makedirs(mim_root, exist_ok=True)
    for item in MIM_ITEMS:
        src, dst = os.path.join(HERE, item), os.path.join(mim_root, item)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            os.remove(dst)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


class BuildPyWithMim(build_py):

    def run(self):
        add_mim_extension()
        super().run()


class SdistWithMim(sdist):

    def run(self):
        add_mim_extension()
        super().run()


setup(cmdclass=dict(build_py=BuildPyWithMim, sdist=SdistWithMim))
