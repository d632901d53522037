"""Shared fixtures: a tiny refiner and small synthetic images (no downloads, seeded)."""
import os
import os.path as osp

import numpy as np
import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_DATA = osp.join(REPO_ROOT, '..', 'shared', 'data')
TINY_CONFIG = osp.join(REPO_ROOT, 'configs', 'segrefiner', 'segrefiner_tiny.py')

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def tiny_refiner():
    """A tiny random-init DiffusionRefiner (32 px working size), seeded."""
    import warnings

    from mmseg_refiner.apis import init_refiner
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return init_refiner(TINY_CONFIG)


def make_blob_sample(h=60, w=80, seed=0):
    """A BGR uint8 image with a bright ellipse on a noisy background, its GT mask and a
    blocky (down/up-sampled) coarse mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    gt = ((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 3)) ** 2 < 1
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    img[gt] = rng.integers(180, 255, (int(gt.sum()), 3), dtype=np.uint8)
    coarse = np.kron(gt[::8, ::8], np.ones((8, 8), bool))[:h, :w]
    return img, gt, coarse


@pytest.fixture
def blob_sample():
    return make_blob_sample()
