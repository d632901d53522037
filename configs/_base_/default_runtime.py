# Runtime shared by the refiner's training configs (iteration-based, mmengine Runner).
default_scope = 'mmseg_refiner'
# The optimizer wrapper module registers AutocastOptimWrapper (--amp on CPU).
custom_imports = dict(imports=['mmseg_refiner', 'mmseg_refiner.engine.optim_wrapper'],
                      allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to 'gloo' when CUDA is unavailable (CPU DDP).
    dist_cfg=dict(backend='nccl'),
)

# The metric key written by RefinerMetric (prefix 'refiner'): refiner/IoU, refiner/mBA, ...
best_metric = 'refiner/mBA'
checkpoint_interval = 1000
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # 'atomic_local' (mmseg_refiner.engine): a checkpoint file appears only once complete.
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=checkpoint_interval,
                    max_keep_ckpts=3, save_best=best_metric, rule='greater',
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
