"""Datasets and transforms for training and evaluating refiners."""
from .coco_instance import CocoInstanceDataset
from .hr_patch import HRPatchDataset
from .mask_folder import MaskFolderDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['MaskFolderDataset', 'CocoInstanceDataset', 'HRPatchDataset']
