import mclir_basicsr  # noqa: F401  (must precede basicsr: installs the compatibility shim)

import hashlib

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from mclir_basicsr.archs.promptir_arch import PromptIR

# dim 8 with the prompt dims fixed at 64/128/320 (as in the reference): the interaction blocks adapt to dim.
TINY = {'type': 'PromptIR', 'inp_channels': 3, 'out_channels': 3, 'dim': 8, 'num_blocks': [1, 1, 1, 1],
        'num_refinement_blocks': 1, 'heads': [1, 1, 1, 1], 'ffn_expansion_factor': 2.66, 'bias': False,
        'LayerNorm_type': 'WithBias', 'decoder': True}

# Modules the reference builds but never calls in forward (kept so that its checkpoints load with strict=True).
UNUSED = ('chnl_reduce1', 'chnl_reduce2', 'chnl_reduce3', 'reduce_noise_channel_1', 'reduce_noise_channel_2',
          'reduce_noise_channel_3')

# Facts taken from the reference implementation, va1shn9v/PromptIR net/model.py at commit
# 106159ab809101f2e25b6714195cd6fa9a938d36, instantiated with decoder=True / decoder=False (other defaults).
REF_PARAMS = {True: 35_592_263, False: 32_107_288}  # the paper reports 35.59M for the published model
REF_NUM_KEYS = {True: 548, False: 536}
# sha256 of '\n'.join(f'{key}:{tuple(shape)}') over the reference state_dict, in its order.
REF_DIGEST = {True: 'c29fc6288c02c136ce5c24755aea869b8ffd9e8a12bb302faa147eba8fd50f9e',
              False: '58f799785556d12dbcf868714906720c1d06e33462a5dd5c38109d2f68652453'}
REF_SHAPES = {  # a readable sample of the decoder=True state_dict
    'patch_embed.proj.weight': (48, 3, 3, 3),
    'prompt1.prompt_param': (1, 5, 64, 64, 64), 'prompt1.linear_layer.weight': (5, 96),
    'prompt1.linear_layer.bias': (5, ), 'prompt1.conv3x3.weight': (64, 64, 3, 3),
    'prompt2.prompt_param': (1, 5, 128, 32, 32), 'prompt2.linear_layer.weight': (5, 192),
    'prompt2.conv3x3.weight': (128, 128, 3, 3),
    'prompt3.prompt_param': (1, 5, 320, 16, 16), 'prompt3.linear_layer.weight': (5, 384),
    'prompt3.conv3x3.weight': (320, 320, 3, 3),
    'chnl_reduce1.weight': (64, 64, 1, 1), 'chnl_reduce2.weight': (128, 128, 1, 1),
    'chnl_reduce3.weight': (256, 320, 1, 1), 'reduce_noise_channel_1.weight': (48, 112, 1, 1),
    'reduce_noise_channel_2.weight': (96, 224, 1, 1), 'reduce_noise_channel_3.weight': (192, 448, 1, 1),
    'encoder_level1.0.norm1.body.weight': (48, ), 'encoder_level1.0.norm1.body.bias': (48, ),
    'encoder_level1.3.ffn.project_out.weight': (48, 127, 1, 1),
    'encoder_level2.5.attn.temperature': (2, 1, 1), 'encoder_level3.5.attn.qkv_dwconv.weight': (576, 1, 3, 3),
    'down1_2.body.0.weight': (24, 48, 3, 3), 'down2_3.body.0.weight': (48, 96, 3, 3),
    'down3_4.body.0.weight': (96, 192, 3, 3),
    'latent.7.ffn.project_in.weight': (2042, 384, 1, 1), 'latent.7.attn.temperature': (8, 1, 1),
    'up4_3.body.0.weight': (384, 192, 3, 3), 'reduce_chan_level3.weight': (192, 288, 1, 1),
    'noise_level3.norm1.body.weight': (704, ), 'noise_level3.attn.temperature': (4, 1, 1),
    'noise_level3.attn.qkv.weight': (2112, 704, 1, 1), 'noise_level3.attn.qkv_dwconv.weight': (2112, 1, 3, 3),
    'noise_level3.attn.project_out.weight': (704, 704, 1, 1), 'noise_level3.norm2.body.bias': (704, ),
    'noise_level3.ffn.project_in.weight': (3744, 704, 1, 1), 'noise_level3.ffn.dwconv.weight': (3744, 1, 3, 3),
    'noise_level3.ffn.project_out.weight': (704, 1872, 1, 1), 'reduce_noise_level3.weight': (192, 704, 1, 1),
    'decoder_level3.5.norm2.body.bias': (192, ),
    'up3_2.body.0.weight': (384, 192, 3, 3), 'reduce_chan_level2.weight': (96, 192, 1, 1),
    'noise_level2.attn.qkv.weight': (960, 320, 1, 1), 'noise_level2.ffn.project_in.weight': (1702, 320, 1, 1),
    'noise_level2.ffn.project_out.weight': (320, 851, 1, 1), 'reduce_noise_level2.weight': (192, 320, 1, 1),
    'decoder_level2.5.ffn.dwconv.weight': (510, 1, 3, 3),
    'up2_1.body.0.weight': (192, 96, 3, 3),
    'noise_level1.attn.temperature': (4, 1, 1), 'noise_level1.ffn.project_in.weight': (850, 160, 1, 1),
    'noise_level1.ffn.project_out.weight': (160, 425, 1, 1), 'reduce_noise_level1.weight': (96, 160, 1, 1),
    'decoder_level1.3.attn.qkv.weight': (288, 96, 1, 1),
    'refinement.0.attn.temperature': (1, 1, 1), 'refinement.3.ffn.project_out.weight': (96, 255, 1, 1),
    'output.weight': (3, 96, 3, 3),
}


