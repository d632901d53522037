# SegRefiner LR (instance) training recipe of the reference: LVIS v1 train instances on COCO
# images, one instance per sample, coarse masks made online, 256x256 object crops with up to
# 40 px context, flip; AdamW 4e-4, 120k iterations, lr x0.5 at 80k and 100k; 8 GPUs x 1.
#   bash tools/dist_train.sh configs/segrefiner/segrefiner_lr.py 8
# Paths: REFINER_COCO_ROOT (folder with train2017/, val2017/) and REFINER_LVIS_ROOT (folder
# with lvis_v1_train.json, lvis_v1_val.json), or --cfg-options.
# Inference with the released LR weights (segrefiner_lr_latest.pth): test_cfg.preset='reference'
# (the instance path with the guard off) reproduces the paper's COCO table (cocofied LVIS val,
# mask AP / boundary AP; Mask R-CNN R-50 39.8 / 27.3 -> 41.9 / 32.6). preset='default' adds the
# growth guard. Commands: docs/reproduce.md.
_base_ = [
    '../_base_/models/segrefiner_lr_unet.py', '../_base_/datasets/lvis_v1_instance_refine.py',
    '../_base_/schedules/segrefiner_iter_120k.py', '../_base_/default_runtime.py'
]

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=5000, max_keep_ckpts=20))
