# LVIS v1 instances on COCO images, one instance per sample (the reference LR recipe's data):
# 256 x 256 object crops with up to 40 px random context, flip, coarse masks made online from
# the ground truth with the reference's boundary perturbation to IoU 0.8.
# Paths: REFINER_COCO_ROOT (folder with train2017/, val2017/) and REFINER_LVIS_ROOT (folder
# with lvis_v1_train.json, lvis_v1_val.json), or --cfg-options.
coco_root = '{{$REFINER_COCO_ROOT:data/coco}}'
lvis_root = '{{$REFINER_LVIS_ROOT:data/lvis}}'
crop_size = 256
pipeline_seed = 0  # transforms' per-sample generators (None: OS entropy)
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
