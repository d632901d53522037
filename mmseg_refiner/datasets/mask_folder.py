"""MaskFolderDataset: image + binary-mask folders, one object mask per image."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset

from mmseg_refiner.registry import DATASETS
from mmseg_refiner.utils.io import IMAGE_EXTS, InputError

IMG_SUFFIXES = IMAGE_EXTS  # the package's one image-extension tuple, under its old name here


def read_split(path: str, suffixes: Sequence[str] = IMG_SUFFIXES) -> List[str]:
    """Ids of a split file: one a line; blank lines and ``#`` comments are skipped.

    A known image / mask extension on an entry (``0001.png``, as ThinObject-5K lists) is
    dropped, so the id is the file stem.
    """
    if not osp.isfile(path):
        raise InputError(f'split file not found: {path}')
    with open(path, encoding='utf-8-sig') as f:  # a byte-order mark is no part of the first id
        ids = [line.strip() for line in f]
    ids = [i for i in ids if i and not i.startswith('#')]
    return [osp.splitext(i)[0] if osp.splitext(i)[1].lower() in suffixes else i for i in ids]


def index_images(img_dir: str, suffixes: Sequence[str] = IMG_SUFFIXES) -> Dict[str, str]:
    """Map file stem -> file name for the images of ``img_dir`` (sorted, first suffix wins)."""
    if not osp.isdir(img_dir):
        raise InputError(f'image folder not found: {img_dir}')
    index = {}
    for name in sorted(os.listdir(img_dir)):
        stem, ext = osp.splitext(name)
        if ext.lower() in suffixes:
            index.setdefault(stem, name)
    return index


def _suffixes(value, name: str) -> tuple:
    """Lower-case extensions from one string (``'.jpg'``) or a list / tuple of strings."""
    if isinstance(value, str):
        value = (value, )
    if not isinstance(value, (list, tuple)) or not value or \
            not all(isinstance(s, str) and s for s in value):
        raise InputError(f"MaskFolderDataset: {name} must be an extension (e.g. '.jpg') or a "
                         f'non-empty list of them, got {value!r}')
    return tuple((s if s.startswith('.') else '.' + s).lower() for s in value)


def _raise_missing(what: str, folder: str, ids: List[str]) -> None:
    if ids:
        shown = ', '.join(ids[:5]) + (f' ... ({len(ids)} in all)' if len(ids) > 5 else '')
        raise InputError(f'{what} missing in {folder} for id(s): {shown}')


@DATASETS.register_module()
class MaskFolderDataset(BaseDataset):
    """Images and binary masks in two folders, optionally restricted by a split file.

    Layout: ``<data_root>/images/<id>.jpg|png|...`` and ``<data_root>/masks/<id>.png``
    (0 = background, 255 or 1 = foreground, same size as the image; checked when loaded).
    ``ann_file`` (e.g. ``'train.txt'``, relative to ``data_root``) lists one id a line; without
    it every image is used and each must have a mask. Optional ``data_prefix`` entries
    ``coarse_path`` / ``expanded_path`` name folders of offline coarse masks
    (``<id>.png``, see ``tools/make_coarse.py``); they must exist for every id.

    Each sample: ``img_path``, ``mask_path``, ``sample_id`` (the id), and ``coarse_path`` /
    ``expanded_path`` when configured.

    Args:
        data_root (str): Root folder.
        ann_file (str): Split file; '' for all images. Defaults to ''.
        data_prefix (dict): Sub-folders. Defaults to
            ``dict(img_path='images', mask_path='masks')``.
        img_suffixes (str | Sequence[str]): Image extension(s). Defaults to common formats.
        mask_suffix (str): Mask (and coarse mask) extension. Defaults to '.png'.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (pipeline, test_mode,
            indices, lazy_init, ...).
    """

    METAINFO = dict(classes=('foreground', ))

    def __init__(self, data_root: str, ann_file: str = '', data_prefix: Optional[dict] = None,
                 img_suffixes: Union[str, Sequence[str]] = IMG_SUFFIXES, mask_suffix: str = '.png',
                 **kwargs):
        self.img_suffixes = _suffixes(img_suffixes, 'img_suffixes')
        if not (isinstance(mask_suffix, str) and mask_suffix):
            raise InputError(f"MaskFolderDataset: mask_suffix must be one extension (e.g. "
                             f"'.png'), got {mask_suffix!r}")
        self.mask_suffix = mask_suffix
        data_prefix = data_prefix or dict(img_path='images', mask_path='masks')
        super().__init__(data_root=data_root, ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def _list_ids(self, index: Dict[str, str]) -> List[str]:
        if self.ann_file:
            ids = read_split(self.ann_file)
            _raise_missing('image', self.data_prefix['img_path'],
                           [i for i in ids if i not in index])
        else:
            ids = list(index)
        if not ids:
            where = self.ann_file or self.data_prefix['img_path']
            raise InputError(f'no samples in {where}: the dataset would be empty')
        return ids

    def _extra_paths(self, ids: List[str]) -> Dict[str, List[str]]:
        """Per-id mask paths for every mask folder in ``data_prefix``, checked to exist."""
        paths = {}
        for key in ('mask_path', 'coarse_path', 'expanded_path'):
            folder = self.data_prefix.get(key)
            if not folder:
                continue
            if not osp.isdir(folder):
                raise InputError(f'{key} folder not found: {folder}')
            paths[key] = [osp.join(folder, i + self.mask_suffix) for i in ids]
            _raise_missing(f'{key} file ({self.mask_suffix})', folder,
                           [i for i, p in zip(ids, paths[key]) if not osp.isfile(p)])
        return paths

    def load_data_list(self) -> List[dict]:
        if 'img_path' not in self.data_prefix or 'mask_path' not in self.data_prefix:
            raise InputError(f'data_prefix needs img_path and mask_path, got {self.data_prefix}')
        img_dir = self.data_prefix['img_path']
        index = index_images(img_dir, self.img_suffixes)
        ids = self._list_ids(index)
        extra = self._extra_paths(ids)
        return [
            dict(img_path=osp.join(img_dir, index[i]), sample_id=i,
                 **{k: v[n]
                    for k, v in extra.items()}) for n, i in enumerate(ids)
        ]
