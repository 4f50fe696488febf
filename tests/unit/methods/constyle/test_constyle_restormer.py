"""ConStyleRestormer against the authors' code (Dongqi-Fan/IRConStyle b3e193d): parameter counts, their state dicts
(their names, their queue layout) loading strictly through our renaming, outputs (tests/data/irconstyle, see its
README), padding, and ConStyleModel / IRConStyleModel training it as they train ConStyleNAFNet."""
import mclir_basicsr  # noqa: F401  (must precede basicsr)

import copy
import os.path as osp

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import build_model

from mclir_basicsr.archs.padding import pad_to_multiple
from mclir_basicsr.checks.options import OptionError, check_options
from mclir_basicsr.methods.constyle.constyle_authors_keys import authors_shape, authors_to_ours
from tests.helpers import TEST_DATA, batch, constyle_opt, reference_state

REFERENCE = osp.join(TEST_DATA, 'irconstyle', 'reference_restormer.pt')
TINY = {'type': 'ConStyleRestormer', 'dim': 8, 'left_blk_num': [1, 1, 1], 'bottom_blk_num': 1,
        'right_blk_num': [1, 1, 1], 'num_refinement_blocks': 1, 'heads': [1, 2, 4, 8], 'constyle': {'queue_size': 32}}


@pytest.fixture(scope='module')
def reference():
    return torch.load(REFERENCE, weights_only=True)


def authors_state(case):
    """The authors' state dict of a reference case, rebuilt from its key list and the recipe of the README."""
    return reference_state([(name, shape) for name, shape, _ in case['keys']], 0, case['scale'], case['ints'])


def _count(net):
    return sum(p.numel() for p in net.parameters())


def test_bare_defaults_have_the_authors_parameter_counts_and_tensors(reference):
    case = reference['cases']['constyle_restormer_default']
    with torch.device('meta'):  # shapes only
        train, infer = build_network({'type': 'ConStyleRestormer'}), build_network({'type': 'ConStyleRestormer',
                                                                                    'Train': False})
    assert _count(train) == case['params'] == 16_765_792  # their training model
    assert _count(infer) == case['params_train_false'] == 15_574_960  # their inference model
    ours = {k: tuple(t.shape) for k, t in train.state_dict().items()}
    theirs = {train.checkpoint_key(k, {}): train.checkpoint_shape(k, s) for k, s, _ in case['keys']}
    assert len(theirs) == len(case['keys']) == 552 and theirs == ours


def test_renaming_rules_for_their_restormer_parts_keep_the_nafnet_ones():
    assert authors_to_ours('Preprocess_Module.proj.weight') == 'embed.weight'
    assert authors_to_ours('Finetune_Module.2.attn.qkv.weight') == 'refinement.2.attn.qkv.weight'
    assert authors_to_ours('Finetune_Module.4.weight') == 'ending.weight'  # after 4 refinement blocks
    assert authors_to_ours('Finetune_Module.1.bias') == 'ending.bias'  # bias: true, 1 refinement block
    assert authors_to_ours('AffineTransform2.1.weight') == 'prompts.2.1.weight'  # the PReLU
    assert authors_to_ours('Process_Module_bottom.7.ffn.dwconv.weight') == 'bottleneck.7.ffn.dwconv.weight'
    # ConStyleNAFNet's: every name of their checkpoint still lands on ours
    assert authors_to_ours('Preprocess_Module.0.weight') == 'embed.weight'
    assert authors_to_ours('Finetune_Module.0.weight') == 'ending.weight'
    with open(osp.join(TEST_DATA, 'constyle_authors_keys.txt')) as f:
        nafnet_keys = [line.split() for line in f if not line.startswith('#')]
    with torch.device('meta'):
        nafnet = build_network({'type': 'ConStyleNAFNet'}).state_dict()
    shapes = {k: () if s == '-' else tuple(int(d) for d in s.split('x')) for k, s in nafnet_keys}
    assert {authors_to_ours(k): authors_shape(k, s) for k, s in shapes.items()} == {
        k: tuple(t.shape) for k, t in nafnet.items()}


@pytest.mark.parametrize('name', ['constyle_restormer_small', 'constyle_restormer_default'])
def test_their_state_dict_loads_strictly_and_gives_their_output(reference, name):
    case = reference['cases'][name]
    theirs = authors_state(case)
    net = build_network(dict(case['kwargs'], type='ConStyleRestormer'))
    net.load_state_dict(theirs, strict=True)  # through the renaming pre-hook
    assert torch.equal(net.prompter.queue, theirs['ConStyle.queue'].t())  # (128, K) -> (K, 128)
    assert net.prompter.queue_ptr.shape == () and int(net.prompter.queue_ptr) == int(theirs['ConStyle.queue_ptr'])
    x = reference['input']
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), case['output'], atol=1e-5, rtol=0)
        if 'output_cropped' in case:  # 29 x 37: ours pads inside; theirs was given the same padding
            torch.testing.assert_close(net(x[..., :29, :37]), case['output_cropped'], atol=1e-5, rtol=0)


