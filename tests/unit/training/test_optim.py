"""train.optim_* with any torch.optim optimizer, and the schedulers of the reference projects."""
import copy
import math

import pytest
import torch
from basicsr.models import build_model

from mclir_basicsr.training.lr_schedulers import (CosineAnnealingRestartCyclicLR, LinearWarmupCosineAnnealingLR,
                                                  TrueCosineAnnealingLR, check_scheduler_options)
from mclir_basicsr.training.optimizers import check_optimizer_options
from mclir_basicsr.checks.options import OptionError
from tests.helpers import batch, make_opt


def _lrs(scheduler, steps):
    out = []
    for _ in range(steps):
        out.append(scheduler.optimizer.param_groups[0]['lr'])
        scheduler.optimizer.step()
        scheduler.step()
    return out


def _optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_adamw_with_its_arguments_through_build_model(tmp_path):
    opt = make_opt(tmp_path, model_type='SRModel', extra_train={
        'optim_g': {'type': 'AdamW', 'lr': 3e-4, 'weight_decay': 1e-4, 'betas': [0.9, 0.99]}})
    check_optimizer_options(opt)
    model = build_model(opt)
    assert type(model.optimizer_g) is torch.optim.AdamW
    group = model.optimizer_g.param_groups[0]
    assert (group['lr'], group['weight_decay'], tuple(group['betas'])) == (3e-4, 1e-4, (0.9, 0.99))


@pytest.mark.parametrize('optim, message', [
    ({'type': 'AdamWW', 'lr': 1e-3}, "train.optim_g.type 'AdamWW' is not an optimizer of torch.optim. Did you mean "
                                     "AdamW?"),
    ({'type': 'AdamW', 'lr': 1e-3, 'weight_decya': 0}, 'unknown key train.optim_g.weight_decya for AdamW. Did you '
                                                       'mean train.optim_g.weight_decay?'),
    ({'type': 'SGD', 'momentum': 0.9}, 'train.optim_g.lr is required'),
    ('AdamW', 'train.optim_g must be a mapping with a type'),
])
def test_bad_optimizer_options_name_the_key(tmp_path, optim, message):
    opt = make_opt(tmp_path, extra_train={'optim_g': optim})
    with pytest.raises(OptionError, match=message.replace('.', r'\.').replace('?', r'\?')):
        check_optimizer_options(opt)


def test_true_cosine_is_torchs_cosine():
    ours = _lrs(TrueCosineAnnealingLR(_optimizer(), T_max=10, eta_min=0.1), 15)
    theirs = _lrs(torch.optim.lr_scheduler.CosineAnnealingLR(_optimizer(), T_max=10, eta_min=0.1), 15)
    assert ours == theirs


def test_cyclic_restarts_closed_form():
    lrs = _lrs(CosineAnnealingRestartCyclicLR(_optimizer(2.0), periods=[4, 8], restart_weights=[1, 0.5],
                                              eta_mins=[0.5, 0.1]), 12)
    for t, lr in enumerate(lrs):
        i, start, period = (0, 0, 4) if t < 4 else (1, 4, 8)
        eta, weight = [0.5, 0.1][i], [1, 0.5][i]
        assert lr == pytest.approx(eta + weight * 0.5 * (2.0 - eta) * (1 + math.cos(math.pi * (t - start) / period)))
    assert lrs[0] == 2.0 and lrs[4] == pytest.approx(0.1 + 0.5 * (2.0 - 0.1))  # the second period restarts lower


def test_linear_warmup_then_cosine():
    lrs = _lrs(LinearWarmupCosineAnnealingLR(_optimizer(1.0), warmup_epochs=4, max_epochs=12, warmup_start_lr=0.2,
                                             eta_min=0.01), 16)
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert lrs[8] == pytest.approx(0.01 + 0.5 * 0.99)  # half-way through the cosine
    assert lrs[12:] == pytest.approx([0.01] * 4)  # flat after max_epochs


@pytest.mark.parametrize('scheduler, message', [
    ({'type': 'TrueCosineAnnealingLr', 'T_max': 10}, 'Did you mean TrueCosineAnnealingLR?'),
    ({'type': 'TrueCosineAnnealingLR', 'Tmax': 10}, 'unknown key train.scheduler.Tmax'),
    ({'type': 'CosineAnnealingRestartCyclicLR'}, 'train.scheduler needs periods'),
    ({'type': 'MultiStepLR', 'milestones': [10], 'gama': 0.5}, 'Did you mean train.scheduler.gamma?'),
])
def test_bad_scheduler_options_name_the_key(tmp_path, scheduler, message):
    with pytest.raises(OptionError, match=message.replace('.', r'\.').replace('?', r'\?')):
        check_scheduler_options({'train': {'scheduler': scheduler}})


