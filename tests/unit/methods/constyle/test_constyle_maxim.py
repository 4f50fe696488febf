"""ConStyleMaxim: the authors' parameter counts, their checkpoint names (queue layout included) loading strictly
through our renaming, outputs equal to their code's (tests/data/irconstyle/reference_maxim.pt), padding, and
ConStyleModel training it (prompter phase, then frozen) as it trains ConStyleNAFNet."""
import copy
import os.path as osp

import torch
from basicsr.archs import build_network
from basicsr.models import build_model

from mclir_basicsr.checks.options import check_options
from mclir_basicsr.methods.constyle.constyle_authors_keys import authors_shape, authors_to_ours
from tests.helpers import TEST_DATA, batch, constyle_opt, reference_state

REFERENCE = osp.join(TEST_DATA, 'irconstyle', 'reference_maxim.pt')
TINY = {'type': 'ConStyleMaxim', 'features': 8, 'bottom_blk_num': 1, 'block_size_hr': [4, 4], 'grid_size_hr': [4, 4],
        'block_size_lr': [2, 2], 'grid_size_lr': [2, 2], 'constyle': {'queue_size': 32}}  # multiples of 16


def _count(net, trainable=False):
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable)


def _recipe_state(entry, ref):
    """The reference's weights under the authors' names (their sorted-key order, one generator; README)."""
    return reference_state(list(zip(entry['keys'], entry['shapes'])), ref['weight_seed'], ref['scale'])


def test_the_authors_parameter_counts():
    with torch.device('meta'):
        train = build_network({'type': 'ConStyleMaxim'})
        infer = build_network({'type': 'ConStyleMaxim', 'Train': False})
    assert _count(train) == 9_292_496 and _count(train, trainable=True) == 8_101_664  # key encoder frozen
    assert _count(infer) == 8_101_664


def test_the_authors_names_map_onto_ours_one_to_one():
    ref = torch.load(REFERENCE, weights_only=True)
    for name, opt in (('ConStyleMaxim', {}), ('ConStyleMaxim_TrainFalse', {'Train': False})):
        entry = ref[name]
        with torch.device('meta'):
            net = build_network(dict(opt, type='ConStyleMaxim'))
        ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        mapped = {authors_to_ours(k): authors_shape(k, s) for k, s in zip(entry['keys'], entry['shapes'])}
        assert mapped == ours and len(entry['keys']) == len(ours)
        assert net.checkpoint_key('Process_Module_r1.UNetEncoderBlock_0.Conv_0.weight', {}) == \
            'decoders.0.UNetEncoderBlock_0.Conv_0.weight'
        assert net.checkpoint_shape('ConStyle.queue', (128, 65760)) == (65760, 128)


def test_their_checkpoint_loads_strictly_and_restores_as_their_code_padded_sizes_too():
    ref = torch.load(REFERENCE, weights_only=True)
    x = torch.rand(ref['input_shape'], generator=torch.Generator().manual_seed(ref['input_seed']))
    for name, opt in (('ConStyleMaxim', {}), ('ConStyleMaxim_TrainFalse', {'Train': False})):
        net = build_network(dict(opt, type='ConStyleMaxim'))
        theirs = _recipe_state(ref[name], ref)
        net.load_state_dict(theirs)  # strict, through the renaming pre-hook
        if name == 'ConStyleMaxim':
            assert torch.equal(net.prompter.queue, theirs['ConStyle.queue'].t())
        with torch.no_grad():
            torch.testing.assert_close(net.eval()(x), ref[name]['output'], rtol=0, atol=1e-5)
            if name == 'ConStyleMaxim':  # theirs refuses 50 x 57: the reference ran it reflect-padded to 64 x 64
                h, w = ref['crop']
                torch.testing.assert_close(net(x[..., :h, :w]), ref[name]['output_cropped'], rtol=0, atol=1e-5)


def test_any_size_restores_at_its_size():
    torch.manual_seed(0)
    net = build_network(TINY)
    assert net.size_multiple == (16, 16)
    out = net(torch.rand(4, 3, 19, 30), gt=torch.rand(4, 3, 19, 30))
    assert out['output'].shape == (4, 3, 19, 30) and out['logits'].shape == (4, 33)
    assert net.eval()(torch.rand(1, 3, 13, 9)).shape == (1, 3, 13, 9)
    with torch.device('meta'):
        assert build_network({'type': 'ConStyleMaxim'}).size_multiple == (64, 64)


def test_constyle_model_trains_it_then_freezes_the_prompter(tmp_path):
    opt = constyle_opt(tmp_path, constyle_iter=1)
    opt['network_g'] = copy.deepcopy(TINY)
    check_options(opt)
    model = build_model(opt)
    data = batch(n=4, lq=16, scale=1)
    before = copy.deepcopy(model.net_g.state_dict())
    model.feed_data(data)
    model.optimize_parameters(1)  # the prompter trains with the restorer
    assert {'l_pix', 'l_CrossEntropy', 'l_content', 'l_style'} <= set(model.log_dict)
    after = copy.deepcopy(model.net_g.state_dict())
    for key in ('encoders.0.Conv_0.weight', 'decoders.0.UNetEncoderBlock_0.Conv_0.weight', 'gate.weight',
                'UpSampleRatio_1.Conv_0.weight', 'prompter.encoder_q.stages.0.0.0.weight'):
        assert not torch.equal(before[key], after[key]), key
    assert int(after['prompter.queue_ptr']) == 4
    model.feed_data(data)
    model.optimize_parameters(2)  # frozen: restorer only
    assert set(model.log_dict) >= {'l_pix'} and 'l_CrossEntropy' not in model.log_dict
    last = model.net_g.state_dict()
    assert not torch.equal(after['ending.weight'], last['ending.weight'])
    assert all(torch.equal(after[k], last[k]) for k in last if k.startswith('prompter.'))
