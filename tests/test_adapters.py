"""Unit tests of the prediction <-> array adapters of SegRefinerHook (no models)."""
import mmcv
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement, InstanceData, PixelData

from mmseg_refiner.engine.hooks import adapters


def _instances(n=3, h=20, w=30, zero_boxes=False):
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    for i in range(n):
        masks[i, 2 + i:8 + 2 * i, 3 + i:10 + 3 * i] = True
    boxes = torch.zeros(n, 4) if zero_boxes else torch.tensor([[1., 2., 3., 4.]] * n)
    return InstanceData(masks=masks, bboxes=boxes, scores=torch.tensor([0.9, 0.2, 0.6][:n]),
                        labels=torch.arange(n))


def test_prediction_kinds_and_clear_errors():
    sample = BaseDataElement(pred_instances=_instances(),
                             pred_sem_seg=PixelData(data=torch.zeros(1, 20, 30)))
    assert adapters.prediction_kinds(sample) == ['instances', 'semantic']
    boxes_only = BaseDataElement(pred_instances=InstanceData(bboxes=torch.zeros(2, 4)))
    with pytest.raises(ValueError, match='no "masks".*mask head'):
        adapters.prediction_kinds(boxes_only)
    with pytest.raises(ValueError, match='no pred_instances, pred_panoptic_seg or pred_sem_seg'):
        adapters.prediction_kinds(BaseDataElement(gt_sem_seg=PixelData(data=torch.zeros(1, 2, 2))))
    assert adapters.prediction_shape(sample, 'instances') == (20, 30)


def test_prediction_samples_drops_a_trailing_loss_element():
    samples = [BaseDataElement(pred_instances=_instances())]
    assert adapters.prediction_samples(samples) is samples
    loss = BaseDataElement(loss=dict(loss_mask=torch.tensor(1.)))
    assert adapters.prediction_samples(samples + [loss]) == samples


@pytest.mark.parametrize('score_thr,max_instances,expected', [(0.0, None, [0, 1, 2]),
                                                              (0.5, None, [0, 2]),
                                                              (0.0, 2, [0, 2]), (0.7, 5, [0]),
                                                              (0.95, None, []), (0.0, 0, [])])
def test_select_instances(score_thr, max_instances, expected):
    index = adapters.select_instances(_instances(), score_thr, max_instances)
    assert index.tolist() == expected and index.dtype == np.int64


def test_write_instance_masks_in_place_keeps_boxes_dtype():
    inst = _instances()
    masks_before, boxes_before = inst.masks.clone(), inst.bboxes.clone()
    refined = np.zeros((2, 20, 30), bool)
    refined[:, 5:9, 6:12] = True
    adapters.write_instance_masks(inst, refined, np.array([0, 2]))
    assert inst.masks.dtype == torch.bool
    assert torch.equal(inst.masks[1], masks_before[1])
    assert np.array_equal(inst.masks[[0, 2]].numpy(), refined)
    assert torch.equal(inst.bboxes, boxes_before)  # non-zero boxes are never touched


def test_write_instance_masks_fills_all_zero_boxes_from_refined_masks():
    inst = _instances(zero_boxes=True)
    refined = np.zeros((1, 20, 30), bool)
    refined[0, 4:7, 10:15] = True
    adapters.write_instance_masks(inst, refined, np.array([1]))
    assert inst.bboxes[1].tolist() == [10., 4., 15., 7.]
    assert not inst.bboxes[[0, 2]].any()  # not refined: left as the head gave them


def test_label_map_roundtrip_keeps_dtype_and_shape():
    for dtype in (torch.int32, torch.int64, torch.float32):
        data = torch.tensor([[[0, 1], [1, 0]]], dtype=dtype)
        pixel = PixelData(data=data)
        labels = adapters.label_map(pixel, 'data')
        assert labels.shape == (2, 2) and np.issubdtype(labels.dtype, np.integer)
        adapters.write_label_map(pixel, 'data', 1 - labels)
        assert pixel.data is data and data.dtype == dtype and data.shape == (1, 2, 2)
        assert data[0].tolist() == [[1, 0], [0, 1]]


def test_panoptic_ids_skip_void_and_filter_by_category():
    ids = np.array([[3, 1000, 2001], [1, 3, 1]], dtype=np.int32)  # void = 3
    assert adapters.panoptic_ids(ids, void=3) == [1, 1000, 2001]
    assert adapters.panoptic_ids(ids, void=3, classes=[0]) == [1000]  # things of class 0
    assert adapters.panoptic_ids(ids, void=3, classes=[1]) == [1, 2001]


def _sample(**meta):
    return BaseDataElement(metainfo=meta)


def test_sample_image_from_img_path(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    mmcv.imwrite(img, str(tmp_path / 'a.png'))
    out = adapters.sample_image(_sample(img_path=str(tmp_path / 'a.png')), {}, 0, (12, 16))
    assert np.array_equal(out, img)
    assert adapters.sample_image(_sample(img_path=str(tmp_path / 'a.png')), {}, 0,
                                 (24, 32)).shape == (24, 32, 3)
    assert adapters.sample_image(_sample(img_path=str(tmp_path / 'a.png')), {}, 0,
                                 (7, 9)).shape == (7, 9, 3)  # rounded scaling is fine
    with pytest.raises(
            ValueError, match=r'the predictions are 16x16 \(WxH\) but the image is '
            r'16x12, another aspect ratio'):
        adapters.sample_image(_sample(img_path=str(tmp_path / 'a.png')), {}, 0, (16, 16))


def test_sample_image_from_padded_batch_inputs():
    img = np.random.default_rng(1).integers(0, 255, (10, 14, 3), dtype=np.uint8)
    padded = torch.zeros(3, 16, 16, dtype=torch.uint8)
    padded[:, :10, :14] = torch.from_numpy(img).permute(2, 0, 1)
    data = dict(inputs=[torch.zeros(3, 16, 16, dtype=torch.uint8), padded])
    sample = _sample(img_shape=(10, 14), ori_shape=(20, 28))
    assert np.array_equal(adapters.sample_image(sample, data, 1, (10, 14)), img)
    assert adapters.sample_image(sample, data, 1, (20, 28)).shape == (20, 28, 3)


def test_sample_image_error_names_both_sources(tmp_path):
    data = dict(inputs=[torch.zeros(3, 8, 8)])  # float: already normalized
    with pytest.raises(ValueError, match='not found.*nope.png.*not uint8'):
        adapters.sample_image(_sample(img_path=str(tmp_path / 'nope.png')), data, 0, (8, 8))
    with pytest.raises(ValueError, match='no "img_path".*no "inputs"'):
        adapters.sample_image(_sample(), {}, 0, (8, 8))
