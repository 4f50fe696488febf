"""The ConStyle authors' checkpoints load as they are: every tensor name and shape of their ConStyleNAFNet (listed in
tests/data, from Dongqi-Fan/ConStyle_v2), their queue layout, their lone-prompter pre-training file for
IRConStyleModel, and the checks before training."""
import os.path as osp

import pytest
import torch
from basicsr.archs import build_network

from mclir_basicsr.methods.constyle.constyle_arch import ConStyle
from mclir_basicsr.methods.constyle.constyle_authors_keys import authors_to_ours, rename_authors_state
from mclir_basicsr.methods.constyle.constyle_model import load_pretrained_prompter
from mclir_basicsr.checks.options import OptionError
from tests.conftest import ROOT


def _authors_state(value=None):
    """The authors' ConStyleNAFNet state dict: their names and shapes, random (or constant) values."""
    with open(osp.join(ROOT, 'tests', 'data', 'constyle_authors_keys.txt')) as f:
        rows = [line.split() for line in f if not line.startswith('#')]
    assert len(rows) == 1091
    gen = torch.Generator().manual_seed(0)
    shapes = {k: [] if s == '-' else [int(d) for d in s.split('x')] for k, s in rows}
    return {k: torch.full(s, value) if value is not None else torch.randn(s, generator=gen) if k != 'ConStyle.queue_ptr'
            else torch.tensor([6]) for k, s in shapes.items()}


def test_rename_rules():
    assert authors_to_ours('ConStyle.encoder_k.stage4.0.0.weight') == 'prompter.encoder_k.stages.3.0.0.weight'
    assert authors_to_ours('encoder_q.mlp2.1.running_var') == 'prompter.encoder_q.head2.1.running_var'  # lone prompter
    assert authors_to_ours('Process_Module_r3.2.sca.1.bias') == 'decoders.2.2.sca.1.bias'
    assert authors_to_ours('UC2.down.weight') == 'ups.1.fuse.weight'
    assert authors_to_ours('UC2.up.0.weight') == 'ups.1.body.0.weight'
    assert authors_to_ours('DC3.down.0.weight') == 'downs.2.body.0.weight'
    assert authors_to_ours('AffineTransform0.0.weight') == 'prompts.0.0.weight'  # theirs count from 0 here
    assert authors_to_ours('encoder_q.classifier.0.weight') == 'encoder_q.classifier.0.weight'  # not a restorer's
    assert authors_to_ours('decoders.0.0.conv1.weight') == 'decoders.0.0.conv1.weight'  # ours unchanged


@pytest.mark.e2e  # the paper-sized network (14M parameters): outside the fast unit tier
def test_every_authors_tensor_loads_strictly_with_their_queue_layout():
    theirs = _authors_state()
    net = build_network({'type': 'ConStyleNAFNet'})
    net.load_state_dict(dict(theirs))  # strict: every name found, every shape equal
    ours = net.state_dict()
    assert torch.equal(ours['prompter.queue'], theirs['ConStyle.queue'].t())  # (dim, K) -> (K, dim)
    assert ours['prompter.queue_ptr'].shape == () and int(ours['prompter.queue_ptr']) == 6
    assert torch.equal(ours['embed.weight'], theirs['Preprocess_Module.0.weight'])
    assert torch.equal(ours['gate.weight'], theirs['mlp.0.weight'])
    assert torch.equal(ours['ending.weight'], theirs['Finetune_Module.0.weight'])
    assert torch.equal(ours['bottleneck.8.conv5.bias'], theirs['Process_Module_bottom.8.conv5.bias'])
    assert torch.equal(ours['prompter.encoder_q.stages.0.2.0.weight'], theirs['ConStyle.encoder_q.stage1.2.0.weight'])


@pytest.mark.e2e  # the paper-sized network
def test_an_authors_checkpoint_passes_the_checks_and_a_wrong_shape_is_named(tmp_path):
    from mclir_basicsr.checks.preflight.checkpoints import check_pretrained
    state = _authors_state(0.0)
    torch.save({'params': state}, tmp_path / 'net_g.pth')
    opt = {'network_g': {'type': 'ConStyleNAFNet'}, 'path': {'pretrain_network_g': str(tmp_path / 'net_g.pth')}}
    check_pretrained(opt)  # the queue's transposed shape included
    state['Process_Module_l2.0.conv1.weight'] = torch.zeros(3, 3, 1, 1)
    torch.save({'params': state}, tmp_path / 'net_g.pth')
    with pytest.raises(OptionError, match=r'encoders\.1\.0\.conv1\.weight: file \[3, 3, 1, 1\]'):
        check_pretrained(opt)


def test_the_authors_pre_trained_prompter_loads_for_irconstyle(tmp_path):
    """Their ConStyle v2 pre-training file: the prompter alone (no ``ConStyle.`` prefix) plus a classifier head."""
    from mclir_basicsr.checks.preflight.checkpoints import check_pretrained_prompter
    theirs = {k[len('ConStyle.'):]: v for k, v in _authors_state().items() if k.startswith('ConStyle.')}
    theirs.update({'encoder_q.classifier.0.weight': torch.zeros(512, 256),
                   'encoder_q.classifier.3.bias': torch.zeros(1000)})
    torch.save({'params': theirs}, tmp_path / 'constyle_v2.pth')
    path_opt = {'pretrain_constyle': str(tmp_path / 'constyle_v2.pth'), 'param_key_constyle': 'params'}
    check_pretrained_prompter({'path': path_opt, 'network_g': {'type': 'ConStyleNAFNet'}})

    class Restorer(torch.nn.Module):  # what the loader needs of a network: its .prompter
        def __init__(self):
            super().__init__()
            self.prompter = ConStyle()

    net = Restorer()
    load_pretrained_prompter(net, path_opt)
    loaded = net.prompter.encoder_q.state_dict()
    assert torch.equal(loaded['stages.3.0.0.weight'], theirs['encoder_q.stage4.0.0.weight'])
    assert torch.equal(loaded['head1.1.running_mean'], theirs['encoder_q.mlp1.1.running_mean'])
    assert rename_authors_state({'embed.weight': 1}) == {'embed.weight': 1}  # our own files are left alone