@pytest.mark.parametrize('scheduler', [  # one in the fast unit tier, all in the full suite (a few seconds each)
    {'type': 'TrueCosineAnnealingLR', 'T_max': 20, 'eta_min': 1e-6},
    pytest.param({'type': 'LinearWarmupCosineAnnealingLR', 'warmup_epochs': 3, 'max_epochs': 20},
                 marks=pytest.mark.e2e),
    pytest.param({'type': 'CosineAnnealingRestartCyclicLR', 'periods': [5, 15], 'restart_weights': [1, 1],
                  'eta_mins': [1e-4, 1e-6]}, marks=pytest.mark.e2e),
    pytest.param({'type': 'MultiStepLR', 'milestones': [5], 'gamma': 0.5}, marks=pytest.mark.e2e),
])
def test_scheduler_state_resumes_exactly(tmp_path, scheduler):
    """MCLIRModel with AdamW and each scheduler: 6 steps straight == 3 steps, saved, resumed, 3 more (bit-exact)."""
    def model(root):
        opt = make_opt(root, extra_train={'optim_g': {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 1e-4},
                                          'scheduler': copy.deepcopy(scheduler)})
        check_scheduler_options(opt)
        return build_model(opt)

    def steps(m, its):
        for it in its:
            m.update_learning_rate(it)
            m.feed_data(batch(seed=it))
            m.optimize_parameters(it)

    first = model(tmp_path)
    steps(first, range(1, 4))
    first.save_training_state(epoch=0, current_iter=3)
    first.save_network(first.net_g, 'net_g', 3)
    state = torch.load(tmp_path / 'training_states' / '3.state', weights_only=True)
    steps(first, range(4, 7))  # the uninterrupted run
    resumed = model(tmp_path)
    resumed.net_g.load_state_dict(torch.load(tmp_path / 'models' / 'net_g_3.pth', weights_only=True)['params'])
    resumed.resume_training(state)
    steps(resumed, range(4, 7))
    assert resumed.get_current_learning_rate() == first.get_current_learning_rate()
    assert all(torch.equal(v, first.net_g.state_dict()[k]) for k, v in resumed.net_g.state_dict().items())


def test_grad_clip_caps_the_gradient_norm_at_the_step_and_logs_it(tmp_path):
    seen = []
    model = build_model(make_opt(tmp_path, extra_train={'grad_clip': {'max_norm': 1e-3}}))
    step = model.optimizer_g.step

    def recording_step(*args, **kwargs):
        grads = [p.grad for p in model.net_g.parameters() if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
        return step(*args, **kwargs)

    model.optimizer_g.step = recording_step
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert seen and seen[0] <= 1e-3 * (1 + 1e-5)
    assert model.log_dict['grad_norm'] > 1e-3  # the norm before clipping is what is logged


@pytest.mark.parametrize('train, expected', [({'use_grad_clip': True}, 0.01), ({'use_grad_clip': False}, None),
                                             ({'grad_clip': {'max_norm': 0.5, 'norm_type': 1}}, 0.5), ({}, None)])
def test_grad_clip_keys_and_the_nafnet_style_alias(tmp_path, train, expected):
    model = build_model(make_opt(tmp_path, extra_train=train))
    assert (model.guard.clip.max_norm if model.guard.clip else None) == expected


@pytest.mark.parametrize('train, message', [
    ({'grad_clip': {'max_norm': 0.1}, 'use_grad_clip': True}, 'train.grad_clip and train.use_grad_clip are both'),
    ({'grad_clip': {'max_nrom': 0.1}}, 'Did you mean train.grad_clip.max_norm?'),
    ({'grad_clip': {'max_norm': 0}}, 'train.grad_clip.max_norm must be in (0'),
])
def test_bad_grad_clip_options(tmp_path, train, message):
    from mclir_basicsr.checks.options import check_options
    with pytest.raises(OptionError, match=message.replace('.', r'\.').replace('?', r'\?').replace('(', r'\(')):
        check_options(make_opt(tmp_path, extra_train=train))


def test_use_grad_clip_on_a_model_that_ignores_it_is_refused(tmp_path):
    """BasicSR 1.4.2's SRModel never clips: the key would be silently ignored, so it is an error that says what
    to use instead."""
    from mclir_basicsr.checks.options import check_options
    with pytest.raises(OptionError, match='train.use_grad_clip set, but model_type SRModel does not use it'):
        check_options(make_opt(tmp_path, model_type='SRModel', extra_train={'use_grad_clip': True}))
