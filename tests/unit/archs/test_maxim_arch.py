"""Maxim (the IRConStyle authors' single-stage MAXIM): their bare defaults' parameter count and state-dict keys (in
order), outputs equal to their code's on 64x64 (tests/data/irconstyle/reference_maxim.pt, README there), and the
padding that lets other sizes through."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from basicsr.archs import build_network

from mclir_basicsr.archs.maxim_blocks import nearest_downsample, size_multiple
from tests.helpers import TEST_DATA, reference_state

REFERENCE = osp.join(TEST_DATA, 'irconstyle', 'reference_maxim.pt')
TINY_MAXIM = {'type': 'Maxim', 'features': 8, 'block_size_hr': [4, 4], 'grid_size_hr': [2, 4], 'block_size_lr': [2, 2],
              'grid_size_lr': [2, 2]}


def reference():
    return torch.load(REFERENCE, weights_only=True)


def recipe_state(entry, ref):
    """The reference's weights under the authors' names (their sorted-key order, one generator; README)."""
    return reference_state(list(zip(entry['keys'], entry['shapes'])), ref['weight_seed'], ref['scale'])


def reference_input(ref):
    return torch.rand(ref['input_shape'], generator=torch.Generator().manual_seed(ref['input_seed']))


def test_bare_maxim_has_the_authors_count_and_keys_in_their_order():
    with torch.device('meta'):
        net = build_network({'type': 'Maxim'})
    entry = reference()['Maxim']
    assert sum(p.numel() for p in net.parameters()) == entry['params'] == 8_175_683
    state = net.state_dict()
    assert list(state) == entry['keys']
    assert [tuple(t.shape) for t in state.values()] == entry['shapes']
    assert net.size_multiple == (64, 64)


def test_outputs_equal_the_authors_code_on_64x64_and_on_their_padded_other_sizes():
    ref = reference()
    net = build_network({'type': 'Maxim'})
    net.load_state_dict(recipe_state(ref['Maxim'], ref))  # strict: their names as they are
    x = reference_input(ref)
    h, w = ref['crop']  # theirs refuses 50 x 57: the reference ran it reflect-padded to 64 x 64, cropped back
    with torch.no_grad():
        out, cropped = net.eval()(x), net(x[..., :h, :w])
    torch.testing.assert_close(out, ref['Maxim']['output'], rtol=0, atol=1e-5)
    torch.testing.assert_close(cropped, ref['Maxim']['output_cropped'], rtol=0, atol=1e-5)


def test_other_sizes_are_padded_by_reflection_and_cropped_back():
    torch.manual_seed(0)
    net = build_network(dict(TINY_MAXIM, block_size_hr=[16, 16], grid_size_hr=[16, 16], block_size_lr=[8, 8],
                             grid_size_lr=[8, 8])).eval()  # the default layouts: multiples of 64
    x = torch.rand(1, 3, 50, 70)
    with torch.no_grad():
        out = net(x)
        padded = net(F.pad(x, (0, 58, 0, 14), mode='reflect'))
    assert out.shape == x.shape
    torch.testing.assert_close(out, padded[..., :50, :70], rtol=0, atol=1e-6)


def test_small_layouts_need_smaller_multiples_and_tiny_images_run():
    net = build_network(TINY_MAXIM)
    assert net.size_multiple == (16, 16)  # lcm(8; 4 at full scale; 2*4; 4*2; 8*2 at 1/8)
    out = net(torch.rand(2, 3, 5, 7))  # smaller than the padding: replicated
    assert out.shape == (2, 3, 5, 7) and torch.isfinite(out).all()
    out.mean().backward()
    unused = {k for k, p in net.named_parameters() if p.grad is None}
    assert unused and all('cross_gating_block.' in k or 'UNetEncoderBlock_0.Conv_1' in k for k in unused)


def test_layout_multiples_and_the_authors_nearest_downsampling():
    assert size_multiple([(0, (16, 16), (16, 16)), (1, (16, 16), (16, 16)), (2, (8, 8), (8, 8)),
                          (3, (8, 8), (8, 8))]) == (64, 64)
    x = torch.arange(64.).reshape(1, 1, 8, 8)
    assert nearest_downsample(x, 2)[0, 0, :, 0].tolist() == [9., 25., 41., 57.]  # rows/cols 1, 3, 5, 7
    assert nearest_downsample(x, 4)[0, 0].tolist() == [[18., 22.], [50., 54.]]  # rows/cols 2, 6


def test_depth_other_than_three_is_refused():
    with pytest.raises(ValueError, match='depth and num_supervision_scales must be 3'):
        build_network({'type': 'Maxim', 'depth': 4})
