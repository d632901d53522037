# The shipped small refiner (mmseg_refiner/checkpoints/segrefiner_small_people_hair.pth):
# 6.9 M parameters, trained on one 2-core CPU (batch 4, lr 6e-4). Differences to segrefiner_small_folder.py:
# a 5-level U-Net (no full-resolution attention, half the FLOPs of the reference layout),
# 128x128 training windows cut around the coarse mask's errors from 256x256 object crops
# (same object scale as inference at 256, a quarter of the pixels per step), and coarse masks
# weighted towards the errors real models make (low resolution, polygon outlines).
# Data: REFINER_DATA_ROOT (default ../shared/data) with people/ and hair/ (research-only data).
_base_ = ['./segrefiner_small_folder.py']

data_root = '{{$REFINER_DATA_ROOT:../shared/data}}'
train_sets = [
    dict(data_root=data_root + '/people', ann_file='train.txt'),
    dict(data_root=data_root + '/hair', ann_file='train.txt'),
]
window = 128
max_iters = 4000
batch_size = 4
val_interval = 1000
checkpoint_interval = 200
pipeline_seed = 0
num_workers = 1

model = dict(
    backbone=dict(model_channels=32, channel_mult=(1, 2, 2, 4, 4), attention_strides=(16, ),
                  num_heads=4, norm_num_groups=8),
    # hr: at most 16 full-resolution patches per mask keeps a 2 MP photo within seconds on CPU
    test_cfg=dict(crop_size=256, batch_size=8, hr_max_patches=16))

coarse_modes = dict(reference=0.35, lowres=0.25, polygon=0.2, blur=0.1, holes_islands=0.1)
train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='CropAroundObject', size=256, max_context=40, seed=pipeline_seed),
    dict(type='RefinerRandomFlip', prob=0.5, seed=pipeline_seed),
    dict(type='GenerateCoarseMask', iou_range=(0.6, 0.95), mode_probs=coarse_modes,
         seed=pipeline_seed),
    dict(type='RandomErrorWindow', size=window, error_prob=0.8, seed=pipeline_seed),
    dict(type='PackRefinerInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    dataset=dict(datasets=[
        dict(type='MaskFolderDataset', pipeline=train_pipeline, **s)
        for s in train_sets
    ]))

train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[3000, 3600], gamma=0.5)
]
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval, max_keep_ckpts=4))
optim_wrapper = dict(optimizer=dict(lr=6e-4))
