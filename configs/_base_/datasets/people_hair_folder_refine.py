# Image + mask folders (layout <root>/images/<id>.jpg, <root>/masks/<id>.png, split files
# <id> per line): the people and hair train splits, people val (first 32) for validation.
# 256 x 256 object crops with up to 40 px random context, flip, coarse masks made online
# (GenerateCoarseMask's default mixture of degradations, IoU 0.6-0.9).
#
# Data: REFINER_DATA_ROOT (env var) is the folder holding people/ and hair/; or override one
# dataset with --cfg-options, e.g.
#   train_dataloader.dataset.datasets.0.data_root=/data/my_set
#   val_dataloader.dataset.data_root=/data/my_set val_dataloader.dataset.ann_file=val.txt
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
pipeline_seed = 0

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
