"""CocoInstanceDataset: one COCO / LVIS instance mask per sample (the reference's LR recipe)."""
import contextlib
import io
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset

from mmseg_refiner.registry import DATASETS
from mmseg_refiner.utils.io import InputError, is_number
from mmseg_refiner.utils.masks import check_segmentation


def image_file_name(img: dict) -> str:
    """File name of a COCO / LVIS image record (LVIS v1 has only ``coco_url``)."""
    if img.get('file_name'):
        return img['file_name']
    if img.get('coco_url'):
        return img['coco_url'].rsplit('/', 1)[-1]
    raise InputError(f"image record {img.get('id')} has neither file_name nor coco_url")


def _check_image(img: dict, where: str) -> None:
    """Refuse an image record without a positive integer ``height`` / ``width``."""
    for key in ('height', 'width'):
        value = img.get(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise InputError(f'{where}: image {img.get("id")} has no valid {key!r} (a positive '
                             f'integer), got {value!r}')


def _check_box_and_area(ann: dict, where: str) -> None:
    """Refuse an annotation whose ``bbox`` is not 4 finite numbers or whose ``area`` is not
    a finite number."""
    if 'bbox' not in ann:
        raise InputError(f'{where} has no "bbox"')
    bbox = ann['bbox']
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(map(is_number, bbox))):
        raise InputError(f'{where}: "bbox" must be [x, y, width, height] (4 finite numbers), '
                         f'got {bbox!r}')
    if 'area' in ann and not is_number(ann['area']):
        raise InputError(f'{where}: "area" must be a finite number, got {ann["area"]!r}')


def _drop_degenerate_polygons(segm):
    """Polygons without the parts of fewer than 6 coordinates (a point or a line, as some
    COCO ground truth has; mmdet drops them too), or RLE unchanged. ``[]`` if none is left.
    Parts of an odd length stay, for :func:`check_segmentation` to refuse."""
    if not isinstance(segm, list):
        return segm
    return [p for p in segm if not (isinstance(p, list) and len(p) < 6 and len(p) % 2 == 0)]


def _keep(ann: dict, img: dict, min_area: float, cat_ids: Optional[set]) -> bool:
    """Non-crowd, non-ignored, with a mask, a box inside the image and area > ``min_area``."""
    if ann.get('iscrowd', 0) or ann.get('ignore', False) or not ann.get('segmentation'):
        return False
    if cat_ids is not None and ann.get('category_id') not in cat_ids:
        return False
    x, y, w, h = ann['bbox']
    inter_w = max(0, min(x + w, img['width']) - max(x, 0))
    inter_h = max(0, min(y + h, img['height']) - max(y, 0))
    return inter_w * inter_h > 0 and w >= 1 and h >= 1 and ann.get('area', 0) > min_area


@DATASETS.register_module()
class CocoInstanceDataset(BaseDataset):
    """COCO / LVIS instance annotations, one instance per sample (pycocotools).

    Crowd and ``ignore`` annotations are skipped, and so are instances of area
    ``<= min_area`` (the reference skips area <= 512) or with a box outside the image.
    Polygon parts of fewer than 6 coordinates are dropped (as mmdet does; an instance left
    without a polygon is skipped). Every kept record is checked when the file is loaded
    (image size, ``bbox``, ``area``, ``segmentation``): an InputError names the file and the
    annotation. The mask stays encoded (``mask_ann``) until :class:`LoadImageAndMask` decodes it.

    Each sample: ``img_path``, ``mask_ann``, ``height``, ``width``, ``sample_id`` (the
    annotation id), ``img_id``, ``category_id``, ``bbox`` (xywh).

    Args:
        ann_file (str): COCO-format json (``instances_train2017.json``, ``lvis_v1_train.json``).
        data_root (str): Prefix of ``ann_file`` and ``data_prefix``. Defaults to ''.
        data_prefix (dict): ``dict(img_path=<image folder>)``. Defaults to
            ``dict(img_path='')``.
        min_area (float): Keep instances with area > this. Defaults to 512.
        cat_ids (Sequence[int], optional): Keep only these categories. Defaults to None.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments.
    """

    METAINFO = dict(classes=('foreground', ))

    def __init__(self, ann_file: str, data_root: str = '', data_prefix: Optional[dict] = None,
                 min_area: float = 512, cat_ids: Optional[Sequence[int]] = None, **kwargs):
        if not is_number(min_area):
            raise InputError(f'CocoInstanceDataset: min_area must be a finite number, got '
                             f'{min_area!r}')
        self.min_area = min_area
        self.cat_ids = set(cat_ids) if cat_ids is not None else None
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix or
                         dict(img_path=''), **kwargs)

    def _load_coco(self):
        from pycocotools.coco import COCO
        if not osp.isfile(self.ann_file):
            raise InputError(f'annotation file not found: {self.ann_file}')
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                return COCO(self.ann_file)
        except Exception as exc:  # json errors, missing 'images'/'annotations', ...
            raise InputError(f'{self.ann_file} is not a COCO-format annotation file: '
                             f'{exc!r}') from exc

    def load_data_list(self) -> List[dict]:
        coco = self._load_coco()
        img_dir = self.data_prefix.get('img_path', '')
        data_list, checked_imgs = [], set()
        for index, ann in enumerate(coco.dataset.get('annotations', [])):
            img = coco.imgs.get(ann['image_id'])
            if img is None:
                raise InputError(f"annotation {ann.get('id')} in {self.ann_file} refers to "
                                 f"unknown image {ann['image_id']}")
            where = (f'{self.ann_file}: annotation {index} (id {ann.get("id")}, image '
                     f'{ann["image_id"]})')
            if ann['image_id'] not in checked_imgs:
                _check_image(img, self.ann_file)
                checked_imgs.add(ann['image_id'])
            if ann.get('segmentation'):
                ann = dict(ann, segmentation=_drop_degenerate_polygons(ann['segmentation']))
            if not ann.get('iscrowd', 0) and not ann.get('ignore', False) and \
                    ann.get('segmentation'):
                _check_box_and_area(ann, where)
            if not _keep(ann, img, self.min_area, self.cat_ids):
                continue
            check_segmentation(ann['segmentation'], img['height'], img['width'], where,
                               size_from='the annotation file')
            data_list.append(
                dict(img_path=osp.join(img_dir,
                                       image_file_name(img)), mask_ann=ann['segmentation'],
                     height=img['height'], width=img['width'], sample_id=str(ann['id']),
                     img_id=img['id'], category_id=ann.get('category_id'), bbox=ann['bbox']))
        if not data_list:
            raise InputError(f'no usable instances in {self.ann_file} (crowd / ignored / '
                             f'area <= {self.min_area} / empty masks are skipped)')
        return data_list
