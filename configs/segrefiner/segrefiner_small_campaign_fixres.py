# Campaign stage 3d: the stage-3c recipe (annealed, same data and coarse masks) with objects
# cropped at 384 px, the size inference crops them at (test_cfg.crop_size=384), instead of 256.
# Stages 1-3c trained on 256 px object crops, so at inference every object (and every boundary
# detail) appears 1.5x larger than the model ever saw it: the train / test resolution
# discrepancy that a short fine-tune at the test resolution removes ("FixRes", Touvron et al.,
# NeurIPS 2019). The training window stays 128 x 128 (cut around the coarse mask's errors), so
# a step costs what a stage-3c step costs; the window now holds a third of the object's width.
#
#   OMP_NUM_THREADS=2 nice -n 19 python tools/train.py \
#       configs/segrefiner/segrefiner_small_campaign_fixres.py --work-dir work_dirs/campaign/stage3d \
#       --cfg-options load_from=work_dirs/campaign/stage3c/iter_1200.pth
# Resume after a cut: the same command with --resume instead of load_from.
_base_ = ['./segrefiner_small_campaign_anneal.py']

crop_size = 384  # = test_cfg.crop_size
lr = 1e-4  # a fine-tune of an annealed model: a third of stage 3c's peak
anneal_iters = 1200
warmup_iters = 50

crop = dict(type='CropAroundObject', size=crop_size, max_context=40,
            seed={{_base_.pipeline_seed}})
sample_pipeline = [crop, {{_base_.flip}}, {{_base_.coarse}}, {{_base_.error_window}},
                   {{_base_.pack}}]
train_pipeline = [{{_base_.load}}] + sample_pipeline
data_root = '{{$REFINER_DATA_ROOT:../shared/data}}'
sources = [
    dict(data_root=data_root + '/people', ann_file='train.txt'),
    dict(data_root=data_root + '/hair', ann_file='train.txt'),
]
generated = dict(sources=sources, seed={{_base_.pipeline_seed}}, max_side={{_base_.max_side}},
                 cache_mb={{_base_.cache_mb}}, pipeline=sample_pipeline)
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(type='MaskFolderDataset', pipeline=train_pipeline, **s) for s in sources
    ] + [
        dict(type='CopyPasteDataset', length={{_base_.composite_length}}, **generated),
        dict(type='ProceduralDataset', length={{_base_.procedural_length}}, **generated),
    ]))

optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=anneal_iters,
         T_max=anneal_iters - warmup_iters, eta_min=lr * 0.01),
]
