# Mask2Former R-50 panoptic (mmdet model zoo) with SegRefiner refining every segment (one mask
# per thing instance, one per stuff class) before the panoptic evaluation.
#   python tools/test.py \
#       configs/refine_with/mask2former_r50_8xb2-lsj-50e_coco-panoptic_segrefiner.py \
#       mask2former_r50_8xb2-lsj-50e_coco-panoptic.pth \
#       --cfg-options custom_hooks.0.refiner_checkpoint=checkpoints/segrefiner_lr_r50_ckpt.pth
_base_ = [
    'mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
    '../_base_/segrefiner_hook.py'
]
