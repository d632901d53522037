"""Datasets and transforms for training and evaluating refiners."""
from .coco_instance import CocoInstanceDataset
from .copy_paste import CopyPasteDataset
from .hr_patch import HRPatchDataset
from .mask_folder import MaskFolderDataset
from .procedural import ProceduralDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'MaskFolderDataset', 'CocoInstanceDataset', 'HRPatchDataset', 'CopyPasteDataset',
    'ProceduralDataset'
]
