"""Shared fixtures: a tiny refiner and small synthetic images (no downloads, seeded)."""
import os
import os.path as osp
import subprocess
import sys

import cv2
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


@pytest.fixture
def ckpt(tmp_path, tiny_refiner):
    """A checkpoint file of ``tiny_refiner`` whose output layer is noisy (masks change)."""
    torch.nn.init.normal_(tiny_refiner.backbone.out[2].weight, std=0.5)
    path = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': tiny_refiner.state_dict()}, path)
    return path


@pytest.fixture
def one_thread():
    """One intra-op thread: as fast for the tiny model, and much faster than two when the
    machine is shared (OpenMP threads spin-wait). Modules that want it for every test set
    ``pytestmark = pytest.mark.usefixtures('one_thread')``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_python(code: str, cwd=None) -> str:
    """Run ``code`` in a fresh interpreter (one thread); assert it exits 0, return stdout."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def make_blob_sample(h=60, w=80, seed=0):
    """A BGR uint8 image with a bright ellipse on a noisy background, its GT mask and a
    blocky (down/up-sampled) coarse mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    gt = ((yy - h / 2) / (h / 3))**2 + ((xx - w / 2) / (w / 3))**2 < 1
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    img[gt] = rng.integers(180, 255, (int(gt.sum()), 3), dtype=np.uint8)
    coarse = np.kron(gt[::8, ::8], np.ones((8, 8), bool))[:h, :w]
    return img, gt, coarse


def write_mask_folder(root, n, seed, size=(40, 48), axes=None, splits=False) -> None:
    """A tiny folder dataset: ``images/<i>.jpg`` (noise, the object bright) and
    ``masks/<i>.png`` (a centred ellipse, 0/255) for i < n.

    Args:
        size (tuple): (H, W). Defaults to (40, 48).
        axes (tuple, optional): Ellipse half-axes; None: random per image.
        splits (bool): Also write ``train.txt`` (all ids but the last) and ``val.txt``.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    os.makedirs(osp.join(root, 'images'))
    os.makedirs(osp.join(root, 'masks'))
    for i in range(n):
        img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), np.uint8)
        half = axes or (int(rng.integers(8, 16)), int(rng.integers(6, 12)))
        cv2.ellipse(mask, (w // 2, h // 2), half, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        img[mask > 0] = (40, 200, 220)
        cv2.imwrite(osp.join(root, 'images', f'{i}.jpg'), img)
        cv2.imwrite(osp.join(root, 'masks', f'{i}.png'), mask)
    for split, ids in (('train.txt', range(n - 1)), ('val.txt', [n - 1])) if splits else ():
        with open(osp.join(root, split), 'w') as f:
            f.write(''.join(f'{i}\n' for i in ids))


@pytest.fixture
def blob_sample():
    return make_blob_sample()
