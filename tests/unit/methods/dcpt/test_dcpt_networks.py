"""The DCPT authors' networks (hoatong2411/dcpt edd4c7a) under our names: parameter counts, state-dict names and
order, outputs against theirs (tests/data/dcpt, see its README), internal padding, feature hooks feeding the
classifier, and their classifier checkpoints loading into ours."""
import mclir_basicsr  # noqa: F401  (must precede basicsr)

import os.path as osp

import pytest
import torch
import torch.nn as nn
from basicsr.archs import build_network

from mclir_basicsr.checks.preflight.checkpoints import check_pretrained
from mclir_basicsr.methods.dcpt.degradation_classifier_arch import (DegradationClassifier, PromptIR_NoImg_DC,
                                                                    authors_key_to_ours)
from mclir_basicsr.methods.dcpt.feature_hooks import FeatureHooks
from tests.helpers import TEST_DATA

REFERENCE = osp.join(TEST_DATA, 'dcpt', 'reference_networks.pt')
OURS = {'NAFNet': 'DCPTNAFNet', 'NAFNetBaseline': 'NAFNetBaseline', 'PromptIR': 'DCPTPromptIR',
        'Restormer': 'DCPTRestormer', 'Restormer_origin': 'Restormer_origin', 'SwinIR': 'DCPTSwinIR'}
# what their option files hook (by their rule: top-level modules whose name contains hook_names) and classify with
HOOKS = {'NAFNet': ['decoder0', 'decoder1', 'decoder2', 'decoder3'],
         'PromptIR': ['reduce_noise_level3', 'reduce_noise_level2', 'reduce_noise_level1'],
         'Restormer': ['decoder_level3', 'decoder_level2', 'decoder_level1'],
         'SwinIR': ['decode_layers0', 'decode_layers1', 'decode_layers2']}
FEATURE_DIMS = {'NAFNet': ([64, 128, 256, 512], False), 'PromptIR': ([96, 192, 192], False),
                'Restormer': ([96, 96, 192], False), 'SwinIR': ([180, 180, 180], True)}


@pytest.fixture(scope='module')
def reference():
    return torch.load(REFERENCE, weights_only=True)


def recipe_state(keys, scale):
    """Their state dict rebuilt from ``[(name, shape)]`` and the README's recipe, in their key order."""
    g = torch.Generator().manual_seed(0)
    values = {name: (torch.randn(shape, generator=g, dtype=torch.float64) * scale).float()
              for name, shape in sorted(keys)}
    return {name: values[name] for name, _ in keys}


def build(case, device='cpu'):
    with torch.device(device):
        return build_network(dict(case['kwargs'], type=OURS[case['type']]))


def test_bare_defaults_have_their_parameters_keys_and_order(reference):
    counts = {'NAFNet': 67_888_835, 'NAFNetBaseline': 67_888_835, 'PromptIR': 35_376_967, 'Restormer': 26_111_668,
              'Restormer_origin': 26_126_644, 'SwinIR': 11_455_563}
    for name, count in counts.items():
        case = reference['full'][name]
        net = build(case, 'meta')  # shapes only
        assert sum(p.numel() for p in net.parameters()) == case['params'] == count, name
        assert list(net.state_dict()) == case['keys'], name
        assert [tuple(t.shape) for t in net.state_dict().values()] == [tuple(s) for s in case['shapes']], name


@pytest.mark.parametrize('name', ['nafnet_baseline_small', 'nafnet_small', 'nafnet_fast_small', 'restormer_small',
                                  'restormer_scale2_small', 'restormer_origin_small', 'promptir_small',
                                  'swinir_small', 'swinir_3conv_small', 'nafnet_baseline_small_x4', 'nafnet_small_x4',
                                  'nafnet_fast_small_x4'])
def test_small_networks_load_their_weights_strictly_and_give_their_outputs(reference, name):
    case = reference['cases'][name]
    net = build(case).eval()
    assert [(k, tuple(t.shape)) for k, t in net.state_dict().items()] == [tuple(k) for k in case['keys']]
    net.load_state_dict(recipe_state(case['keys'], case['scale']), strict=True)
    x = reference['input']
    with torch.no_grad():
        torch.testing.assert_close(net(x), case['output'], atol=1e-5, rtol=0)
        # 29 x 37, a size theirs refuses: ours pads inside as theirs was padded by hand (pad_mode), and crops back
        torch.testing.assert_close(net(x[..., :29, :37]), case['output_padded'], atol=1e-5, rtol=0)


