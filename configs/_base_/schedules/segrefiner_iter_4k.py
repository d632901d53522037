# A CPU-sized schedule: 4k iterations, validation every 500, lr x0.5 at 2/3 and 5/6 of the run.
_base_ = ['./segrefiner_iter_120k.py']
max_iters = 4000
val_interval = 500
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters * 2 // 3, max_iters * 5 // 6], gamma=0.5)
]
