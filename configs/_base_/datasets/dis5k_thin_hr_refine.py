# DIS-5K train + ThinObject-5K train (the reference HR recipe's data): every image gives an
# object crop (context out to the border) and a 256 x 256 boundary patch, both resized to
# 256; coarse masks made offline (half the time the "expanded" one).
#
# Offline coarse masks first (resumable):
#   python tools/make_coarse.py $DIS/DIS-TR --mask-dir gt --workers 8
#   python tools/make_coarse.py $THIN --mask-dir masks --split list/train.txt --workers 8
# Without them set use_offline_coarse=False (coarse masks are then made online per crop).
dis_root = '{{$REFINER_DIS_ROOT:data/DIS5K}}'
thin_root = '{{$REFINER_THIN_ROOT:data/thin_object}}'
crop_size = 256
pipeline_seed = 0  # transforms' per-sample generators (None: OS entropy)
val_subset = 100
use_offline_coarse = True

coarse_prefix = dict(coarse_path='coarse', expanded_path='coarse_expand') \
    if use_offline_coarse else dict()
coarse_cfg = dict(iou_range=(0.8, 0.8), mode_probs=dict(reference=1.0))

train_pipeline = [
    dict(type='LoadImageAndMask', expand_prob=0.5, seed=pipeline_seed),
    dict(type='CropHRSample', size=crop_size, patch_size=crop_size, seed=pipeline_seed),
    dict(type='RefinerRandomFlip', prob=0.5, seed=pipeline_seed),
    dict(type='GenerateCoarseMask', expand_prob=0.0 if use_offline_coarse else 0.5,
         seed=pipeline_seed, **coarse_cfg),
    dict(type='PackRefinerInputs'),
]
val_pipeline = [
    dict(type='LoadImageAndMask', load_coarse=False),
    dict(type='CropAroundObject', size=crop_size, max_context=20, random=False),
    dict(type='GenerateCoarseMask', seed=pipeline_seed, fixed_per_sample=True, **coarse_cfg),
    dict(type='PackRefinerInputs'),
]

train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(type='HRPatchDataset', data_root=dis_root + '/DIS-TR',
                 data_prefix=dict(img_path='im', mask_path='gt', **coarse_prefix),
                 pipeline=train_pipeline),
            dict(type='HRPatchDataset', data_root=thin_root, ann_file='list/train.txt',
                 data_prefix=dict(img_path='images', mask_path='masks', **coarse_prefix),
                 pipeline=train_pipeline),
        ]))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MaskFolderDataset', data_root=dis_root + '/DIS-VD',
                 data_prefix=dict(img_path='im', mask_path='gt'), indices=val_subset,
                 test_mode=True, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='RefinerMetric')
test_evaluator = val_evaluator
