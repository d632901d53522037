"""PackRefinerInputs: the data-sample contract between the pipelines and DiffusionRefiner."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement, PixelData

from mmseg_refiner.registry import TRANSFORMS

DEFAULT_META_KEYS = ('img_path', 'mask_path', 'sample_id', 'sample_idx', 'ori_shape', 'img_shape',
                     'crop_box', 'crop_mode', 'flip', 'flip_direction', 'coarse_iou',
                     'coarse_mode')


def _mask_tensor(mask: np.ndarray, key: str, shape) -> torch.Tensor:
    if mask.shape[:2] != tuple(shape[:2]):
        raise ValueError(f'{key} has shape {mask.shape[:2]} but the image is {shape[:2]}')
    return torch.from_numpy(np.ascontiguousarray(mask > 0, dtype=np.uint8)[None])


@TRANSFORMS.register_module()
class PackRefinerInputs(BaseTransform):
    """Pack the image and masks into ``dict(inputs, data_samples)`` for the refiner.

    Required Keys:

    - img (np.uint8 (H, W, 3), BGR), gt_mask (np.uint8 (H, W))
    - coarse_mask (np.uint8 (H, W); required unless ``require_coarse=False``)

    Added Keys:

    - inputs (torch.uint8 (3, H, W), BGR)
    - data_samples (BaseDataElement): ``gt_mask`` and ``coarse_mask`` as ``PixelData`` of
      (1, H, W) uint8 0/1 tensors, metainfo from ``meta_keys`` (those present).

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo. Defaults to
            ``DEFAULT_META_KEYS``.
        require_coarse (bool): Raise when there is no coarse mask. Defaults to True.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS, require_coarse: bool = True):
        self.meta_keys = tuple(meta_keys)
        self.require_coarse = require_coarse

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'img must be (H, W, 3), got {img.shape}')
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys if k in results})
        sample.gt_mask = PixelData(data=_mask_tensor(results['gt_mask'], 'gt_mask', img.shape))
        if results.get('coarse_mask') is not None:
            sample.coarse_mask = PixelData(
                data=_mask_tensor(results['coarse_mask'], 'coarse_mask', img.shape))
        elif self.require_coarse:
            raise KeyError(f"no coarse_mask for {results.get('img_path')}: add "
                           f'GenerateCoarseMask to the pipeline or list offline coarse masks')
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self):
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