def test_their_checkpoint_passes_the_checks_before_training(reference, tmp_path):
    from mclir_basicsr.checks.preflight.checkpoints import check_pretrained
    case = reference['cases']['constyle_restormer_small']
    state = authors_state(case)
    torch.save({'params': state}, tmp_path / 'net_g.pth')
    opt = {'network_g': dict(case['kwargs'], type='ConStyleRestormer'),
           'path': {'pretrain_network_g': str(tmp_path / 'net_g.pth')}}
    check_pretrained(opt)  # their names and queue layout, checked by shape
    state['Finetune_Module.1.weight'] = torch.zeros(3, 16, 1, 1)
    torch.save({'params': state}, tmp_path / 'net_g.pth')
    with pytest.raises(OptionError, match=r'ending\.weight: file \[3, 16, 1, 1\]'):
        check_pretrained(opt)


@pytest.mark.parametrize('size', [(19, 30), (8, 13), (3, 5)])
def test_any_size_restores_at_its_size(size):
    torch.manual_seed(0)
    net = build_network(TINY)
    out = net(torch.rand(4, 3, *size), gt=torch.rand(4, 3, *size))
    assert out['output'].shape == (4, 3, *size) and out['logits'].shape == (4, 33)
    assert [c.shape for c in out['codes']] == [(4, 128), (4, 128)] and out['key'].shape == (4, 128)
    x = torch.rand(1, 3, *size)
    net.eval()
    with torch.no_grad():
        codes, feats = net.prompter(pad_to_multiple(x, 8))
        expected = net.restore(pad_to_multiple(x, 8), codes[1], feats)[..., :size[0], :size[1]]
        torch.testing.assert_close(net(x), expected, atol=0, rtol=0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='left_blk_num and right_blk_num need 3 entries'):
        build_network(dict(TINY, left_blk_num=[1, 1]))
    with pytest.raises(ValueError, match='out_channels'):
        build_network(dict(TINY, out_channels=1))


def _opt(tmp_path, model_type='ConStyleModel', **kwargs):
    opt = constyle_opt(tmp_path, model_type=model_type, **kwargs)
    opt['network_g'] = copy.deepcopy(TINY)
    check_options(opt)
    return opt


def test_constyle_model_trains_it_then_freezes_the_prompter(tmp_path):
    model = build_model(_opt(tmp_path, constyle_iter=1))
    data = batch(n=4, lq=16, scale=1)
    before = copy.deepcopy(model.net_g.state_dict())
    model.feed_data(data)
    model.optimize_parameters(1)  # the prompter trains with the restorer
    assert {'l_pix', 'l_CrossEntropy', 'l_content', 'l_style'} <= set(model.log_dict)
    after = copy.deepcopy(model.net_g.state_dict())
    for key in ('embed.weight', 'prompts.0.1.weight', 'encoders.0.0.attn.qkv.weight', 'gate.weight',
                'refinement.0.ffn.project_in.weight', 'ending.weight', 'prompter.encoder_q.stages.0.0.0.weight',
                'prompter.queue'):
        assert not torch.equal(before[key], after[key]), key
    assert int(after['prompter.queue_ptr']) == 4
    model.feed_data(data)
    model.optimize_parameters(2)  # frozen: restorer only
    assert 'l_pix' in model.log_dict and 'l_CrossEntropy' not in model.log_dict
    last = model.net_g.state_dict()
    assert not torch.equal(after['ending.weight'], last['ending.weight'])
    assert all(torch.equal(after[k], last[k]) for k in last if k.startswith('prompter.'))
    model.test()  # validation: net_g(lq)
    assert model.output.shape == data['lq'].shape


def test_irconstyle_model_trains_it_with_a_loaded_frozen_prompter(tmp_path):
    first = build_model(_opt(tmp_path / 'a'))
    first.feed_data(batch(n=4, lq=16, scale=1))
    first.optimize_parameters(1)
    first.save_network([first.net_g, first.net_g], 'net_g', 1, param_key=['params', 'params_ema'])
    trained = copy.deepcopy(first.prompter.encoder_q.state_dict())
    opt = constyle_opt(tmp_path / 'b', model_type='IRConStyleModel', constyle_iter=None, aux=False)
    opt['network_g'] = copy.deepcopy(TINY)
    opt['path']['pretrain_constyle'] = str(tmp_path / 'a' / 'models' / 'net_g_1.pth')
    check_options(opt)
    model = build_model(opt)
    assert all(torch.equal(v, trained[k]) for k, v in model.prompter.encoder_q.state_dict().items())
    restorer = model.net_g.refinement[0].attn.qkv.weight.detach().clone()
    model.feed_data(batch(n=4, lq=16, scale=1))
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_pix'} and not torch.equal(restorer, model.net_g.refinement[0].attn.qkv.weight)
    assert all(torch.equal(v, trained[k]) for k, v in model.prompter.encoder_q.state_dict().items())
