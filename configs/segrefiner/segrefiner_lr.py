# SegRefiner LR (instance) training recipe of the reference: LVIS v1 train instances on COCO
# images, one instance per sample, coarse masks made online, 256x256 object crops with up to
# 40 px context, flip; AdamW 4e-4, 120k iterations, lr x0.5 at 80k and 100k; 8 GPUs x 1.
#   bash tools/dist_train.sh configs/segrefiner/segrefiner_lr.py 8
# Paths: REFINER_COCO_ROOT (folder with train2017/, val2017/) and REFINER_LVIS_ROOT (folder
# with lvis_v1_train.json, lvis_v1_val.json), or --cfg-options.
_base_ = ['../_base_/models/segrefiner_lr.py', '../_base_/default_runtime.py']

coco_root = '{{$REFINER_COCO_ROOT:data/coco}}'
lvis_root = '{{$REFINER_LVIS_ROOT:data/lvis}}'
crop_size = 256
pipeline_seed = 0  # transforms' per-sample generators (None: OS entropy)
max_iters = 120000
val_interval = 5000
val_subset = 500  # first N val instances (None: all)

# The reference perturbs full images to IoU < 0.8 with its boundary modification only; we
# synthesize after cropping (fast) with the same recipe. For the richer mixture of
# degradations use GenerateCoarseMask's defaults (see segrefiner_small_folder.py).
coarse_cfg = dict(iou_range=(0.8, 0.8), mode_probs=dict(reference=1.0))

train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='CropAroundObject', size=crop_size, max_context=40, seed=pipeline_seed),
    dict(type='RefinerRandomFlip', prob=0.5, seed=pipeline_seed),
    dict(type='GenerateCoarseMask', seed=pipeline_seed, **coarse_cfg),
    dict(type='PackRefinerInputs'),
]
val_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='CropAroundObject', size=crop_size, max_context=20, random=False),
    dict(type='GenerateCoarseMask', seed=pipeline_seed, fixed_per_sample=True, **coarse_cfg),
    dict(type='PackRefinerInputs'),
]

train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='CocoInstanceDataset', data_root=coco_root,
                 ann_file=lvis_root + '/lvis_v1_train.json',
                 data_prefix=dict(img_path='train2017'), min_area=512,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoInstanceDataset', data_root=coco_root,
                 ann_file=lvis_root + '/lvis_v1_val.json',
                 data_prefix=dict(img_path='val2017'), min_area=512, indices=val_subset,
                 test_mode=True, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='RefinerMetric')
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[80000, 100000], gamma=0.5)
]
# The reference's batch: 8 GPUs x 1 sample (--auto-scale-lr is not wired; scale by hand).
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=5000, max_keep_ckpts=20))
