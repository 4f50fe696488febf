"""NAFNet: parameter counts and state-dict keys equal to the authors' release, registry build, shapes, init, hooks.

Expected numbers were taken from the reference implementation (megvii-research/NAFNet,
basicsr/models/archs/NAFNet_arch.py at commit 2b4af71ebe098a92a75910c233a3965a3e93ede4), built once outside the
project; the tests themselves need neither that code nor the network.
"""
import pytest
import torch
from basicsr.archs import build_network

from mclir_basicsr.archs.nafnet_arch import NAFBlock, NAFNet

TINY = {'type': 'NAFNet', 'img_channel': 3, 'width': 8, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1,
        'dec_blk_nums': [1, 1]}
GOPRO = {'enc_blk_nums': [1, 1, 1, 28], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1, 1]}
SIDD = {'enc_blk_nums': [2, 2, 4, 8], 'middle_blk_num': 12, 'dec_blk_nums': [2, 2, 2, 2]}


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _meta(**kwargs):
    with torch.device('meta'):
        return NAFNet(**kwargs)


@pytest.mark.parametrize('config, width, expected', [
    (GOPRO, 64, 67_888_835),  # GoPro / REDS deblurring, NAFNet-width64
    (GOPRO, 32, 17_111_907),  # GoPro NAFNet-width32
    (SIDD, 64, 115_982_915),  # SIDD denoising, NAFNet-width64
    (SIDD, 32, 29_159_715),  # SIDD NAFNet-width32
    ({}, 16, 3_203),  # constructor defaults
    ({'enc_blk_nums': [1, 1], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1]}, 8, 19_899),  # TINY
])
def test_parameter_count_equals_reference(config, width, expected):
    assert _count(_meta(width=width, **config)) == expected


REFERENCE_KEYS = {  # sample of the reference's state-dict keys and shapes (width 64)
    'both': {'intro.weight': (64, 3, 3, 3), 'ending.weight': (3, 64, 3, 3), 'encoders.0.0.beta': (1, 64, 1, 1),
             'encoders.0.0.conv2.weight': (128, 1, 3, 3), 'encoders.0.0.sca.1.weight': (64, 64, 1, 1),
             'encoders.0.0.norm1.weight': (64, ), 'encoders.3.7.gamma': (1, 512, 1, 1),
             'downs.3.weight': (1024, 512, 2, 2), 'downs.3.bias': (1024, ),
             'middle_blks.0.conv1.weight': (2048, 1024, 1, 1),
             'ups.0.0.weight': (2048, 1024, 1, 1), 'ups.3.0.weight': (256, 128, 1, 1),
             'decoders.0.0.conv3.weight': (512, 512, 1, 1), 'decoders.3.0.conv1.weight': (128, 64, 1, 1)},
    'gopro': {'encoders.3.27.conv5.weight': (512, 512, 1, 1)},
    'sidd': {'middle_blks.11.conv4.weight': (2048, 1024, 1, 1), 'decoders.3.1.norm2.bias': (64, )},
}


@pytest.mark.parametrize('name, config', [('gopro', GOPRO), ('sidd', SIDD)])
def test_state_dict_keys_and_shapes_equal_reference(name, config):
    state = _meta(width=64, **config).state_dict()
    assert len(state) == 664
    for key, shape in {**REFERENCE_KEYS['both'], **REFERENCE_KEYS[name]}.items():
        assert tuple(state[key].shape) == shape, key
    assert [k for k in state if k.startswith('ups.')] == [f'ups.{i}.0.weight' for i in range(4)]  # no bias


def test_state_dict_of_defaults_equals_reference_completely():
    block = {'beta': (1, 16, 1, 1), 'gamma': (1, 16, 1, 1), 'conv1.weight': (32, 16, 1, 1), 'conv1.bias': (32, ),
             'conv2.weight': (32, 1, 3, 3), 'conv2.bias': (32, ), 'conv3.weight': (16, 16, 1, 1),
             'conv3.bias': (16, ), 'sca.1.weight': (16, 16, 1, 1), 'sca.1.bias': (16, ),
             'conv4.weight': (32, 16, 1, 1), 'conv4.bias': (32, ), 'conv5.weight': (16, 16, 1, 1),
             'conv5.bias': (16, ), 'norm1.weight': (16, ), 'norm1.bias': (16, ), 'norm2.weight': (16, ),
             'norm2.bias': (16, )}
    expected = [('intro.weight', (16, 3, 3, 3)), ('intro.bias', (16, )), ('ending.weight', (3, 16, 3, 3)),
                ('ending.bias', (3, ))] + [(f'middle_blks.0.{k}', v) for k, v in block.items()]
    assert [(k, tuple(v.shape)) for k, v in NAFNet().state_dict().items()] == expected


def test_constructor_rejects_unknown_keys_and_mismatched_levels():
    with pytest.raises(TypeError):
        NAFNet(width=8, train_size=(1, 3, 64, 64))  # a NAFNetLocal key
    with pytest.raises(ValueError):
        NAFNet(width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1])


@pytest.mark.parametrize('size', [(1, 3, 13, 17), (2, 3, 8, 8), (1, 3, 1, 5)])
def test_built_from_options_keeps_shape(size):
    net = build_network(dict(TINY))
    assert type(net) is NAFNet
    x = torch.rand(*size)
    with torch.no_grad():
        out = net(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_every_block_is_identity_at_init_and_net_is_identity_without_ending():
    torch.manual_seed(0)
    net = build_network(dict(TINY))
    blocks = [m for m in net.modules() if isinstance(m, NAFBlock)]
    assert len(blocks) == 5
    for block in blocks:
        c = block.beta.shape[1]
        x = torch.randn(2, c, 5, 7)
        assert torch.equal(block(x), x)
    x = torch.rand(1, 3, 13, 17)
    with torch.no_grad():
        net.ending.weight.zero_()
        net.ending.bias.zero_()
        assert torch.equal(net(x), x)  # global residual, padding cropped away


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = build_network(dict(TINY))
    with torch.no_grad():
        for block in net.modules():
            if isinstance(block, NAFBlock):
                block.beta.normal_(0, 0.5)
                block.gamma.normal_(0, 0.5)
    x = torch.rand(2, 3, 13, 17)
    net(x).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_decoder_hooks_fire_with_expected_channels():
    net = build_network(dict(TINY))
    modules = dict(net.named_modules())
    seen = {}
    names = ['decoders.0', 'decoders.1', 'middle_blks']

    def record(name):
        def hook(module, args, output):  # returns None: a hook's return value would replace the output
            seen[name] = tuple(output.shape)
        return hook

    for name in names:
        modules[name].register_forward_hook(record(name))
    with torch.no_grad():
        net(torch.rand(1, 3, 13, 17))  # padded to 16 x 20 (multiple of 2**2)
    assert seen == {'middle_blks': (1, 32, 4, 5), 'decoders.0': (1, 16, 8, 10), 'decoders.1': (1, 8, 16, 20)}
