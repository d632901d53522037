"""HRPatchDataset: high-resolution image + mask folders for the reference's HR recipe."""
from typing import List, Sequence

from mmseg_refiner.registry import DATASETS

from .mask_folder import MaskFolderDataset

CROP_MODES = ('object', 'patch')


@DATASETS.register_module()
class HRPatchDataset(MaskFolderDataset):
    """Every image yields an object-crop sample and a boundary-patch sample.

    The reference HR recipe (DIS-5K + ThinObject-5K) trains on both crops of each image;
    here they are two samples (``crop_mode`` 'object' and 'patch', in that order), cut by
    :class:`CropHRSample`. Offline coarse masks (``data_prefix`` ``coarse_path`` /
    ``expanded_path``, made by ``tools/make_coarse.py``) follow the reference: object
    samples take the coarse or (half the time, :class:`LoadImageAndMask`) the expanded one;
    patch samples take the expanded one half the time and otherwise get an online coarse
    mask from :class:`GenerateCoarseMask`.

    Folder layout and arguments as :class:`MaskFolderDataset`, e.g. DIS-5K:
    ``data_prefix=dict(img_path='im', mask_path='gt')``.

    Args:
        crop_modes (Sequence[str]): Samples made per image. Defaults to ('object', 'patch').
        **kwargs: :class:`MaskFolderDataset` arguments.
    """

    def __init__(self, *args, crop_modes: Sequence[str] = CROP_MODES, **kwargs):
        unknown = set(crop_modes) - set(CROP_MODES)
        if unknown or not crop_modes:
            raise ValueError(f'crop_modes must be a non-empty subset of {CROP_MODES}, '
                             f'got {crop_modes}')
        self.crop_modes = tuple(crop_modes)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = []
        for info in super().load_data_list():
            for mode in self.crop_modes:
                sample = dict(info, crop_mode=mode)
                if mode == 'patch':
                    sample.pop('coarse_path', None)
                data_list.append(sample)
        return data_list
