# Tiny training config for tests/test_train.py: the tiny refiner
# (configs/_base_/models/segrefiner_tiny_unet.py) on 32x32 crops of the folder data generated
# under REFINER_DATA_ROOT (train/ and val/ sub-folders). Seconds per run on a CPU; exercises
# the same Runner, hooks, dataset and transforms as the real configs.
_base_ = [
    '../../configs/_base_/models/segrefiner_tiny_unet.py',
    '../../configs/_base_/datasets/people_hair_folder_refine.py',
    '../../configs/_base_/schedules/segrefiner_iter_4k.py',
    '../../configs/_base_/default_runtime.py'
]

data_root = '{{$REFINER_DATA_ROOT:data}}'
crop_size = 32
max_iters = 2

train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='CropAroundObject', size=crop_size, max_context=4, seed=0),
    dict(type='RefinerRandomFlip', prob=0.5, seed=0),
    dict(type='GenerateCoarseMask', iou_range=(0.6, 0.9), seed=0),
    dict(type='PackRefinerInputs'),
]
val_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='CropAroundObject', size=crop_size, max_context=2, random=False),
    dict(type='GenerateCoarseMask', iou_range=(0.6, 0.9), seed=0, fixed_per_sample=True),
    dict(type='PackRefinerInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='MaskFolderDataset', data_root=data_root + '/train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0,
    dataset=dict(_delete_=True, type='MaskFolderDataset', data_root=data_root + '/val',
                 pipeline=val_pipeline, test_mode=True))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[max_iters],
         gamma=0.5)
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=2))
