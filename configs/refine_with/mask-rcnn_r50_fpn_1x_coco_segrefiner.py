# Mask R-CNN R-50-FPN (mmdet model zoo) whose masks SegRefiner refines before COCO evaluation
# (the paper's COCO setting: instance crops, all 6 steps). Boxes, scores, labels are kept.
#   python tools/test.py configs/refine_with/mask-rcnn_r50_fpn_1x_coco_segrefiner.py \
#       mask_rcnn_r50_fpn_1x_coco.pth \
#       --cfg-options custom_hooks.0.refiner_checkpoint=checkpoints/segrefiner_lr_r50_ckpt.pth
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']

custom_imports = dict(imports=['mmseg_refiner'], allow_failed_imports=False)
custom_hooks = [
    dict(
        type='mmseg_refiner.SegRefinerHook',
        refiner_config='configs/segrefiner/segrefiner_lr.py',
        refiner_checkpoint='checkpoints/segrefiner_lr_r50_ckpt.pth',  # placeholder: override
        mode='instance',
        seed=0)
]
