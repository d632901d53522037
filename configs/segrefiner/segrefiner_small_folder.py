# A small refiner (about 7 M parameters) trainable on one CPU machine, on image + mask folders
# (layout <root>/images/<id>.jpg, <root>/masks/<id>.png, split files <id> per line).
#
# Data: REFINER_DATA_ROOT (env var) is the folder holding people/ and hair/; or override one
# dataset with --cfg-options, e.g.
#   train_dataloader.dataset.datasets.0.data_root=/data/my_set
#   val_dataloader.dataset.data_root=/data/my_set val_dataloader.dataset.ann_file=val.txt
# Train:  python tools/train.py configs/segrefiner/segrefiner_small_folder.py --amp
_base_ = [
    '../_base_/models/segrefiner_lr_unet.py', '../_base_/datasets/people_hair_folder_refine.py',
    '../_base_/schedules/segrefiner_iter_4k.py', '../_base_/default_runtime.py'
]

checkpoint_interval = 250

model = dict(
    backbone=dict(model_channels=32, channel_mult=(1, 1, 2, 2, 4, 4),
                  attention_strides=(16, 32), num_heads=4),
    test_cfg=dict(crop_size=256, batch_size=8))

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=checkpoint_interval, max_keep_ckpts=3))
