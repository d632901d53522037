# A tiny refiner (about 30 k parameters) for tests and smoke runs: the full model's code paths
# at a 32 x 32 working size. The one tiny definition: configs/segrefiner/segrefiner_tiny.py,
# tests/data/segrefiner_tiny_folder.py and tests/test_train.py use this file.
_base_ = ['./segrefiner_lr_unet.py']
model = dict(
    backbone=dict(model_channels=8, channel_mult=(1, 2), attention_strides=(2, ), num_heads=1,
                  norm_num_groups=4),
    test_cfg=dict(crop_size=32, batch_size=4, area_thr=16, pad=4, hr_size=48))
