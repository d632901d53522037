"""Datasets and transforms for training and evaluating refiners."""
from .mask_folder import MaskFolderDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['MaskFolderDataset']
