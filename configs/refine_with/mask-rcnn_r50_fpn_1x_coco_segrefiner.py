# Mask R-CNN R-50-FPN (mmdet model zoo) whose masks SegRefiner refines before COCO evaluation
# (the paper's COCO setting: instance crops, all 6 steps). Boxes, scores, labels are kept.
#   python tools/test.py configs/refine_with/mask-rcnn_r50_fpn_1x_coco_segrefiner.py \
#       mask_rcnn_r50_fpn_1x_coco.pth \
#       --cfg-options custom_hooks.0.refiner_checkpoint=checkpoints/segrefiner_lr_r50_ckpt.pth
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/segrefiner_hook.py']
