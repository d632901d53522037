# The hook block shared by configs/refine_with/*.py: import the plugin and refine the host
# model's predictions (instances, label maps, panoptic segments) before evaluation.
# `refiner_config` is a model config (the network and its test_cfg), not a training recipe;
# `refiner_checkpoint` is a placeholder: override it, e.g.
#   --cfg-options custom_hooks.0.refiner_checkpoint=checkpoints/segrefiner_lr_r50_ckpt.pth
# 'auto' picks the instance strategy for objects up to test_cfg.hr_size (768 px: every COCO
# object, the paper's COCO setting) and the high-resolution one for larger ones.
custom_imports = dict(imports=['mmseg_refiner'], allow_failed_imports=False)
custom_hooks = [
    dict(
        type='mmseg_refiner.SegRefinerHook',
        refiner_config='configs/_base_/models/segrefiner_lr_unet.py',
        refiner_checkpoint='checkpoints/segrefiner_lr_r50_ckpt.pth',  # placeholder: override
        mode='auto',
        seed=0)
]
