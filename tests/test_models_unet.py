import math

import pytest
import torch

from mmseg_refiner.models import SegRefinerUNet
from mmseg_refiner.models.unet import AttentionBlock

TINY = dict(model_channels=8, channel_mult=(1, 2), attention_strides=(2, ), num_heads=1,
            norm_num_groups=4)


def test_forward_shape_and_dtype():
    torch.manual_seed(0)
    net = SegRefinerUNet(**TINY)
    x = torch.randn(2, 4, 32, 48)
    out = net(x, torch.tensor([0, 5]))
    assert out.shape == (2, 1, 32, 48)
    # zero-initialised output conv: the untrained net predicts exactly 0 logits
    assert torch.count_nonzero(out) == 0


def test_indivisible_input_is_a_clear_error():
    net = SegRefinerUNet(**TINY)
    with pytest.raises(ValueError, match='divisible by 2'):
        net(torch.randn(1, 4, 33, 32), torch.tensor([0]))


def test_bad_groupnorm_config_is_a_clear_error():
    with pytest.raises(ValueError, match='norm_num_groups'):
        SegRefinerUNet(model_channels=8, channel_mult=(1, 2), attention_strides=(), num_heads=1)


def _reference_attention(block, x):
    """improved-diffusion's legacy QKVAttention written out with einsum."""
    b, c, *spatial = x.shape
    x = x.reshape(b, c, -1)
    qkv = block.qkv(block.norm(x)).reshape(b * block.num_heads, -1, x.shape[-1])
    ch = qkv.shape[1] // 3
    q, k, v = torch.split(qkv, ch, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    weight = torch.einsum('bct,bcs->bts', q * scale, k * scale).softmax(-1)
    h = torch.einsum('bts,bcs->bct', weight, v).reshape(b, -1, x.shape[-1])
    return (x + block.proj_out(h)).reshape(b, c, *spatial)


@pytest.mark.parametrize('heads', [1, 2, 4])
def test_sdpa_attention_matches_reference_layout(heads):
    torch.manual_seed(heads)
    block = AttentionBlock(16, num_heads=heads, norm_num_groups=4)
    torch.nn.init.normal_(block.proj_out.weight)
    x = torch.randn(2, 16, 5, 6)
    torch.testing.assert_close(block(x), _reference_attention(block, x), atol=1e-5, rtol=1e-5)


def test_full_size_layout_matches_released_checkpoint_keys():
    net = SegRefinerUNet()  # the released configuration
    n_params = sum(p.numel() for p in net.parameters())
    assert abs(n_params / 1e6 - 118.6) < 0.1
    keys = set(net.state_dict())
    for key in [
            'time_embed.weight', 'input_blocks.0.0.weight', 'input_blocks.1.0.in_layers.0.weight',
            'input_blocks.3.0.op.weight', 'middle_block.1.qkv.weight',
            'output_blocks.17.0.skip_connection.weight', 'out.2.weight', 'out.0.weight'
    ]:
        assert key in keys, key
    assert net.state_dict()['time_embed.weight'].shape == (6, 512)
