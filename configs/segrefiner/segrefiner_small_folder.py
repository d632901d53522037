# A small refiner (about 7 M parameters) trainable on one CPU machine, on image + mask folders
# (layout <root>/images/<id>.jpg, <root>/masks/<id>.png, split files <id> per line).
#
# Data: REFINER_DATA_ROOT (env var) is the folder holding people/ and hair/; or override one
# dataset with --cfg-options, e.g.
#   train_dataloader.dataset.datasets.0.data_root=/data/my_set
#   val_dataloader.dataset.data_root=/data/my_set val_dataloader.dataset.ann_file=val.txt
# Train:  python tools/train.py configs/segrefiner/segrefiner_small_folder.py --amp
_base_ = ['../_base_/models/segrefiner_lr.py', '../_base_/default_runtime.py']

data_root = '{{$REFINER_DATA_ROOT:../shared/data}}'
train_sets = [
    dict(data_root=data_root + '/people', ann_file='train.txt'),
    dict(data_root=data_root + '/hair', ann_file='train.txt'),
]
val_set = dict(data_root=data_root + '/people', ann_file='val.txt')
val_subset = 32  # validate on the first N samples of the val split (None: all)

crop_size = 256
batch_size = 8
num_workers = 2
max_iters = 4000
val_interval = 500
checkpoint_interval = 250
pipeline_seed = 0

model = dict(
    backbone=dict(model_channels=32, channel_mult=(1, 1, 2, 2, 4, 4),
                  attention_strides=(16, 32), num_heads=4),
    test_cfg=dict(crop_size=crop_size, batch_size=batch_size))

train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='CropAroundObject', size=crop_size, max_context=40, seed=pipeline_seed),
    dict(type='RefinerRandomFlip', prob=0.5, seed=pipeline_seed),
    dict(type='GenerateCoarseMask', iou_range=(0.6, 0.9), seed=pipeline_seed),
    dict(type='PackRefinerInputs'),
]
# Fixed crops and coarse masks per sample: validation scores are comparable across runs.
val_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='CropAroundObject', size=crop_size, max_context=20, random=False),
    dict(type='GenerateCoarseMask', iou_range=(0.6, 0.9), seed=pipeline_seed,
         fixed_per_sample=True),
    dict(type='PackRefinerInputs'),
]

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=num_workers > 0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ConcatDataset',
        datasets=[dict(type='MaskFolderDataset', pipeline=train_pipeline, **s)
                  for s in train_sets]))
val_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MaskFolderDataset', pipeline=val_pipeline, indices=val_subset,
                 test_mode=True, **val_set))
test_dataloader = val_dataloader
val_evaluator = dict(type='RefinerMetric')
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# --amp (tools/train.py) turns this into bfloat16 autocast on CPU, AmpOptimWrapper on CUDA.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters * 2 // 3, max_iters * 5 // 6], gamma=0.5)
]

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=checkpoint_interval, max_keep_ckpts=3))
