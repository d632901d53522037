"""SegRefinerUNet: the improved-diffusion U-Net used by SegRefiner as its denoiser.

Module names and shapes follow the reference ``DenoiseUNet`` (itself improved-diffusion's
``UNetModel``) one to one, so the released SegRefiner checkpoints (keys under
``denoise_model.``) load unchanged. The network maps ``(image ++ mask_t, t)`` to logits and
knows nothing about masks or the diffusion schedule.

Fast path (:meth:`SegRefinerUNet.set_channels_last` + ``torch.autocast(dtype=torch.bfloat16)``):
every op keeps bf16 activations in the channels_last layout, so the convolutions reach
oneDNN's native bf16 kernels (AVX512-BF16, AMX) without layout or dtype round trips: GroupNorm
normalizes bf16 input directly (the kernel accumulates its statistics in float32), attention
works on (B, H*W, C) tokens, which are a view of a channels_last tensor, and nearest
upsampling and concatenation keep the layout.
"""
from abc import abstractmethod
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmseg_refiner.registry import MODELS


class GroupNorm32(nn.GroupNorm):
    """GroupNorm with float32 statistics whatever the input dtype (as improved-diffusion).

    bfloat16 input is normalized as it is: torch's kernels accumulate mean and variance in
    float32 and round only the output, which is what a float32 round trip gives too, without
    the two extra copies (measured on the shipped model: docs/fast_path.md). Other reduced
    dtypes (float16) are normalized in float32 and cast back.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16:
            return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        return super().forward(x.float()).type(x.dtype)


def normalization(channels: int, num_groups: int = 32) -> nn.Module:
    if channels % num_groups:
        raise ValueError(f'GroupNorm needs channels ({channels}) divisible by norm_num_groups '
                         f'({num_groups}); choose model_channels/channel_mult accordingly')
    return GroupNorm32(num_groups, channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a module's parameters (the output conv starts as the zero map)."""
    for p in module.parameters():
        p.detach().zero_()
    return module


class TimestepBlock(nn.Module):
    """A module whose ``forward`` takes the timestep embedding as a second argument."""

    @abstractmethod
    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Apply the module to ``x`` given the embedding ``emb`` of shape (B, E)."""


class TimestepEmbedSequential(nn.Sequential, TimestepBlock):
    """Sequential that passes the embedding to the children that take one."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, TimestepBlock) else layer(x)
        return x