def _meta(**kwargs):
    with torch.device('meta'):
        return PromptIR(**kwargs)


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('decoder', [True, False])
def test_reference_parameter_count(decoder):
    assert _count(_meta(decoder=decoder)) == REF_PARAMS[decoder]


@pytest.mark.parametrize('decoder', [True, False])
def test_reference_state_dict_keys_and_shapes(decoder):
    state = _meta(decoder=decoder).state_dict()
    assert len(state) == REF_NUM_KEYS[decoder]
    listing = '\n'.join(f'{k}:{tuple(v.shape)}' for k, v in state.items())
    assert hashlib.sha256(listing.encode()).hexdigest() == REF_DIGEST[decoder]
    sample = REF_SHAPES if decoder else {k: v for k, v in REF_SHAPES.items() if not k.startswith('prompt')}
    assert {k: tuple(state[k].shape) for k in sample if k in state} == sample
    assert decoder or not any(k.startswith('prompt') for k in state)


def test_registered_and_built_from_options():
    assert ARCH_REGISTRY.get('PromptIR') is PromptIR
    net = build_network(dict(TINY))
    assert isinstance(net, PromptIR)
    assert net.prompt1.prompt_param.shape == (1, 5, 64, 64, 64)  # fixed prompt dims, whatever dim is


@pytest.mark.parametrize('size', [(1, 3, 13, 19), (2, 3, 16, 8), (1, 3, 1, 5)])
def test_odd_sizes_keep_shape(size):
    torch.manual_seed(0)
    net = build_network(dict(TINY)).eval()
    x = torch.rand(*size)
    with torch.no_grad():
        out = net(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_bias_free_layer_norm_and_bias_option():
    net = PromptIR(**{**{k: v for k, v in TINY.items() if k != 'type'}, 'LayerNorm_type': 'BiasFree', 'bias': True})
    keys = net.state_dict().keys()
    assert 'latent.0.norm1.body.weight' in keys and 'latent.0.norm1.body.bias' not in keys
    assert 'output.bias' in keys and 'patch_embed.proj.bias' not in keys  # as in the reference
    x = torch.rand(1, 3, 9, 10)
    with torch.no_grad():
        assert net(x).shape == x.shape


def test_gradients_reach_every_used_parameter():
    torch.manual_seed(0)
    net = build_network(dict(TINY))
    net(torch.rand(2, 3, 13, 19)).square().mean().backward()
    for name, p in net.named_parameters():
        if name.split('.')[0] in UNUSED:
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_decoder_hooks_fire_with_expected_channels():
    net = build_network(dict(TINY))
    seen = {}
    names = ['decoder_level3', 'decoder_level2', 'decoder_level1', 'reduce_noise_level3', 'reduce_noise_level2',
             'reduce_noise_level1']
    modules = dict(net.named_modules())
    for name in names:
        modules[name].register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape)))
    with torch.no_grad():
        net(torch.rand(1, 3, 13, 19))  # padded to 16 x 24 inside forward
    dim = TINY['dim']
    assert seen == {'decoder_level3': (1, 4 * dim, 4, 6), 'decoder_level2': (1, 2 * dim, 8, 12),
                    'decoder_level1': (1, 2 * dim, 16, 24), 'reduce_noise_level3': (1, 4 * dim, 2, 3),
                    'reduce_noise_level2': (1, 4 * dim, 4, 6), 'reduce_noise_level1': (1, 2 * dim, 8, 12)}


def test_default_config_decoder_channels_on_meta():
    net = _meta(decoder=True)
    seen = {}
    for name in ('decoder_level3', 'decoder_level2', 'decoder_level1'):
        getattr(net, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o.shape[1]))
    out = net(torch.empty(1, 3, 32, 40, device='meta'))
    assert out.shape == (1, 3, 32, 40)
    assert seen == {'decoder_level3': 192, 'decoder_level2': 96, 'decoder_level1': 96}


def test_clear_errors():
    net = PromptIR(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1], decoder=False)
    with pytest.raises(NotImplementedError, match='decoder=True'):
        net(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match='out_channels'):
        _meta(out_channels=1)
