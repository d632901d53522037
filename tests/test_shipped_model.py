"""The shipped small model loads with no arguments and improves a generated example."""
import os.path as osp

import cv2
import numpy as np
import pytest

from mmseg_refiner.apis import DEFAULT_CHECKPOINT, init_refiner, refine_mask
from mmseg_refiner.evaluation.functional import mask_iou

pytestmark = pytest.mark.skipif(not osp.isfile(DEFAULT_CHECKPOINT),
                                reason='shipped checkpoint not built yet')


def generated_example(h=240, w=320, seed=0):
    """A person-like silhouette (head + body + arms) on a textured background, its GT and a
    coarse mask made the way low-resolution segmenters produce them (x8 down, up, threshold)."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((h, w), np.uint8)
    cv2.ellipse(gt, (160, 60), (28, 34), 0, 0, 360, 1, -1)
    cv2.ellipse(gt, (160, 165), (55, 80), 0, 0, 360, 1, -1)
    cv2.line(gt, (110, 120), (60, 200), 1, 14)
    cv2.line(gt, (210, 120), (262, 196), 1, 14)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    fg = np.zeros_like(bg)
    fg[:] = (40, 60, 200)
    fg = np.clip(fg + rng.normal(0, 12, fg.shape), 0, 255).astype(np.uint8)
    img = np.where(gt[..., None] > 0, fg, bg // 2 + 60)
    small = cv2.resize(gt.astype(np.float32), (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    return img, gt.astype(bool), coarse


def test_shipped_model_loads_without_arguments():
    refiner = init_refiner()
    assert refiner.backbone.model_channels == 32
    assert refiner.test_cfg['crop_size'] == 384


def test_shipped_model_improves_a_generated_example():
    refiner = init_refiner()
    img, gt, coarse = generated_example()
    refined = refine_mask(refiner, img, coarse, seed=0)
    assert mask_iou(refined, gt) > mask_iou(coarse, gt)
