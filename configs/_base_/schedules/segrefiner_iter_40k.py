# The reference's HR-model schedule: as the LR one, 40k iterations, lr x0.5 at 20k and 35k.
_base_ = ['./segrefiner_iter_120k.py']
max_iters = 40000
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[20000, 35000], gamma=0.5)
]
