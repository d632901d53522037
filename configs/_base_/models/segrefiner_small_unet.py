# The shipped small refiner's network (mmseg_refiner/checkpoints/segrefiner_small_people_hair.pth):
# 6.9 M parameters, a 5-level U-Net (no full-resolution attention, half the FLOPs of the
# reference layout at the same width), GroupNorm(8).
_base_ = ['./segrefiner_lr_unet.py']
model = dict(
    backbone=dict(model_channels=32, channel_mult=(1, 2, 2, 4, 4), attention_strides=(16, ),
                  num_heads=4, norm_num_groups=8),
    # hr: at most 16 full-resolution patches per mask keeps a 2 MP photo within seconds on CPU
    test_cfg=dict(crop_size=256, batch_size=8, hr_max_patches=16))
