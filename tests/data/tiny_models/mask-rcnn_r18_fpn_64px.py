# Mask R-CNN (mmdet model zoo) shrunk for CPU tests: ResNet-18 FPN, 2 classes, 64 px inputs,
# at most 3 instances, score_thr 0 so random weights still give detections (nothing is
# downloaded). Data: <data_root>/img/*.png + <data_root>/ann.json (tests generate them and
# override {test,val}_dataloader.dataset.data_root and {test,val}_evaluator.ann_file).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']

data_root = 'data/tiny/'
classes = ('a', 'b')
model = dict(
    backbone=dict(depth=18, init_cfg=None), neck=dict(in_channels=[64, 128, 256, 512],
                                                      out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64), roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=64,
                       num_classes=len(classes)), mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=1, in_channels=64, conv_out_channels=64,
                       num_classes=len(classes))),
    test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=20), rcnn=dict(score_thr=0.0, max_per_img=3)))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
test_dataloader = dict(
    _delete_=True, batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=data_root, ann_file='ann.json',
                 data_prefix=dict(img='img/'), metainfo=dict(classes=classes), test_mode=True,
                 pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(_delete_=True, type='CocoMetric', ann_file=data_root + 'ann.json',
                      metric=['bbox', 'segm'])
val_evaluator = test_evaluator
