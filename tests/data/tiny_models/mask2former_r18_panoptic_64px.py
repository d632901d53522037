# Mask2Former panoptic (mmdet model zoo) shrunk for CPU tests: ResNet-18, 64-d transformer with
# one encoder and one decoder layer, 10 queries, 2 thing + 1 stuff classes, random weights,
# thresholds at 0 so random weights still give segments. Data as rtmdet-ins_tiny_64px.py.
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py']

data_root = 'data/tiny/'
classes = ('a', 'b', 'c')
num_things, num_stuff, dims = 2, 1, 64
model = dict(
    backbone=dict(depth=18, init_cfg=None), panoptic_head=dict(
        in_channels=[64, 128, 256,
                     512], feat_channels=dims, out_channels=dims, num_things_classes=num_things,
        num_stuff_classes=num_stuff, num_queries=10, pixel_decoder=dict(
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(self_attn_cfg=dict(embed_dims=dims),
                               ffn_cfg=dict(embed_dims=dims, feedforward_channels=2 * dims))),
            positional_encoding=dict(num_feats=dims // 2)),
        positional_encoding=dict(num_feats=dims // 2), transformer_decoder=dict(
            num_layers=1,
            layer_cfg=dict(self_attn_cfg=dict(embed_dims=dims),
                           cross_attn_cfg=dict(embed_dims=dims),
                           ffn_cfg=dict(embed_dims=dims, feedforward_channels=2 * dims))),
        loss_cls=dict(class_weight=[1.0] * (num_things + num_stuff) + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things, num_stuff_classes=num_stuff),
    test_cfg=dict(panoptic_on=True, instance_on=False, object_mask_thr=0.0, iou_thr=0.0,
                  filter_low_score=False))

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
                      metric=['bbox'])
val_evaluator = test_evaluator
