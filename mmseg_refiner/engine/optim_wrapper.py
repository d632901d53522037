"""Autocast (mixed precision) optimizer wrapper that also works on CPU.

mmengine's ``AmpOptimWrapper`` asserts a GPU/NPU/MLU device. On CPU, bfloat16 autocast needs
no loss scaling (bf16 has float32's exponent range), so a plain :class:`OptimWrapper` whose
``optim_context`` enters ``torch.autocast`` is all that is needed. ``tools/train.py --amp``
picks this wrapper on CPU and ``AmpOptimWrapper`` on CUDA.

It also puts the U-Net into the channels_last layout (once, at the first step): oneDNN's bf16
convolutions (AVX512-BF16, AMX) are fast only in that layout, forward and backward alike.
"""
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast

from mmseg_refiner.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """:class:`OptimWrapper` that runs the forward pass under ``torch.autocast``.

    Args:
        dtype (str | torch.dtype): Autocast dtype. Defaults to 'bfloat16'.
        channels_last (bool): Switch the model's backbone to channels_last at the first step
            (if it has ``set_channels_last``, as :class:`SegRefinerUNet`). Defaults to True.
        **kwargs: :class:`OptimWrapper` arguments (optimizer, clip_grad, ...).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16', channels_last: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            if dtype not in ('bfloat16', 'float16', 'float32'):
                raise ValueError(
                    f"dtype must be 'bfloat16', 'float16' or 'float32', got {dtype!r}")
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype
        self.channels_last = bool(channels_last)

    def _set_layout(self, model: torch.nn.Module) -> None:
        """channels_last for the backbone (a no-op once done, and for other backbones)."""
        model = model.module if is_model_wrapper(model) else model
        backbone = getattr(model, 'backbone', None)
        if self.channels_last and hasattr(backbone, 'set_channels_last'):
            backbone.set_channels_last(True)

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        """Gradient-accumulation context of :class:`OptimWrapper` plus autocast."""
        self._set_layout(model)
        with super().optim_context(model), autocast(dtype=self.cast_dtype, cache_enabled=False):
            yield
