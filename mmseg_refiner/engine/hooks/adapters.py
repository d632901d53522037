"""Adapters between OpenMMLab prediction data samples and the arrays of :mod:`mmseg_refiner.apis`.

They only convert and write back; refinement itself is done by the API. Formats handled:

* mmdet ``pred_instances``: ``masks`` bool (N, H, W) tensor (or ndarray / ``BitmapMasks``),
  ``bboxes`` (N, 4) xyxy, ``scores`` (N,), ``labels`` (N,).
* mmdet ``pred_panoptic_seg.sem_seg``: int32 (1, H, W); things ``label + id * 1000``, stuff
  ``label``, void ``num_classes``.
* mmseg ``pred_sem_seg.data``: int64 (1, H, W), or float 0/1 when the model has one class.
"""
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch

from mmseg_refiner.inference.crops import mask_to_box
from mmseg_refiner.utils.io import imread_checked

#: ``mmdet.evaluation.functional.INSTANCE_OFFSET``: panoptic id = label + instance * OFFSET.
INSTANCE_OFFSET = 1000

#: (kind, data-sample field, pixel-data key) of every prediction the refiner can handle.
PREDICTION_FIELDS = (
    ('instances', 'pred_instances', 'masks'),
    ('panoptic', 'pred_panoptic_seg', 'sem_seg'),
    ('semantic', 'pred_sem_seg', 'data'),
)


def _to_numpy(value) -> np.ndarray:
    """Tensor / ndarray / ``BitmapMasks`` -> ndarray (CPU)."""
    if hasattr(value, 'to_ndarray'):  # mmdet BitmapMasks
        return value.to_ndarray()
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def prediction_samples(outputs: Sequence) -> Sequence:
    """The data samples of a step's outputs, without the trailing ``loss``-only element that
    some models append in ``val_step`` (mmengine's ``ValLoop`` pops it later)."""
    last = outputs[-1] if len(outputs) else None
    if last is not None and hasattr(last, 'keys') and list(last.keys()) == ['loss']:
        return outputs[:-1]
    return outputs


def prediction_kinds(sample) -> List[str]:
    """Kinds of refinable predictions in a data sample, in ``PREDICTION_FIELDS`` order.

    Raises:
        ValueError: If the sample holds ``pred_instances`` without ``masks`` (a detector
            without a mask head) and nothing else to refine, or no prediction at all.
    """
    kinds = [
        kind for kind, field, key in PREDICTION_FIELDS
        if field in sample and key in sample.get(field)
    ]
    if kinds:
        return kinds
    if 'pred_instances' in sample:
        raise ValueError('pred_instances has no "masks" (a detector without a mask head?): '
                         'SegRefinerHook refines masks, use an instance segmentation model')
    raise ValueError(f'the data sample has no pred_instances, pred_panoptic_seg or '
                     f'pred_sem_seg to refine (fields: {sorted(sample.keys())})')


def prediction_shape(sample, kind: str) -> Tuple[int, int]:
    """(H, W) of the ``kind`` prediction of a sample."""
    _, field, key = next(f for f in PREDICTION_FIELDS if f[0] == kind)
    value = sample.get(field).get(key)
    shape = value.masks.shape if hasattr(value, 'to_ndarray') else value.shape
    return tuple(int(s) for s in shape[-2:])


def instance_masks(instances) -> np.ndarray:
    """(N, H, W) bool masks of mmdet ``pred_instances``."""
    return _to_numpy(instances.masks).astype(bool)


def select_instances(instances, score_thr: float = 0.0,
                     max_instances: Optional[int] = None) -> np.ndarray:
    """Indices (ascending) of the instances to refine.

    Args:
        instances (InstanceData): With ``masks`` and optionally ``scores`` (N,).
        score_thr (float): Instances scoring below it are left alone. Defaults to 0.
        max_instances (int, optional): Keep only the K best-scoring ones. Defaults to all.

    Returns:
        ndarray: (K,) int64 indices.
    """
    num = len(_to_numpy(instances.masks))
    scores = _to_numpy(instances.scores).astype(np.float64) if 'scores' in instances \
        else np.ones(num)
    keep = np.flatnonzero(scores >= score_thr)
    if max_instances is not None and len(keep) > max_instances:
        keep = keep[np.argsort(-scores[keep], kind='stable')[:max_instances]]
    return np.sort(keep).astype(np.int64)


def write_instance_masks(instances, refined: np.ndarray, index: np.ndarray) -> None:
    """Write refined (K, H, W) bool masks back to ``instances.masks[index]`` in place.

    Dtype and device of ``masks`` are kept. Boxes are kept too, except all-zero boxes (heads
    such as SOLO give none), which are replaced by the refined masks' tight boxes.
    """
    masks = instances.masks
    if hasattr(masks, 'to_ndarray'):
        masks.masks[index] = refined.astype(masks.masks.dtype)
    elif torch.is_tensor(masks):
        masks[torch.from_numpy(index).to(masks.device)] = torch.from_numpy(refined).to(
            masks.device, masks.dtype)
    else:
        masks[index] = refined.astype(masks.dtype)
    if 'bboxes' in instances:
        _fill_zero_boxes(instances.bboxes, refined, index)