def test_local_statistics_matter_in_the_nafnet_reference(reference):
    """The *_x4 cases tell DCPTNAFNet (local statistics) from NAFNetBaseline, and fast_imp from the exact pools."""
    cases = reference['cases']
    baseline, local, fast = (cases[f'{n}_small_x4']['output'] for n in ('nafnet_baseline', 'nafnet', 'nafnet_fast'))
    assert (baseline - local).abs().max() > 1e-3 and (local - fast).abs().max() > 1e-3


def test_hook_true_stops_after_the_hooked_decoder_and_tiny_inputs_pad():
    nets = [build_network(dict(type='DCPTNAFNet', width=4, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])),
            build_network(dict(type='DCPTRestormer', dim=4, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1)),
            build_network(dict(type='Restormer_origin', dim=4, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1))]
    x = torch.rand(1, 3, 5, 7)  # smaller than the padding: replication where reflection cannot
    for net in nets:
        with torch.no_grad():
            assert net(x, hook=True) is None
            assert net(x).shape == x.shape
    swin = build_network(dict(type='DCPTSwinIR', img_size=8, embed_dim=4, depths=[1, 1], num_heads=[1, 1],
                              window_size=4))
    with torch.no_grad():
        assert swin(x, hook=True).shape == x.shape  # theirs ignores hook: always the full output


@pytest.mark.parametrize('family', ['NAFNet', 'PromptIR', 'Restormer', 'SwinIR'])
def test_hooks_give_the_features_their_classifier_files_expect(reference, family):
    """Their option files' networks (built on the meta device: shapes only) with FeatureHooks on the modules their
    hook rule selects: the features, last called first, have their shapes and fit PromptIR_NoImg_DC with their
    ``feature_dims`` (and ``downsample`` for SwinIR's tokens)."""
    case = reference['full'][family]
    net = build(case, 'meta').eval()
    assert HOOKS[family] == case['hooked_modules']
    hooks = FeatureHooks(net, HOOKS[family])
    with torch.no_grad(), hooks.capture() as features:
        net(torch.empty(case['hook_input'], device='meta'))
    assert [tuple(f.shape) for f in features] == [tuple(s) for s in case['hook_shapes']]
    dims, downsample = FEATURE_DIMS[family]
    with torch.device('meta'):
        classifier = PromptIR_NoImg_DC(dims, num_classes=5, downsample=downsample)
    with torch.no_grad():
        assert classifier(features).shape == (1, 5)


def test_classifier_full_configs_have_their_counts_and_renamed_keys(reference):
    for name in ('DC_nafnet5', 'DC_nafnet10', 'DC_promptir', 'DC_restormer', 'DC_swinir'):
        case = reference['full'][name]
        with torch.device('meta'):
            net = PromptIR_NoImg_DC(**case['kwargs'])
        assert sum(p.numel() for p in net.parameters()) == case['params'], name
        ours = {k: tuple(t.shape) for k, t in net.state_dict().items()}
        assert {authors_key_to_ours(k): tuple(s) for k, s in zip(case['keys'], case['shapes'])} == ours, name
        assert all(authors_key_to_ours(k) == k for k in ours)  # our names are kept


@pytest.mark.parametrize('name', ['classifier_small', 'classifier_tokens_downsample'])
def test_their_classifier_checkpoints_load_strictly_and_give_their_logits(reference, name):
    case = reference['classifiers'][name]
    net = PromptIR_NoImg_DC(**case['kwargs']).eval()
    state = recipe_state(case['keys'], reference['scale'])
    net.load_state_dict(state, strict=True)  # their names, renamed by the pre-hook
    with torch.no_grad():
        torch.testing.assert_close(net(list(case['features'])), case['output'], atol=1e-5, rtol=0)
        parent = nn.ModuleDict({'dc': PromptIR_NoImg_DC(**case['kwargs']).eval()})  # under a prefix too
        parent.load_state_dict({f'dc.{k}': v for k, v in state.items()}, strict=True)
        torch.testing.assert_close(parent['dc'](list(case['features'])), case['output'], atol=1e-5, rtol=0)
        if case['kwargs'].get('downsample'):  # their nearest resize is not our default area resize
            area = DegradationClassifier(case['kwargs']['feature_dims'], 5, 1).eval()
            area.load_state_dict(state, strict=True)
            assert (area(list(case['features'])) - case['output']).abs().max() > 1e-4


def test_preflight_accepts_their_classifier_checkpoint(reference, tmp_path):
    case = reference['classifiers']['classifier_small']
    path = str(tmp_path / 'net_dc.pth')
    torch.save({'params': recipe_state(case['keys'], reference['scale'])}, path)
    opt = {'is_train': True, 'network_dc': dict(case['kwargs'], type='PromptIR_NoImg_DC'),
           'path': {'pretrain_network_dc': path, 'strict_load_dc': True}}
    check_pretrained(opt)  # raises OptionError on a mismatch
