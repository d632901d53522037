# A tiny refiner (about 30 k parameters) for tests and smoke runs: same code paths as the
# full-size model, at 32x32 working size. Not useful for real refinement.
_base_ = ['../_base_/models/segrefiner_tiny_unet.py']