def _fill_zero_boxes(bboxes, refined: np.ndarray, index: np.ndarray) -> None:
    """Set all-zero rows of ``bboxes[index]`` (N, 4) to the boxes of ``refined`` masks."""
    boxes = _to_numpy(bboxes)
    for mask, i in zip(refined, index):
        box = mask_to_box(mask) if not boxes[i].any() else None
        if box is not None:
            bboxes[int(i)] = torch.tensor(box, dtype=bboxes.dtype, device=bboxes.device) \
                if torch.is_tensor(bboxes) else np.asarray(box, dtype=bboxes.dtype)


def label_map(pixel_data, key: str) -> np.ndarray:
    """The (H, W) integer map of a (1, H, W) ``PixelData`` field (float 0/1 -> int64)."""
    data = _to_numpy(pixel_data.get(key))
    data = data[0] if data.ndim == 3 else data
    if not np.issubdtype(data.dtype, np.integer):
        data = np.rint(data).astype(np.int64)
    return data


def write_label_map(pixel_data, key: str, labels: np.ndarray) -> None:
    """Write an (H, W) label map back into ``pixel_data.<key>``, keeping shape, dtype, device."""
    old = pixel_data.get(key)
    new = labels.reshape(old.shape)
    if torch.is_tensor(old):
        old.copy_(torch.from_numpy(new).to(old.device, old.dtype))
    else:
        old[...] = new.astype(old.dtype)


def panoptic_ids(ids: np.ndarray, void: int, classes: Optional[Sequence[int]] = None) -> List[int]:
    """Segment ids of a panoptic map to refine: all but ``void``, or those of ``classes``.

    Every id is refined as its own "class" (one mask per thing instance, one per stuff class).
    """
    present = [int(i) for i in np.unique(ids) if i != void]
    if classes is None:
        return present
    wanted = set(int(c) for c in classes)
    return [i for i in present if i % INSTANCE_OFFSET in wanted]


def _image_from_inputs(data: dict, index: int) -> np.ndarray:
    """(H, W, 3) uint8 BGR image of batch element ``index`` (raw, un-normalized inputs)."""
    inputs = data.get('inputs') if isinstance(data, dict) else None
    if inputs is None or index >= len(inputs):
        raise ValueError('the batch has no "inputs" for this sample')
    img = inputs[index]
    if not torch.is_tensor(img) or img.dtype != torch.uint8 or img.ndim != 3 or \
            img.shape[0] != 3:
        what = f'{img.dtype} {tuple(img.shape)}' if torch.is_tensor(img) else type(img).__name__
        raise ValueError(f'the batch inputs are not uint8 (3, H, W) BGR tensors (got {what})')
    return np.ascontiguousarray(img.detach().cpu().permute(1, 2, 0).numpy())


def sample_image(sample, data: dict, index: int, shape: Tuple[int, int]) -> np.ndarray:
    """The original BGR image of a sample, at the prediction size ``shape`` (H, W).

    Read from ``metainfo['img_path']`` when that file exists, else taken from the raw batch
    ``inputs`` (cropped to ``img_shape`` to undo padding). Resized to ``shape`` if needed.

    Raises:
        ValueError: When neither source gives an image; the message says why for both.
    """
    path = sample.metainfo.get('img_path')
    try:
        image = imread_checked(path, 'img_path') if path else None
    except ValueError as exc:
        path_problem, image = str(exc), None
    else:
        path_problem = 'metainfo has no "img_path"'
    if image is None:
        try:
            image = _image_from_inputs(data, index)
        except ValueError as exc:
            raise ValueError(f'cannot get the original image of batch sample {index}: '
                             f'{path_problem}, and {exc}') from None
        h, w = sample.metainfo.get('img_shape', image.shape[:2])[:2]
        image = image[:h, :w]
    if image.shape[:2] != tuple(shape):
        (ih, iw), (h, w) = image.shape[:2], shape
        if abs(iw * h / ih - w) > 1.5 + 0.01 * w:  # not the same picture scaled (rounding kept)
            raise ValueError(f'batch sample {index}: the predictions are {w}x{h} (WxH) but the '
                             f'image is {iw}x{ih}, another aspect ratio (padded predictions?): '
                             'they cannot be laid on the image; predict at the original image '
                             'size (mmdet: rescale=True)')
        image = mmcv.imresize(image, (shape[1], shape[0]), interpolation='bilinear')
    return image
