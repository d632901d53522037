# Mask2Former R-50 panoptic (mmdet model zoo) with SegRefiner refining every segment (one mask
# per thing instance, one per stuff class) before the panoptic evaluation.
#   python tools/test.py \
#       configs/refine_with/mask2former_r50_8xb2-lsj-50e_coco-panoptic_segrefiner.py \
#       mask2former_r50_8xb2-lsj-50e_coco-panoptic.pth \
#       --cfg-options custom_hooks.0.refiner_checkpoint=checkpoints/segrefiner_lr_r50_ckpt.pth
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py']

custom_imports = dict(imports=['mmseg_refiner'], allow_failed_imports=False)
custom_hooks = [
    dict(
        type='mmseg_refiner.SegRefinerHook',
        refiner_config='configs/segrefiner/segrefiner_lr.py',
        refiner_checkpoint='checkpoints/segrefiner_lr_r50_ckpt.pth',  # placeholder: override
        mode='auto',
        seed=0)
]
