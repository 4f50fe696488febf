"""SPNLoss: values against a hand-written reference, gradients, direction of the update, VGG weights."""
import time

import pytest
import torch
from torch.nn import functional as F

from basicsr.losses import build_loss
from mclir_basicsr.methods.mclir.spn_loss import SPNLoss
from mclir_basicsr.checks.options import OptionError

LAYERS = {'relu1_1': 0.3, 'relu2_1': 0.7}


def make_loss(**kw):
    args = dict(vgg_type='vgg11', layer_weights=LAYERS, vgg_weights='random', loss_weight=0.5)
    args.update(kw)
    return SPNLoss(**args)


def reference(loss, out, negs, gt=None, lq=None):
    """Naive per-negative, per-layer loops, one VGG call per image (the authors' style)."""
    negs = list(negs)
    if loss.lq_negative:
        negs.append(F.interpolate(lq, size=out.shape[-2:], mode='bicubic', align_corners=False)
                    if lq.shape[-2:] != out.shape[-2:] else lq)

    def dist(a, b):
        if loss.criterion == 'l1':
            return (a - b).abs().mean()
        if loss.criterion == 'l2':
            return ((a - b)**2).mean()
        return torch.sqrt(((a - b)**2).sum())

    f_out = loss.vgg(out)
    f_negs = [loss.vgg(n) for n in negs]
    total = 0.0
    if loss.form == 'subtract':
        for f_n in f_negs:
            for name, w in loss.layer_weights.items():
                total = total + w * dist(f_out[name], f_n[name])
        return -loss.loss_weight * total / len(negs)
    f_gt = loss.vgg(gt)
    for name, w in loss.layer_weights.items():
        d_neg = sum(dist(f_out[name], f_n[name]) for f_n in f_negs) / len(negs)
        d_neg = torch.clamp(d_neg, min=loss.denominator_floor)
        total = total + w * dist(f_out[name], f_gt[name]) / (d_neg + loss.eps)
    return loss.loss_weight * total


def _data(seed=0, b=2, size=24):
    g = torch.Generator().manual_seed(seed)
    out = torch.rand(b, 3, size, size, generator=g)
    negs = [torch.rand(b, 3, size, size, generator=g) for _ in range(3)]
    gt = torch.rand(b, 3, size, size, generator=g)
    lq = torch.rand(b, 3, size // 2, size // 2, generator=g)
    return out, negs, gt, lq


@pytest.mark.parametrize('form', ['subtract', 'ratio'])
@pytest.mark.parametrize('criterion', ['l1', 'l2', 'fro'])
@pytest.mark.parametrize('lq_negative', [False, True])
def test_matches_reference(form, criterion, lq_negative):
    loss = make_loss(form=form, criterion=criterion, lq_negative=lq_negative, denominator_floor=0.0)
    out, negs, gt, lq = _data()
    got = loss(out, negs, gt=gt, lq=lq)
    want = reference(loss, out, negs, gt=gt, lq=lq)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    if form == 'subtract':
        assert got.item() < 0  # the paper's form: minus the distance to the negatives


def test_closed_form_identity_features():
    """With one layer and identical negatives, subtract = -lambda * w * d, ratio = lambda * w * d_pos / d_neg."""
    loss = make_loss(layer_weights={'relu1_1': 2.0}, loss_weight=0.1)
    out, negs, gt, _ = _data()
    f = loss.vgg
    d = (f(out)['relu1_1'] - f(negs[0])['relu1_1']).abs().mean()
    torch.testing.assert_close(loss(out, [negs[0]] * 4), -0.1 * 2.0 * d)
    ratio = make_loss(layer_weights={'relu1_1': 2.0}, loss_weight=0.1, form='ratio', eps=1e-7)
    d_pos = (f(out)['relu1_1'] - f(gt)['relu1_1']).abs().mean()
    torch.testing.assert_close(ratio(out, [negs[0]] * 2, gt=gt), 0.1 * 2.0 * d_pos / (d + 1e-7))


def test_stacked_negatives_equal_list():
    loss = make_loss()
    out, negs, _, _ = _data()
    torch.testing.assert_close(loss(out, torch.stack(negs)), loss(out, negs))


def test_denominator_floor_bounds_ratio():
    out, negs, gt, _ = _data()
    near = [out + 1e-4 * torch.randn_like(out) for _ in range(2)]  # a copy that sits on the output
    unsafe = make_loss(form='ratio', loss_weight=1.0)(out, near, gt=gt)
    floor = make_loss(form='ratio', loss_weight=1.0, denominator_floor=0.05)(out, near, gt=gt)
    with_lq = make_loss(form='ratio', loss_weight=1.0, lq_negative=True)(out, near, gt=gt,
                                                                         lq=torch.zeros_like(out[:, :, ::2, ::2]))
    assert unsafe.item() > 100 * floor.item()
    assert unsafe.item() > 100 * with_lq.item()


def test_gradients_reach_output_not_vgg_or_negatives():
    loss = make_loss(form='ratio', lq_negative=True)
    out, negs, gt, lq = _data()
    out.requires_grad_(True)
    negs = [n.requires_grad_(True) for n in negs]
    loss(out, negs, gt=gt, lq=lq).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(n.grad is None for n in negs)
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())


