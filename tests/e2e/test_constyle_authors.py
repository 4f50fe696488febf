"""The ConStyle authors' paper-sized ConStyleNAFNet (14M parameters): every tensor of theirs loads strictly with their
queue layout, and their checkpoint passes the checks before training (a wrong shape is named). Their names and the
lone-prompter file: unit/methods/constyle/test_constyle_authors.py."""
import pytest
import torch
from basicsr.archs import build_network

from mclir_basicsr.checks.options import OptionError
from tests.helpers import constyle_authors_state


@pytest.mark.e2e  # the paper-sized network (14M parameters): outside the fast unit tier
def test_every_authors_tensor_loads_strictly_with_their_queue_layout():
    theirs = constyle_authors_state()
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
    state = constyle_authors_state(0.0)
    torch.save({'params': state}, tmp_path / 'net_g.pth')
    opt = {'network_g': {'type': 'ConStyleNAFNet'}, 'path': {'pretrain_network_g': str(tmp_path / 'net_g.pth')}}
    check_pretrained(opt)  # the queue's transposed shape included
    state['Process_Module_l2.0.conv1.weight'] = torch.zeros(3, 3, 1, 1)
    torch.save({'params': state}, tmp_path / 'net_g.pth')
    with pytest.raises(OptionError, match=r'encoders\.1\.0\.conv1\.weight: file \[3, 3, 1, 1\]'):
        check_pretrained(opt)
