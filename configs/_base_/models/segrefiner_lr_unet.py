# SegRefiner, full-size reference model (LR / instance refinement, released as
# segrefiner_lr_r50_ckpt.pth): improved-diffusion U-Net, 118.6 M parameters.
model = dict(
    type='DiffusionRefiner',
    data_preprocessor=dict(type='RefinerDataPreprocessor'),
    backbone=dict(
        type='SegRefinerUNet',
        in_channels=4,
        out_channels=1,
        model_channels=128,
        channel_mult=(1, 1, 2, 2, 4, 4),
        num_res_blocks=2,
        attention_strides=(16, 32),
        num_heads=4,
        num_timesteps=6,
        dropout=0.0,
        norm_num_groups=32),
    sampler=dict(type='TransitionSampler', num_timesteps=6, beta_start=0.8, beta_end=0.0),
    loss_mask=dict(type='MaskBCELoss', loss_weight=1.0),
    loss_texture=dict(type='TextureL1Loss', loss_weight=5.0),
    test_cfg=dict(steps=None, batch_size=32, crop_size=256, pad=20, area_thr=512,
                  mask_thr=0.5))
