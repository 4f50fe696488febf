"""HistoryUncertaintyLoss (our design, README "train.uncertainty_opt"): value and gradient against a naive per-pixel
reference, its limits (beta 0 = the plain criterion; equal weights when the copies agree everywhere), options, and
its place in MCLIRModel's step."""
import math

import pytest
import torch

from basicsr.models import build_model
from mclir_basicsr.methods.mclir.uncertainty_loss import HistoryUncertaintyLoss
from mclir_basicsr.checks.options import OptionError, check_options
from tests.helpers import batch, make_opt


def naive(output, gt, negatives, beta, criterion='l1', weight=1.0):
    """Loops over images and pixels, as the formula reads (plain Python numbers)."""
    b, c, h, w = output.shape
    output, gt, negatives = output.tolist(), gt.tolist(), [n.tolist() for n in negatives]
    total = 0.
    for i in range(b):
        sigma = [[math.sqrt(sum((n[i][ch][y][x] - output[i][ch][y][x]) ** 2 for n in negatives for ch in range(c))
                            / (len(negatives) * c) + 1e-12) for x in range(w)] for y in range(h)]
        mean_sigma = sum(map(sum, sigma)) / (h * w)
        for y in range(h):
            for x in range(w):
                wgt = (1 - beta) + beta * sigma[y][x] / mean_sigma
                for ch in range(c):
                    d = output[i][ch][y][x] - gt[i][ch][y][x]
                    total += wgt * (abs(d) if criterion == 'l1' else math.sqrt(d * d + 1e-6))
    return weight * total / (b * c * h * w)


@pytest.mark.parametrize('beta, criterion', [(0.5, 'l1'), (1.0, 'charbonnier'), (0.2, 'l1')])
def test_value_and_gradient_equal_the_naive_reference(beta, criterion):
    g = torch.Generator().manual_seed(0)
    output = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64)
    negatives = [torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64) for _ in range(3)]
    loss = HistoryUncertaintyLoss(loss_weight=2.0, beta=beta, criterion=criterion)(output, gt, negatives)
    assert loss.item() == pytest.approx(naive(output.detach(), gt, negatives, beta, criterion, 2.0), rel=1e-6)
    grad, = torch.autograd.grad(loss, output)
    # the weights carry no gradient: d loss / d y(c, p) = loss_weight * w(p) * rho'(y - x) / (B C H W)
    for idx in ((0, 0, 0, 0), (1, 2, 3, 4), (0, 1, 2, 3)):
        b, _, y, x = idx
        others = output.detach().clone()
        w_p = naive_weight(others, negatives, beta, b, y, x)
        d = (others - gt)[idx].item()
        rho_prime = math.copysign(1, d) if criterion == 'l1' else d / math.sqrt(d * d + 1e-6)
        assert grad[idx].item() == pytest.approx(2.0 * w_p * rho_prime / output.numel(), rel=1e-6)


def naive_weight(output, negatives, beta, b, y, x):
    """w(p) of image b at pixel (y, x), written out."""
    _, c, h, w = output.shape

    def sigma(yy, xx):
        return math.sqrt(sum((n[b, ch, yy, xx] - output[b, ch, yy, xx]).item() ** 2 for n in negatives
                             for ch in range(c)) / (len(negatives) * c) + 1e-12)
    mean_sigma = sum(sigma(yy, xx) for yy in range(h) for xx in range(w)) / (h * w)
    return (1 - beta) + beta * sigma(y, x) / mean_sigma


def test_limits_beta_zero_is_l1_and_agreeing_copies_give_equal_weights():
    g = torch.Generator().manual_seed(1)
    output, gt = torch.rand(2, 3, 6, 6, generator=g), torch.rand(2, 3, 6, 6, generator=g)
    negatives = [torch.rand(2, 3, 6, 6, generator=g)]
    l1 = (output - gt).abs().mean()
    assert torch.allclose(HistoryUncertaintyLoss(beta=0.)(output, gt, negatives), l1)
    uniform = [output + 0.1]  # the copy differs by the same amount everywhere: u = 1
    assert torch.allclose(HistoryUncertaintyLoss(beta=1.)(output, gt, uniform), l1, atol=1e-6)
    with pytest.raises(ValueError, match='at least one'):
        HistoryUncertaintyLoss()(output, gt, [])


def test_options_are_checked_and_the_loss_runs_in_the_mclir_step(tmp_path):
    for bad, message in (({'beta': 1.5}, 'uncertainty_opt.beta'), ({'criterion': 'l2'}, 'criterion must be one'),
                         ({'bета': 1}, 'unknown key')):
        opt = make_opt(tmp_path, extra_train={'uncertainty_opt': dict({'type': 'HistoryUncertaintyLoss'}, **bad)})
        with pytest.raises(OptionError, match=message):
            check_options(opt)
    refused = make_opt(tmp_path, model_type='SRModel', extra_train={'uncertainty_opt': {
        'type': 'HistoryUncertaintyLoss'}})
    with pytest.raises(OptionError, match='train.uncertainty_opt set, but model_type SRModel does not use it'):
        check_options(refused)
    torch.manual_seed(0)
    opt = make_opt(tmp_path, extra_train={'uncertainty_opt': {'type': 'HistoryUncertaintyLoss', 'beta': 0.5}})
    check_options(opt)
    model = build_model(opt)
    model.feed_data(batch())
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert log['l_unc'] > 0 and log['spn_ratio'] == pytest.approx(abs(log['l_spn']) / (log['l_pix'] + log['l_unc']))
