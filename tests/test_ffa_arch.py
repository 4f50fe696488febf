import mclir_basicsr  # noqa: F401  (must precede basicsr: installs the compatibility shim)

import pytest
import torch
from basicsr.archs import build_network

from mclir_basicsr.archs.ffa_arch import FFANet

TINY = {'type': 'FFANet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_groups': 1, 'num_blocks': 1}


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _expected_params(c, groups, blocks, in_ch=3):
    """Closed form of the parameter count (weights + biases of every conv)."""
    conv3 = lambda i, o: i * o * 9 + o  # noqa: E731
    conv1 = lambda i, o: i * o + o  # noqa: E731
    h = max(c // 8, 1)
    ca = conv1(c, h) + conv1(h, c)
    pa = conv1(c, h) + conv1(h, 1)
    block = 2 * conv3(c, c) + ca + pa
    group = blocks * block + conv3(c, c)
    gc = groups * c
    fusion = conv1(gc, max(gc // 8, 1)) + conv1(max(gc // 8, 1), gc)
    return conv3(in_ch, c) + groups * group + fusion + pa + conv3(c, c) + conv3(c, in_ch)


def test_registered_and_built_from_options():
    net = build_network(dict(TINY))
    assert type(net).__name__ == 'FFANet'
    assert isinstance(net, FFANet)


@pytest.mark.parametrize('size', [(1, 3, 17, 23), (2, 3, 8, 8), (1, 3, 1, 5)])
def test_output_shape_equals_input_shape(size):
    net = build_network(dict(TINY))
    x = torch.rand(*size)
    with torch.no_grad():
        out = net(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_output_shape_several_groups_and_blocks():
    net = FFANet(num_feat=16, num_groups=3, num_blocks=2)
    x = torch.rand(1, 3, 13, 9)
    assert net(x).shape == x.shape


def test_gradients_reach_every_parameter():
    # num_feat 32 gives attention bottlenecks of 4 channels: with a 1-channel bottleneck
    # (num_feat 8) a single ReLU unit can be dead for a given input, which zeroes gradients legitimately.
    torch.manual_seed(0)
    net = FFANet(num_feat=32, num_groups=2, num_blocks=2)
    x = torch.rand(2, 3, 17, 23)
    net(x).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_paper_config_parameter_count():
    net = FFANet()  # paper size: num_feat 64, 3 groups, 19 blocks
    # Derivation (C = 64, all convs with bias):
    #   shallow conv 3->64 3x3:                          1,792
    #   basic block: 2 x conv 64->64 3x3 (2 x 36,928)
    #     + CA (64->8->64: 520 + 576) + PA (64->8->1: 520 + 9) = 75,481
    #   group: 19 blocks + conv 64->64 3x3 = 1,434,139 + 36,928 = 1,471,067; x3 = 4,413,201
    #   fusion attention 192->24->192: 4,632 + 4,800 =     9,432
    #   fusion pixel attention:                             529
    #   post convs 64->64 and 64->3 (3x3): 36,928 + 1,731 = 38,659
    #   total = 4,463,613 (paper reports about 4.4-4.7M)
    assert _count(net) == 4_463_613
    assert _count(net) == _expected_params(64, 3, 19)
    assert 4_400_000 <= _count(net) <= 4_700_000


@pytest.mark.parametrize('c,g,b', [(8, 1, 1), (16, 2, 3), (12, 3, 0)])
def test_parameter_count_formula_other_sizes(c, g, b):
    assert _count(FFANet(num_feat=c, num_groups=g, num_blocks=b)) == _expected_params(c, g, b)


def test_fusion_matches_reference_computation():
    """Sigmoid-weighted sum over concatenated group outputs, then PA, post convs and global residual."""
    torch.manual_seed(0)
    net = FFANet(num_feat=8, num_groups=2, num_blocks=1).eval()
    x = torch.rand(1, 3, 11, 7)
    with torch.no_grad():
        f0 = net.conv_first(x)
        g1 = net.groups[0](f0)
        g2 = net.groups[1](g1)
        cat = torch.cat([g1, g2], dim=1)
        pooled = cat.mean(dim=(2, 3), keepdim=True)
        att = net.fusion_attention
        w = torch.sigmoid(att[3](torch.relu(att[1](pooled))))
        fused = w[:, :8] * g1 + w[:, 8:] * g2
        pa = net.pa.attention
        fused = fused * torch.sigmoid(pa[2](torch.relu(pa[0](fused))))
        ref = x + net.conv_last(net.conv_post(fused))
        torch.testing.assert_close(net(x), ref)


def test_basic_block_structure():
    """conv-ReLU-(+x)-conv-CA-PA-(+x), checked against a hand-written composition."""
    torch.manual_seed(0)
    block = FFANet(num_feat=8, num_groups=1, num_blocks=1).groups[0].body[0]
    x = torch.randn(2, 8, 6, 5)
    with torch.no_grad():
        y = torch.relu(block.conv1(x)) + x
        y = block.conv2(y)
        ca = block.ca.attention
        y = y * torch.sigmoid(ca[3](torch.relu(ca[1](y.mean(dim=(2, 3), keepdim=True)))))
        pa = block.pa.attention
        y = y * torch.sigmoid(pa[2](torch.relu(pa[0](y))))
        torch.testing.assert_close(block(x), y + x)


def test_mismatched_channels_rejected():
    with pytest.raises(ValueError):
        FFANet(num_in_ch=3, num_out_ch=1)
