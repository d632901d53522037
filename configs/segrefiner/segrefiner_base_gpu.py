# A larger refiner for one GPU and a fixed time budget (issue 14, item 6): the campaign's
# data (people + hair, copy-paste composites, procedural images; horses never train) and
# coarse masks, a U-Net twice as wide as the shipped one (model_channels 64, about 27.6 M
# parameters, a 55 MB fp16 export), whole 256 x 256 object crops (no error window), batch
# 32, bf16 autocast, AdamW. Training stops after `time_budget_s` seconds of iterations
# (TimeBudgetHook: the learning rate decays linearly over the last quarter, then a final
# checkpoint is written).
#   bash tools/gpu_train.sh       # train, export, checkpoint under $OUT (see the script)
# On CPU, for a smoke test, shrink it with --cfg-options (see tests/test_train.py).
_base_ = ['./segrefiner_small_campaign.py']

data_root = '{{$REFINER_DATA_ROOT:../shared/data}}'
time_budget_s = 480  # training seconds (start-up and the export come on top)
batch_size = 32
num_workers = 14  # coarse-mask synthesis is CPU work: most of the machine's 16 cores
lr = 4e-4
max_iters = 200000  # an upper bound: the time budget ends the run
warmup_iters = 200
val_interval = 1000000  # no validation in the short run: evaluate the export instead

model = dict(
    backbone=dict(model_channels=64, channel_mult=(1, 2, 2, 4, 4), attention_strides=(16, ),
                  num_heads=4, norm_num_groups=32),
    test_cfg=dict(crop_size=384, batch_size=32))

sample_pipeline = [{{_base_.crop}}, {{_base_.flip}}, {{_base_.coarse}}, {{_base_.pack}}]
train_pipeline = [{{_base_.load}}] + sample_pipeline
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    dataset=dict(datasets=[
        dict(type='MaskFolderDataset', pipeline=train_pipeline, data_root=data_root + '/people',
             ann_file='train.txt'),
        dict(type='MaskFolderDataset', pipeline=train_pipeline, data_root=data_root + '/hair',
             ann_file='train.txt'),
        dict(type='CopyPasteDataset', length={{_base_.composite_length}},
             sources={{_base_.sources}}, seed={{_base_.pipeline_seed}},
             max_side={{_base_.max_side}}, cache_mb={{_base_.cache_mb}},
             pipeline=sample_pipeline),
        dict(type='ProceduralDataset', length={{_base_.procedural_length}},
             sources={{_base_.sources}}, seed={{_base_.pipeline_seed}},
             max_side={{_base_.max_side}}, cache_mb={{_base_.cache_mb}},
             pipeline=sample_pipeline),
    ]))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
optim_wrapper = dict(optimizer=dict(lr=lr), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
]
custom_hooks = [
    dict(type='TimeBudgetHook', budget_s=time_budget_s, anneal_frac=0.25),
    dict(type='EMAHook', momentum=0.002, update_buffers=True, priority=49),
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=2000, max_keep_ckpts=1, save_best=None))
