import mclir_basicsr  # noqa: F401  (must precede basicsr: installs the compatibility shim)

import pytest
import torch
from basicsr.archs import build_network
from torch import nn

from mclir_basicsr.archs.ffa_arch import FFANet
from tests.helpers import ffa_reference_checkpoint

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


# ---------------------------------------------------------------------------------------------------------------
# Reference FFA-Net compatibility (zhilin007/FFA-Net, net/models/FFA.py at 6651bcf, class FFA(gps, blocks)).


def test_reference_argument_names():
    net = build_network({'type': 'FFANet', 'gps': 3, 'blocks': 19})  # the MCLIR authors' network_g
    assert len(net.groups) == 3 and all(len(g.body) == 20 for g in net.groups)
    assert _count(net) == 4_455_913  # the reference FFA(3, 19): fusion bottleneck 64/16 = 4 channels
    assert _count(FFANet(num_groups=3, num_blocks=19)) == 4_463_613  # ours: (3*64)/8 = 24 channels
    assert net.fusion_attention[1].out_channels == 4
    assert FFANet(num_groups=2, blocks=1).fusion_attention[1].out_channels == 4  # a reference name -> reference
    assert FFANet(gps=3, blocks=1, fusion_hidden=24).fusion_attention[1].out_channels == 24


@pytest.mark.parametrize('kwargs,names', [({'num_groups': 3, 'gps': 3}, ('num_groups', 'gps')),
                                          ({'num_blocks': 2, 'blocks': 4}, ('num_blocks', 'blocks'))])
def test_both_spellings_rejected(kwargs, names):
    with pytest.raises(TypeError) as err:
        FFANet(num_feat=8, **kwargs)
    assert all(n in str(err.value) for n in names)


def test_reference_checkpoint_loads_strictly_into_the_right_places():
    ref = ffa_reference_checkpoint()
    net = FFANet(gps=3, blocks=2).double()
    net.load_state_dict(ref, strict=True)
    expected = {
        'pre.0.weight': net.conv_first.weight, 'g1.gp.0.conv1.weight': net.groups[0].body[0].conv1.weight,
        'g2.gp.1.conv2.bias': net.groups[1].body[1].conv2.bias,
        'g3.gp.0.calayer.ca.0.weight': net.groups[2].body[0].ca.attention[1].weight,
        'g3.gp.1.calayer.ca.2.bias': net.groups[2].body[1].ca.attention[3].bias,
        'g1.gp.1.palayer.pa.2.weight': net.groups[0].body[1].pa.attention[2].weight,
        'g2.gp.2.weight': net.groups[1].body[2].weight, 'ca.1.weight': net.fusion_attention[1].weight,
        'ca.3.bias': net.fusion_attention[3].bias, 'palayer.pa.0.weight': net.pa.attention[0].weight,
        'post.0.weight': net.conv_post.weight, 'post.1.bias': net.conv_last.bias}
    for key, param in expected.items():
        assert torch.equal(param, ref[key]), key
    # our layout is what state_dict() writes, and it loads back; same function either way
    assert 'conv_first.weight' in net.state_dict() and 'pre.0.weight' not in net.state_dict()
    other = FFANet(gps=3, blocks=2).double()
    other.load_state_dict(net.state_dict(), strict=True)
    x = torch.rand(1, 3, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), other(x), rtol=0, atol=0)


def test_reference_checkpoint_with_dataparallel_or_outer_prefix():
    ref = ffa_reference_checkpoint(blocks=1)
    net = FFANet(gps=3, blocks=1).double()
    net.load_state_dict({f'module.{k}': v for k, v in ref.items()}, strict=True)  # as the published .pk files
    assert torch.equal(net.conv_last.weight, ref['post.1.weight'])
    outer = nn.ModuleDict({'net_g': FFANet(gps=3, blocks=1).double()})
    outer.load_state_dict({f'net_g.{k}': v for k, v in ref.items()}, strict=True)
    assert torch.equal(outer['net_g'].groups[2].body[1].weight, ref['g3.gp.1.weight'])


def test_reference_checkpoint_errors():
    ref = ffa_reference_checkpoint(blocks=1)
    with pytest.raises(RuntimeError, match='fusion_attention'):  # our default fusion width is 24, not 4
        FFANet(num_groups=3, num_blocks=1).double().load_state_dict(ref)
    net = FFANet(gps=3, blocks=1).double()
    mixed = dict(ref, **{'conv_first.weight': ref['pre.0.weight']})
    with pytest.raises(RuntimeError, match='both given'):
        net.load_state_dict(mixed)


def test_our_checkpoint_still_loads():
    torch.manual_seed(0)
    src = FFANet(**{k: v for k, v in TINY.items() if k != 'type'})
    dst = FFANet(**{k: v for k, v in TINY.items() if k != 'type'})
    dst.load_state_dict(src.state_dict(), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


def test_output_equals_reference_implementation():
    """Values computed once with the reference FFA(gps=3, blocks=2) in float64 on the same seeded checkpoint/input."""
    net = FFANet(gps=3, blocks=2).double().eval()
    net.load_state_dict(ffa_reference_checkpoint(), strict=True)
    x = torch.rand(1, 3, 9, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
    expected = [
        -0.5576067854922513, 0.28362546305121694, 0.6744739271860354, 0.08631342046625579, -0.5209752447814853,
        0.7615744787332042, 0.8163471735976926, -1.5291738182191497, -0.003684556630537239, -0.9640715135665001,
        -1.3907674107260517, 0.0456318283905596, -0.5654693359990572, -0.042961272083084534, 0.9452774386476368,
        0.8648385246094991, 1.8427901911064422, 1.7298319943391007, 0.1127307115781681, 0.011799487042400636,
        1.2781128600136094, 1.278316587161573, -0.49900739308373454, -0.6503186396799909, 0.8246884558651835,
        -0.07438025285539956, 0.016219132755624366]
    actual = out[0, :, ::4, ::3].flatten()
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)
    sums = torch.stack([out.sum(), out.abs().sum(), out.square().sum()])
    ref_sums = torch.tensor([-24.41882995324941, 126.52982337555366, 134.92813320753527], dtype=torch.float64)
    torch.testing.assert_close(sums, ref_sums, rtol=1e-9, atol=1e-9)