def test_one_sgd_step_moves_output_away_from_negative():
    torch.manual_seed(0)
    loss = make_loss(loss_weight=1.0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(2, 3, 24, 24)
    neg = net(x).detach()  # a frozen copy of the network's output: distance 0 at the start
    neg = neg + 0.01 * torch.randn_like(neg)

    def distance():
        with torch.no_grad():
            return -make_loss(loss_weight=1.0)(net(x), [neg]).item()

    before = distance()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    opt.zero_grad()
    loss(net(x), [neg]).backward()
    opt.step()
    assert distance() > before * 1.05


def test_train_mode_keeps_vgg_eval():
    loss = make_loss().train()
    assert not loss.vgg.training and loss.training


def test_random_vgg_is_deterministic_and_keeps_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = make_loss()
    got = torch.rand(3)
    assert torch.equal(got, expected)  # building the loss consumed no global randomness
    b = make_loss()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_missing_pretrained_weights_fail_fast(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    start = time.time()
    with pytest.raises(FileNotFoundError) as err:
        build_loss({'type': 'SPNLoss'})  # default vgg_weights: look in the standard places
    assert time.time() - start < 5
    msg = str(err.value)
    assert 'vgg16-397923af.pth' in msg and 'experiments/pretrained_models' in msg
    assert 'train.spn_opt.vgg_weights' in msg and 'random' in msg
    with pytest.raises(FileNotFoundError, match='does not exist'):
        SPNLoss(vgg_weights=str(tmp_path / 'nope.pth'))


def _save_features(path, vgg_type, seed):
    from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features
    torch.manual_seed(seed)
    feats = build_torchvision_vgg_features(vgg_type)
    torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, path)
    return feats


def test_local_weights_file_loaded_and_found_in_standard_place(tmp_path, monkeypatch):
    path = tmp_path / 'vgg11-8a719046.pth'
    feats = _save_features(path, 'vgg11', seed=5)
    loss = make_loss(vgg_weights=str(path))
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, feats[0].weight)
    # the standard place, relative to the working directory, is found without naming the file
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'experiments' / 'pretrained_models').mkdir(parents=True)
    path.rename(tmp_path / 'experiments' / 'pretrained_models' / path.name)
    found = make_loss(vgg_weights=None)
    assert torch.equal(found.vgg.vgg_net.conv1_1.weight, feats[0].weight)


def test_wrong_weights_file_is_clear_error(tmp_path):
    path = tmp_path / 'w.pth'
    _save_features(path, 'vgg13', seed=0)
    with pytest.raises(ValueError, match='does not match vgg_type'):
        make_loss(vgg_weights=str(path))
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a torch file')
    with pytest.raises(ValueError, match='cannot read VGG weights file'):
        make_loss(vgg_weights=str(bad))


@pytest.mark.parametrize('kwargs, message', [
    ({'vgg_wieghts': 'random'}, 'Did you mean SPNLoss.vgg_weights'),
    ({'form': 'contrast'}, 'SPNLoss.form must be one of subtract, ratio'),
    ({'criterion': 'l3'}, 'SPNLoss.criterion must be one of'),
    ({'loss_weight': -1}, r'SPNLoss.loss_weight must be in \[0, inf\)'),
    ({'eps': 0}, r'SPNLoss.eps must be in \(0, inf\)'),
    ({'denominator_floor': -0.1}, 'SPNLoss.denominator_floor'),
    ({'layer_weights': {'relu9_9': 1.0}}, 'SPNLoss.layer_weights.relu9_9 is not a layer of vgg11'),
    ({'layer_weights': {'relu1_1': -1.0}}, 'SPNLoss.layer_weights.relu1_1 must be in'),
    ({'layer_weights': {}}, 'SPNLoss.layer_weights must be a non-empty mapping'),
    ({'use_input_norm': 'yes'}, 'SPNLoss.use_input_norm must be true or false'),
    ({'vgg_type': 'vgg20'}, 'SPNLoss.vgg_type must be one of'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(OptionError, match=message):
        make_loss(**kwargs)


def test_forward_needs_gt_and_lq_when_configured():
    out, negs, gt, lq = _data()
    with pytest.raises(ValueError, match='needs gt'):
        make_loss(form='ratio')(out, negs)
    with pytest.raises(ValueError, match='needs lq'):
        make_loss(lq_negative=True)(out, negs)