class Upsample(nn.Module):
    """Nearest x2 upsampling followed by a 3x3 conv (``use_conv``)."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.channels = channels
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """Strided 3x3 conv (``use_conv``) or 2x2 average pooling."""

    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.channels = channels
        self.op = (nn.Conv2d(channels, channels, 3, stride=2, padding=1)
                   if use_conv else nn.AvgPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ResBlock(TimestepBlock):
    """Residual block with an additive timestep embedding (no scale-shift norm)."""

    def __init__(self, channels: int, emb_channels: int, dropout: float, out_channels: int = None,
                 norm_num_groups: int = 32):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.in_layers = nn.Sequential(normalization(channels, norm_num_groups), nn.SiLU(),
                                       nn.Conv2d(channels, self.out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, self.out_channels))
        self.out_layers = nn.Sequential(
            normalization(self.out_channels, norm_num_groups), nn.SiLU(), nn.Dropout(p=dropout),
            nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1))
        self.skip_connection = (nn.Identity() if self.out_channels == channels else nn.Conv2d(
            channels, self.out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).type(h.dtype)[..., None, None]
        return self.skip_connection(x) + self.out_layers(h)


class AttentionBlock(nn.Module):
    """Spatial self-attention over all positions (improved-diffusion's legacy head layout).

    ``qkv`` is a 1x1 conv1d; its output channels are split head by head, and within a head
    into q, k, v (the "legacy" order of the released weights). Attention itself is torch's
    ``scaled_dot_product_attention`` with the same 1/sqrt(head_dim) scaling. The block works
    on (B, H*W, C) tokens (the 1x1 convs applied as matmuls), which keeps channels_last
    activations in place.
    """

    def __init__(self, channels: int, num_heads: int = 1, norm_num_groups: int = 32):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f'channels ({channels}) must be divisible by num_heads ({num_heads})')
        self.channels = channels
        self.num_heads = num_heads
        self.norm = normalization(channels, norm_num_groups)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        # (B, N, C) tokens: a view when x is channels_last, so 1x1 convs become plain matmuls
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        qkv = F.linear(tokens, self.qkv.weight[..., 0], self.qkv.bias)  # (B, N, 3C)
        head_dim = c // self.num_heads
        qkv = qkv.reshape(b, -1, self.num_heads, 3 * head_dim).transpose(1, 2)
        q, k, v = qkv.split(head_dim, dim=-1)  # each (B, heads, N, head_dim)
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, c)
        h = F.linear(h, self.proj_out.weight[..., 0], self.proj_out.bias)
        # back to (B, C, H, W), channels_last in memory
        return x + h.reshape(b, height, width, c).permute(0, 3, 1, 2)


@MODELS.register_module()
class SegRefinerUNet(BaseModule):
    """The U-Net denoiser of SegRefiner (Wang et al., NeurIPS 2023).

    Args:
        in_channels (int): Input channels (RGB + mask state). Defaults to 4.
        model_channels (int): Base width. Defaults to 128 (the released models).
        out_channels (int): Output channels (mask logits). Defaults to 1.
        num_res_blocks (int): Residual blocks per level. Defaults to 2.
        attention_strides (Sequence[int]): Downsampling factors at which self-attention is
            used. Defaults to (16, 32).
        channel_mult (Sequence[int]): Width multiplier per level.
            Defaults to (1, 1, 2, 2, 4, 4).
        num_heads (int): Attention heads. Defaults to 4.
        num_heads_upsample (int, optional): Heads in the decoder; ``None`` = ``num_heads``.
        num_timesteps (int): Size of the learned timestep embedding table. Defaults to 6.
        dropout (float): Dropout in residual blocks. Defaults to 0.
        conv_resample (bool): Learned conv up/down-sampling. Defaults to True.
        norm_num_groups (int): GroupNorm groups (32 in the reference). Defaults to 32.
        init_cfg (dict, optional): mmengine init config. Defaults to None.
    """

    def __init__(self, in_channels: int = 4, model_channels: int = 128, out_channels: int = 1,
                 num_res_blocks: int = 2, attention_strides: Sequence[int] = (16, 32),
                 channel_mult: Sequence[int] = (1, 1, 2, 2, 4, 4), num_heads: int = 4,
                 num_heads_upsample: int = None, num_timesteps: int = 6, dropout: float = 0.0,
                 conv_resample: bool = True, norm_num_groups: int = 32, init_cfg: dict = None):
        super().__init__(init_cfg)
        if channel_mult[0] != 1:
            raise ValueError(f'channel_mult must start with 1, got {tuple(channel_mult)}')
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.channel_mult = tuple(channel_mult)
        self.num_timesteps = num_timesteps
        emb_dim = model_channels * 4
        heads_up = num_heads if num_heads_upsample is None else num_heads_upsample
        res = dict(emb_channels=emb_dim, dropout=dropout, norm_num_groups=norm_num_groups)
        attn = dict(norm_num_groups=norm_num_groups)

        self.time_embed = nn.Embedding(num_timesteps, emb_dim)
        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(nn.Conv2d(in_channels, model_channels, 3, padding=1))])
        skip_chans, ch, ds = [model_channels], model_channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, out_channels=mult * model_channels, **res)]
                ch = mult * model_channels
                if ds in attention_strides:
                    layers.append(AttentionBlock(ch, num_heads, **attn))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch, conv_resample)))
                skip_chans.append(ch)
                ds *= 2
        self.downsample_factor = ds

        self.middle_block = TimestepEmbedSequential(ResBlock(ch, **res),
                                                    AttentionBlock(ch, num_heads, **attn),
                                                    ResBlock(ch, **res))

        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [
                    ResBlock(ch + skip_chans.pop(), out_channels=model_channels * mult, **res)
                ]
                ch = model_channels * mult
                if ds in attention_strides:
                    layers.append(AttentionBlock(ch, heads_up, **attn))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch, conv_resample))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            normalization(ch, norm_num_groups), nn.SiLU(),
            zero_module(nn.Conv2d(model_channels, out_channels, 3, padding=1)))
        self.channels_last = False

    def set_channels_last(self, enabled: bool = True) -> 'SegRefinerUNet':
        """Keep weights and activations in the channels_last (NHWC) memory layout, or not.

        The layout changes neither the parameters' values nor the state-dict keys; inputs are
        converted in :meth:`forward`. channels_last is what oneDNN's fast bf16 kernels use.

        Args:
            enabled (bool): channels_last (True) or torch's default layout. Defaults to True.

        Returns:
            SegRefinerUNet: self.
        """
        if enabled != self.channels_last:
            self.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)
            self.channels_last = bool(enabled)
        return self

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predict logits of the clean map.

        Args:
            x (Tensor): Input of shape (B, in_channels, H, W); H and W divisible by
                ``downsample_factor``.
            t (Tensor): Timesteps of shape (B,), long, in ``[0, num_timesteps)``.

        Returns:
            Tensor: Logits of shape (B, out_channels, H, W).
        """
        h, w = x.shape[-2:]
        if h % self.downsample_factor or w % self.downsample_factor:
            raise ValueError(f'input size {h}x{w} must be divisible by '
                             f'{self.downsample_factor} (the U-Net downsampling factor)')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        emb = self.time_embed(t.long())
        hs = []
        for module in self.input_blocks:
            x = module(x, emb)
            hs.append(x)
        x = self.middle_block(x, emb)
        for module in self.output_blocks:
            x = module(torch.cat([x, hs.pop()], dim=1), emb)
        return self.out(x)
