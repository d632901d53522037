# Campaign stage 3e: stage 3d (segrefiner_small_campaign_fixres.py) with half of the samples
# cropped at 256 px (stages 1-3c) and half at 384 px (the inference crop size, stage 3d).
# Stage 3d (384 only) gained on gross errors (perturbed masks: +0.5-0.9 IoU over stage 3c on
# the first 24 images of each set) and lost a little on near-perfect low-resolution masks
# (-0.02-0.09 IoU); both scales at once may keep both.
#
#   OMP_NUM_THREADS=2 nice -n 19 python tools/train.py \
#       configs/segrefiner/segrefiner_small_campaign_mixres.py --work-dir work_dirs/campaign/stage3e \
#       --cfg-options load_from=work_dirs/campaign/stage3c/iter_1200.pth
_base_ = ['./segrefiner_small_campaign_fixres.py']

data_root = '{{$REFINER_DATA_ROOT:../shared/data}}'
sources = [
    dict(data_root=data_root + '/people', ann_file='train.txt'),
    dict(data_root=data_root + '/hair', ann_file='train.txt'),
]


def _parts(crop_size):
    """The four data parts (people, hair, composites, procedural) with this object crop."""
    crop = dict(type='CropAroundObject', size=crop_size, max_context=40,
                seed={{_base_.pipeline_seed}})
    pipeline = [crop, {{_base_.flip}}, {{_base_.coarse}}, {{_base_.error_window}},
                {{_base_.pack}}]
    generated = dict(sources=sources, seed={{_base_.pipeline_seed}},
                     max_side={{_base_.max_side}}, cache_mb={{_base_.cache_mb}},
                     pipeline=pipeline)
    return [
        dict(type='MaskFolderDataset', pipeline=[{{_base_.load}}] + pipeline, **s)
        for s in sources
    ] + [
        dict(type='CopyPasteDataset', length={{_base_.composite_length}}, **generated),
        dict(type='ProceduralDataset', length={{_base_.procedural_length}}, **generated),
    ]


# Each data part twice: with 384 px crops (as stage 3d) and with 256 px crops (as stage 3c).
train_dataloader = dict(dataset=dict(datasets=_parts(384) + _parts(256)))
del _parts
