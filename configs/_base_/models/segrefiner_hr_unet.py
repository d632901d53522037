# SegRefiner, full-size reference model for high-resolution / semantic refinement
# (released as segrefiner_hr_latest.pth). Same network as the LR model; inference runs the
# 'hr' strategy (global stage + full-resolution local patches) for large objects.
_base_ = ['./segrefiner_lr_unet.py']
model = dict(test_cfg=dict(hr_size=512, hr_fine_thr=0.9, hr_nms_iou=0.3, hr_max_patches=64))
