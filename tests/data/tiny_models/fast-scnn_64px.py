# Fast-SCNN (mmseg model zoo) shrunk for CPU tests: 3 classes, 64x64 inputs, no auxiliary
# heads, BN, random weights. Data: <data_root>/img/*.png and <data_root>/ann/*.png label maps
# (tests generate them; override {test,val}_dataloader.dataset.data_root).
_base_ = ['mmseg::fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py']

data_root = 'data/tiny/'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(data_preprocessor=dict(size=None), backbone=dict(norm_cfg=norm_cfg),
             decode_head=dict(num_classes=3, norm_cfg=norm_cfg), auxiliary_head=None)

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    _delete_=True, batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BaseSegDataset', data_root=data_root,
        data_prefix=dict(img_path='img', seg_map_path='ann'), img_suffix='.png',
        seg_map_suffix='.png', metainfo=dict(classes=('a', 'b', 'c'),
                                             palette=[[0, 0, 0], [255, 0, 0],
                                                      [0, 255, 0]]), pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
val_evaluator = test_evaluator
