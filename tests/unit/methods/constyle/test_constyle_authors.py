"""The ConStyle authors' checkpoints: the rules renaming their tensors (names listed in tests/data, from
Dongqi-Fan/ConStyle_v2) and their lone-prompter pre-training file for IRConStyleModel. Their paper-sized
ConStyleNAFNet loading strictly: e2e/test_constyle_authors.py."""
import torch

from mclir_basicsr.methods.constyle.constyle_arch import ConStyle
from mclir_basicsr.methods.constyle.constyle_authors_keys import authors_to_ours, rename_authors_state
from mclir_basicsr.methods.constyle.constyle_model import load_pretrained_prompter
from tests.helpers import constyle_authors_state


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


def test_the_authors_pre_trained_prompter_loads_for_irconstyle(tmp_path):
    """Their ConStyle v2 pre-training file: the prompter alone (no ``ConStyle.`` prefix) plus a classifier head."""
    from mclir_basicsr.checks.preflight.checkpoints import check_pretrained_prompter
    theirs = {k[len('ConStyle.'):]: v for k, v in constyle_authors_state().items() if k.startswith('ConStyle.')}
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
