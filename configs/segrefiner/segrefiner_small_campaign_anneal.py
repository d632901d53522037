# Campaign stage 3c (issue 14): the stage-3b recipe (segrefiner_small_campaign.py, same data
# and coarse masks) with the learning rate annealed to 1 % of it, from a stage-3b checkpoint.
# Stage 3b trains at a constant 3e-4 (runs are cut at arbitrary times; the EMA stands in for
# a decaying schedule); this short stage ends the run with a cosine decay, which usually buys
# the last part of the quality a constant rate leaves on the table.
#
#   OMP_NUM_THREADS=1 nice -n 19 python tools/train.py \
#       configs/segrefiner/segrefiner_small_campaign_anneal.py --work-dir work_dirs/campaign/stage3c \
#       --cfg-options load_from=work_dirs/campaign/stage3b/iter_5100.pth
# Resume after a cut: the same command with --resume instead of load_from.
_base_ = ['./segrefiner_small_campaign.py']

lr = 3e-4
anneal_iters = 1200
warmup_iters = 50  # the warm start's Adam moments are new

train_cfg = dict(max_iters=anneal_iters, val_interval=anneal_iters)
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=anneal_iters,
         T_max=anneal_iters - warmup_iters, eta_min=lr * 0.01),
]
# A shorter EMA horizon (~330 iterations) so the exported weights follow the annealed ones.
custom_hooks = [dict(type='EMAHook', momentum=0.003, update_buffers=True, priority=49)]
