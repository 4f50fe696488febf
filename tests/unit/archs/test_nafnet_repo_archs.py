"""NAFNetLocal, Baseline and BaselineLocal against megvii-research/NAFNet (commit 2b4af71): parameter counts, state-dict
keys, outputs and the local pools' windows equal the values their code gave once (tests/data/nafnet/README.md)."""
import os.path as osp
import pytest
import torch
from basicsr.archs import build_network

from mclir_basicsr.archs.local_statistics import LocalAvgPool2d
from tests.helpers import TEST_DATA

REFERENCE = torch.load(osp.join(TEST_DATA, 'nafnet', 'reference_outputs.pt'))
SIDD = {'enc_blk_nums': [2, 2, 4, 8], 'middle_blk_num': 12, 'dec_blk_nums': [2, 2, 2, 2]}
GOPRO = {'enc_blk_nums': [1, 1, 1, 28], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1, 1, 1]}
FULL_SIZE = {  # their option files' network_g blocks
    'NAFNet-SIDD-width32': dict(type='NAFNet', width=32, **SIDD),
    'NAFNet-SIDD-width64': dict(type='NAFNet', width=64, **SIDD),
    'NAFNetLocal-GoPro-width32': dict(type='NAFNetLocal', width=32, **GOPRO),
    'NAFNetLocal-GoPro-width64': dict(type='NAFNetLocal', width=64, **GOPRO),
    'Baseline-SIDD-width32': dict(type='Baseline', width=32, dw_expand=1, ffn_expand=2, **SIDD),
    'Baseline-SIDD-width64': dict(type='Baseline', width=64, dw_expand=2, ffn_expand=2, **SIDD),
    'BaselineLocal-GoPro-width32': dict(type='BaselineLocal', width=32, dw_expand=1, ffn_expand=2, **GOPRO),
    'BaselineLocal-GoPro-width64': dict(type='BaselineLocal', width=64, dw_expand=2, ffn_expand=2, **GOPRO),
}


def _fill(net):
    """The reference's weights: every state-dict entry from one generator, in sorted key order."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, t in sorted(net.state_dict().items()):
            t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64).float() * 0.2)
    return net.eval()


@pytest.mark.parametrize('name', sorted(FULL_SIZE))
def test_parameter_counts_and_keys_equal_the_reference(name):
    with torch.device('meta'):
        net = build_network(dict(FULL_SIZE[name]))
    assert sum(p.numel() for p in net.parameters()) == REFERENCE['param_counts'][name]
    if name in REFERENCE['state_dict_keys']:
        assert list(net.state_dict()) == REFERENCE['state_dict_keys'][name]


@pytest.mark.parametrize('case', sorted(REFERENCE['outputs']))
def test_outputs_and_local_windows_equal_the_reference(case):
    ref = REFERENCE['outputs'][case]
    net = build_network(dict(ref['config'], type=ref['arch']))
    if 'train_size' in ref['config']:
        windows = [[name, list(m.kernel_size)] for name, m in net.named_modules() if isinstance(m, LocalAvgPool2d)]
        assert sorted(windows) == sorted(ref['kernels'])
    x = torch.rand(ref['input_shape'], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = _fill(net)(x)
    torch.testing.assert_close(out, ref['output'], rtol=0, atol=1e-5)


def test_local_statistics_change_large_inputs_only():
    """At most 1.5x the training crop every window covers its map (the global pool); beyond, windows act."""
    plain = _fill(build_network({'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1,
                                 'dec_blk_nums': [1, 1]}))
    local = _fill(build_network({'type': 'NAFNetLocal', 'width': 8, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1,
                                 'dec_blk_nums': [1, 1], 'train_size': [1, 3, 32, 32]}))
    small, large = torch.rand(1, 3, 40, 40), torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(plain(small), local(small))
        assert (plain(large) - local(large)).abs().max() > 1e-4


def test_local_networks_build_without_drawing_random_numbers_beyond_their_init():
    torch.manual_seed(3)
    build_network({'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1], 'middle_blk_num': 1, 'dec_blk_nums': [1]})
    after_plain = torch.rand(1)
    torch.manual_seed(3)
    build_network({'type': 'NAFNetLocal', 'width': 8, 'enc_blk_nums': [1], 'middle_blk_num': 1, 'dec_blk_nums': [1]})
    assert torch.equal(torch.rand(1), after_plain)


@pytest.mark.parametrize('train_size', [[256, 256], [1, 3, 0, 256], 'big', [1, 3, 25.5, 256]])
def test_a_bad_train_size_is_refused_with_the_expected_shape(train_size):
    with pytest.raises(ValueError, match=r'NAFNetLocal: train_size must be the training batch shape \[N, C, H, W\]'):
        build_network({'type': 'NAFNetLocal', 'width': 8, 'train_size': train_size})
