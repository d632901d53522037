# The shipped small refiner (mmseg_refiner/checkpoints/segrefiner_small_people_hair.pth),
# stage 1: 6.9 M parameters (configs/_base_/models/segrefiner_small_unet.py), trained on one
# 2-core CPU (batch 4, lr 6e-4). Differences to segrefiner_small_folder.py: a 5-level U-Net
# (no full-resolution attention, half the FLOPs of the reference layout), 128x128 training
# windows cut around the coarse mask's errors from 256x256 object crops (same object scale as
# inference at 256, a quarter of the pixels per step), and coarse masks weighted towards the
# errors real models make (low resolution, polygon outlines).
# Data: REFINER_DATA_ROOT (default ../shared/data) with people/ and hair/ (research-only data).
#   OMP_NUM_THREADS=1 python tools/train.py configs/segrefiner/segrefiner_small_people_hair.py --amp
_base_ = [
    '../_base_/models/segrefiner_small_unet.py', '../_base_/datasets/people_hair_folder_refine.py',
    '../_base_/schedules/segrefiner_iter_4k.py', '../_base_/default_runtime.py'
]

data_root = '{{$REFINER_DATA_ROOT:../shared/data}}'
window = 128
batch_size = 4
num_workers = 1
checkpoint_interval = 200

coarse_modes = dict(reference=0.35, lowres=0.25, polygon=0.2, blur=0.1, holes_islands=0.1)
train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='CropAroundObject', size=256, max_context=40, seed={{_base_.pipeline_seed}}),
    dict(type='RefinerRandomFlip', prob=0.5, seed={{_base_.pipeline_seed}}),
    dict(type='GenerateCoarseMask', iou_range=(0.6, 0.95), mode_probs=coarse_modes,
         seed={{_base_.pipeline_seed}}),
    dict(type='RandomErrorWindow', size=window, error_prob=0.8, seed={{_base_.pipeline_seed}}),
    dict(type='PackRefinerInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    dataset=dict(datasets=[
        dict(type='MaskFolderDataset', pipeline=train_pipeline, data_root=data_root + '/' + name,
             ann_file='train.txt') for name in ('people', 'hair')
    ]))

train_cfg = dict(val_interval=1000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end={{_base_.max_iters}},
         milestones=[3000, 3600], gamma=0.5)
]
optim_wrapper = dict(optimizer=dict(lr=6e-4))
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval, max_keep_ckpts=4))
