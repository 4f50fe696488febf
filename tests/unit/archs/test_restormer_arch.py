"""Restormer against the authors' code (Dongqi-Fan/IRConStyle b3e193d, swz30's Restormer): parameter count, state-dict
names and order, outputs with their weights (tests/data/irconstyle, see its README), and the padding of sizes their
code refuses."""
import mclir_basicsr  # noqa: F401  (must precede basicsr)

import os.path as osp

import pytest
import torch
from basicsr.archs import build_network

from mclir_basicsr.archs.padding import pad_to_multiple
from tests.helpers import TEST_DATA, reference_state

REFERENCE = osp.join(TEST_DATA, 'irconstyle', 'reference_restormer.pt')
SMALL = dict(type='Restormer', dim=4, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8])


@pytest.fixture(scope='module')
def reference():
    return torch.load(REFERENCE, weights_only=True)


def authors_state(case):
    """The authors' state dict of a reference case, rebuilt from its key list and the recipe of the README."""
    return reference_state([(name, shape) for name, shape, _ in case['keys']], 0, case['scale'], case['ints'])


def test_bare_defaults_have_the_authors_parameters_keys_and_order(reference):
    case = reference['cases']['restormer_default']
    with torch.device('meta'):  # 26 M parameters: shapes only
        net = build_network({'type': 'Restormer'})
    assert sum(p.numel() for p in net.parameters()) == case['params'] == 26_126_644
    assert [(k, tuple(t.shape)) for k, t in net.state_dict().items()] == [(k, tuple(s)) for k, s, _ in case['keys']]


def test_small_network_loads_their_state_dict_strictly_and_gives_their_output(reference):
    case = reference['cases']['restormer_small']
    assert authors_state(case).keys() == case['state'].keys()
    assert all(torch.equal(v, case['state'][k]) for k, v in authors_state(case).items())  # the recipe holds here
    net = build_network(dict(SMALL, **case['kwargs'])).eval()
    assert list(net.state_dict()) == list(case['state'])
    net.load_state_dict(case['state'], strict=True)
    x = reference['input']
    with torch.no_grad():
        torch.testing.assert_close(net(x), case['output'], atol=1e-5, rtol=0)
        # 29 x 37: ours pads inside; theirs was given the same reflection padding and cropped back
        torch.testing.assert_close(net(x[..., :29, :37]), case['output_cropped'], atol=1e-5, rtol=0)


def test_bare_defaults_give_their_output(reference):
    """The paper-sized network (under a second on 32 x 40)."""
    case = reference['cases']['restormer_default']
    net = build_network({'type': 'Restormer'}).eval()
    net.load_state_dict(authors_state(case), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(net(reference['input']), case['output'], atol=1e-5, rtol=0)


@pytest.mark.parametrize('size', [(29, 37), (8, 13), (3, 5), (1, 1)])
def test_any_size_is_padded_to_a_multiple_of_8_and_cropped_back(size):
    torch.manual_seed(0)
    net = build_network(SMALL).eval()
    x = torch.rand(2, 3, *size)
    padded = pad_to_multiple(x, 8)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert torch.equal(padded[..., :size[0], :size[1]], x)
    if size[0] > 8 and size[1] > 8:  # reflection (0 1 2 .. h-1 h-2 ..), as the module doc says
        assert torch.equal(padded[..., size[0], :size[1]], x[..., size[0] - 2, :])
    with torch.no_grad():
        out = net(x)
        assert out.shape == x.shape
        torch.testing.assert_close(out, net.restore(padded)[..., :size[0], :size[1]], atol=0, rtol=0)


def test_multiples_of_8_are_not_padded():
    x = torch.rand(1, 3, 16, 24)
    assert pad_to_multiple(x, 8) is x


def test_dual_pixel_task_adds_the_skip_conv_before_the_output():
    net = build_network(dict(SMALL, inp_channels=6, dual_pixel_task=True))
    keys = list(net.state_dict())
    assert keys.index('skip_conv.weight') == keys.index('output.weight') - 1  # the authors' order
    assert net(torch.rand(1, 6, 12, 20)).shape == (1, 3, 12, 20)


def test_wrong_level_counts_are_refused():
    with pytest.raises(ValueError, match='num_blocks and heads need 4 entries'):
        build_network(dict(SMALL, num_blocks=[1, 1, 1]))
