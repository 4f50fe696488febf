"""DSRIR's losses against naive references written from the paper's formulas, their gradients and their options."""
import math

import pytest
import torch

import mclir_basicsr  # noqa: F401  (registers the losses)
from mclir_basicsr.methods.dsrir.dsrir_loss import DSRIRPSNRLoss, DSRIRUncertaintyLoss, PositiveContrastLoss
from mclir_basicsr.checks.options import OptionError


def _batch(seed=0, size=16):
    gen = torch.Generator().manual_seed(seed)
    gt, lq = torch.rand(2, 3, size, size, generator=gen), torch.rand(2, 3, size, size, generator=gen)
    images = [torch.rand(2, 3, size, size, generator=gen).requires_grad_() for _ in range(3)]
    log_vars = [0.3 * torch.randn(2, 3, size, size, generator=gen) for _ in range(3)]
    return gt, lq, images, log_vars


def test_uncertainty_loss_matches_the_formula():
    gt, _, images, log_vars = _batch()
    expected = 0
    for r, s in zip(images, log_vars):  # L1(r e^-s, gt e^-s) = mean(e^-s |r - gt|), e^-s > 0
        expected += float((torch.exp(-s) * (r.detach() - gt).abs()).mean()) + 2 * float(s.mean())
    loss = DSRIRUncertaintyLoss(loss_weight=0.5)(images, log_vars, gt)
    assert loss.item() == pytest.approx(0.5 * expected / 3, rel=1e-5)


def test_psnr_loss_is_per_image_then_stage_weighted():
    gt, _, images, _ = _batch()
    expected = 0
    for w, r in zip([1.0, 0.25, 0.25], images):
        per_image = [math.log(float(((r[b].detach() - gt[b]) ** 2).mean()) + 1e-8) for b in range(2)]
        expected += w * 10 / math.log(10) * sum(per_image) / 2
    assert DSRIRPSNRLoss()(images, gt).item() == pytest.approx(expected, rel=1e-6)
    first = [math.log(float(((images[0][b].detach() - gt[b]) ** 2).mean()) + 1e-8) for b in range(2)]
    one_image = DSRIRPSNRLoss()(images[0], gt).item()  # one image: the first weight
    assert one_image == pytest.approx(10 / math.log(10) * sum(first) / 2, rel=1e-6)
    with pytest.raises(ValueError, match='4 stage outputs but stage_weights has 3'):
        DSRIRPSNRLoss()(images + [gt], gt)


def test_positive_contrast_matches_separate_vgg_passes_and_sends_gradients_to_the_stages():
    gt, lq, images, _ = _batch(size=32)
    loss_fn = PositiveContrastLoss(vgg_weights='random')
    vgg = loss_fn.vgg
    feats = [vgg(t) for t in (images[0], gt, images[1], images[2], lq)]
    expected = 0
    for name, w in {'relu1_1': 1 / 32, 'relu2_1': 1 / 16, 'relu3_1': 1 / 8, 'relu4_1': 1 / 4, 'relu5_1': 1}.items():
        a, p0, p1, p2, n = (f[name] for f in feats)
        pull = (a - p0).abs().mean() + 0.25 * (a - p1).abs().mean() + 0.125 * (a - p2).abs().mean()
        expected = expected + w * pull / ((a - n).abs().mean() + 1e-7)
    loss = loss_fn(images, gt.requires_grad_(), lq.requires_grad_())
    assert loss.item() == pytest.approx(0.2 * expected.item(), rel=1e-5)
    loss.backward()
    assert all(r.grad is not None and r.grad.abs().sum() > 0 for r in images)  # r2, r1 are positives with grad
    assert gt.grad is None and lq.grad is None
    assert all(p.grad is None for p in loss_fn.parameters())


def test_positive_contrast_resizes_a_smaller_input():
    gt, lq, images, _ = _batch(size=32)
    loss = PositiveContrastLoss(vgg_weights='random')(images, gt, lq[..., ::2, ::2])
    assert torch.isfinite(loss)


def test_positive_contrast_never_downloads(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth'):
        PositiveContrastLoss()


@pytest.mark.parametrize('cls, kwargs, message', [
    (DSRIRUncertaintyLoss, dict(var_weight=-1), r'var_weight must be in \[0, inf\)'),
    (DSRIRPSNRLoss, dict(stage_weights=[]), 'stage_weights must be a non-empty list'),
    (DSRIRPSNRLoss, dict(eps=0), r'eps must be in \(0, inf\)'),
    (PositiveContrastLoss, dict(vgg_type='vgg19_bn', vgg_weights='random'), 'vgg_type must be one of'),
    (PositiveContrastLoss, dict(layer_weights={'relu6_1': 1}, vgg_weights='random'), 'relu6_1 is not a layer'),
    (PositiveContrastLoss, dict(positive_weights=[1, 'a'], vgg_weights='random'), r'positive_weights\[1\]'),
])
def test_bad_options_name_the_key(cls, kwargs, message):
    with pytest.raises(OptionError, match=message):
        cls(**kwargs)
