# The reference's LR-model schedule: AdamW lr 4e-4 (betas 0.9 / 0.999, eps 1e-8, no weight
# decay), 120k iterations, lr x0.5 at 80k and 100k, for 8 GPUs x 1 sample.
max_iters = 120000
val_interval = 5000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# tools/train.py --amp: bfloat16 autocast on CPU (AutocastOptimWrapper), AmpOptimWrapper on CUDA.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[80000, 100000], gamma=0.5)
]
# The reference's batch: 8 GPUs x 1 sample (--auto-scale-lr is not wired; scale by hand).
auto_scale_lr = dict(enable=False, base_batch_size=8)
