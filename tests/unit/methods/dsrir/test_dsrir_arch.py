"""DSRIR network: the paper's parameter count, the authors' checkpoint names, stage outputs, padding, bad layouts."""
import os.path as osp

import pytest
import torch
from basicsr.archs import build_network

import mclir_basicsr  # noqa: F401  (registers DSRIR)
from tests.helpers import ROOT, dsrir_authors_state

TINY = dict(type='DSRIR', widths=[8, 8, 8], width_steps=[8, 8], unet1_blocks=[1, 1, 1], unet2_blocks=[1, 1],
            groups=1, group_grids=[8, 4], reduction=4)


def _count(net):
    return sum(p.numel() for p in net.parameters())


def test_default_network_has_the_public_models_parameter_count():
    net = build_network({'type': 'DSRIR'})
    assert _count(net) == 3_516_837  # the authors' model/DSRIR.py with its defaults
    assert net.size_multiple == 8
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert frozen == ['usau.2.feature_proj.weight', 'usau.2.attention.0.weight', 'usau.2.attention.0.bias']


def test_authors_checkpoint_names_and_shapes_load_strictly():
    """Every parameter of the authors' model (names and shapes listed in tests/data) maps onto ours."""
    theirs = dsrir_authors_state()
    net = build_network({'type': 'DSRIR'})
    net.load_state_dict(dict(theirs))  # strict: every name found, every shape equal
    ours = net.state_dict()
    assert torch.equal(ours['embed.weight'], theirs['ebd.weight'])
    assert torch.equal(ours['subnet3.3.body.1.weight'], theirs['SN3.PAG4.body.4.weight'])  # a group's last conv
    assert torch.equal(ours['subnet3.0.body.0.2.attention.weigh.2.bias'], theirs['SN3.PAG1.body.2.PA.conv_du.2.bias'])
    assert torch.equal(ours['subnet1.downs.1.conv.weight'], theirs['SN1.down2.down.1.weight'])
    assert torch.equal(ours['usau.1.feature_proj.weight'], theirs['usau_2.conv2.weight'])
    assert torch.equal(ours['refine.2.gate.2.weight'], theirs['PRU3.fr.2.weight'])


def test_stages_are_final_first_and_any_size_is_padded_and_cropped():
    torch.manual_seed(0)
    net = build_network(TINY).eval()
    x = torch.rand(2, 3, 21, 30)  # not a multiple of 8
    with torch.no_grad():
        images, log_vars = net(x, with_stages=True)
        final = net(x)
    assert len(images) == len(log_vars) == 3
    assert all(t.shape == x.shape for t in images + log_vars)
    assert torch.equal(final, images[0])
    with torch.no_grad():  # the crop keeps the top-left: equal to running the padded image and cropping
        padded = torch.nn.functional.pad(x, (0, 2, 0, 3), mode='reflect')
        assert torch.allclose(net(padded)[..., :21, :30], final, atol=1e-6)


def test_all_trainable_parameters_get_gradients_from_the_stages():
    net = build_network(TINY)
    images, log_vars = net(torch.rand(1, 3, 16, 16), with_stages=True)
    sum(t.mean() for t in images + log_vars).backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


@pytest.mark.parametrize('change, message', [
    (dict(widths=[8, 8]), 'widths needs 3 entries'),
    (dict(unet1_blocks=[1, 1]), 'unet1_blocks and unet1_grids need one entry per level'),
    (dict(groups=0), 'groups must be >= 1'),
    (dict(reduction=16), 'every width must be >= reduction'),
])
def test_bad_layouts_fail_at_construction(change, message):
    with pytest.raises(ValueError, match=message):
        build_network(dict(TINY, **change))


def test_size_multiple_follows_the_grids():
    assert build_network(dict(TINY, unet1_grids=[2, 2, 2], unet2_grids=[2, 2], group_grids=[2])).size_multiple == 8
    assert build_network(dict(TINY, unet1_blocks=[1], unet1_grids=[2], unet2_blocks=[1], unet2_grids=[2],
                              group_grids=[3])).size_multiple == 6


def test_authors_checkpoint_passes_the_checks_before_training(tmp_path):
    from mclir_basicsr.checks.options import OptionError
    from mclir_basicsr.checks.preflight.checkpoints import check_pretrained
    with open(osp.join(ROOT, 'tests', 'data', 'dsrir_authors_keys.txt')) as f:
        rows = [line.split() for line in f if not line.startswith('#')]
    state = {k: torch.zeros([int(s) for s in shape.split('x')]) for k, shape in rows}
    torch.save({'epoch': 1, 'state_dict': state}, tmp_path / 'model_best.pth')  # the authors' file layout
    opt = {'network_g': {'type': 'DSRIR'}, 'path': {'pretrain_network_g': str(tmp_path / 'model_best.pth'),
                                                    'param_key_g': 'state_dict'}}
    check_pretrained(opt)
    state['SN1.encoder1.0.conv1.weight'] = torch.zeros(3, 3, 3, 3)
    torch.save({'state_dict': state}, tmp_path / 'model_best.pth')
    with pytest.raises(OptionError, match=r'subnet1.encoders.0.0.body.0.weight: file \[3, 3, 3, 3\]'):
        check_pretrained(opt)
