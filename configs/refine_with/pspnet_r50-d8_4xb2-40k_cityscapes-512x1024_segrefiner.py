# PSPNet R-50-D8 on Cityscapes (mmseg model zoo) with SegRefiner refining each class of the
# predicted label maps before IoU evaluation ('auto': large regions use the high-resolution
# strategy). The ignore index is read from the evaluator (255). For the released HR weights
# (segrefiner_hr_latest.pth) add
#   custom_hooks.0.refiner_config=configs/_base_/models/segrefiner_hr_unet.py
#   python tools/test.py \
#       configs/refine_with/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024_segrefiner.py \
#       pspnet_r50-d8_512x1024_40k_cityscapes.pth \
#       --cfg-options custom_hooks.0.refiner_checkpoint=checkpoints/segrefiner_lr_r50_ckpt.pth
_base_ = [
    'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py', '../_base_/segrefiner_hook.py'
]
