# A tiny refiner (about 30 k parameters) for tests and smoke runs: same code paths as the
# full-size model, at 32x32 working size. Not useful for real refinement.
_base_ = ['../_base_/models/segrefiner_lr.py']
model = dict(
    backbone=dict(model_channels=8, channel_mult=(1, 2), attention_strides=(2, ),
                  num_heads=1, norm_num_groups=4),
    test_cfg=dict(crop_size=32, batch_size=4, area_thr=16, pad=4, hr_size=48))
