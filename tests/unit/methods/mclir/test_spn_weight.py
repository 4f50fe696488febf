"""train.spn_opt.loss_weight: auto: the controller (bounded steps towards the target ratio, the collapse guard, its
state), SPNLoss's keys, and MCLIRModel using it (weight logged, saved and restored exactly)."""
import logging

import pytest
import torch

from basicsr.models import build_model
from mclir_basicsr.methods.mclir.spn_loss import SPNLoss
from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.methods.mclir.spn_weight import AutoSPNWeight
from tests.helpers import SPN_RANDOM, batch, make_opt

AUTO_SPN = dict(SPN_RANDOM, loss_weight='auto', target_ratio=0.05, auto_init_weight=0.01, auto_max_change=0.1)


def losses(weight, raw, l_rec=0.1):
    """One step's losses when the unweighted negative term is ``raw`` x l_rec."""
    return {'l_pix': torch.tensor(l_rec), 'l_spn': torch.tensor(-weight * raw * l_rec)}


def test_weight_moves_towards_the_target_in_bounded_steps_and_settles():
    auto = AutoSPNWeight(target_ratio=0.05, init_weight=0.01, momentum=0.0, max_change=0.1)
    weights = [auto.update(losses(auto.weight, raw=1.0), it) for it in range(1, 60)]  # wanted weight: 0.05
    assert weights[0] == pytest.approx(0.011) and weights[1] == pytest.approx(0.0121)  # +10% per step at most
    assert weights[-1] == pytest.approx(0.05)
    assert all(b >= a * (1 - 1e-6) for a, b in zip(weights, weights[1:]))  # float32 losses: tiny wobble


def test_collapse_guard_halves_the_weight_with_a_warning():
    auto = AutoSPNWeight(target_ratio=0.01, init_weight=0.01, momentum=0.9, max_change=0.05)
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger('basicsr').addHandler(handler)
    try:
        for it in (1, 2, 3):  # actual ratio 0.01 * 20 = 0.2 = 20x the target
            auto.update(losses(auto.weight, raw=20.0), it)
    finally:
        logging.getLogger('basicsr').removeHandler(handler)
    assert any('weight halved' in m and 'iter 3' in m for m in messages)
    assert auto.weight == pytest.approx(0.01 / 1.05 ** 2 / 2)  # two bounded steps down, then halved
    state = auto.state_dict()
    again = AutoSPNWeight(0.01, 1.0, 0.9, 0.05)
    again.load_state_dict(state)
    assert again.state_dict() == state
    nan = auto.update({'l_pix': torch.tensor(float('nan')), 'l_spn': torch.tensor(1.0)}, 4)
    assert nan == auto.weight and auto.state_dict() == state  # a non-finite step changes nothing


def test_auto_keys_are_checked():
    def args(**kw):
        return {k: v for k, v in dict(SPN_RANDOM, **kw).items() if k != 'type'}
    with pytest.raises(OptionError, match='target_ratio applies with SPNLoss.loss_weight: auto'):
        SPNLoss.check_options(args(target_ratio=0.05), 'SPNLoss')
    with pytest.raises(OptionError, match='auto_momentum'):
        SPNLoss.check_options(args(loss_weight='auto', auto_momentum=1.0), 'SPNLoss')
    with pytest.raises(OptionError, match='loss_weight'):
        SPNLoss.check_options(args(loss_weight='automatic'), 'SPNLoss')


def test_model_uses_logs_saves_and_restores_the_automatic_weight(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_opt(tmp_path, spn=AUTO_SPN))
    assert model.cri_spn.loss_weight == 0.01
    for it in (1, 2, 3):
        model.feed_data(batch(it))
        model.optimize_parameters(it)
    log = model.get_current_log()
    assert log['spn_weight'] != 0.01 and model.cri_spn.loss_weight == model.auto_weight.weight
    assert abs(model.cri_spn.loss_weight / log['spn_weight'] - 1) <= 0.1 + 1e-9
    model.save_training_state(epoch=0, current_iter=3)
    state = torch.load(tmp_path / 'training_states' / '3.state', weights_only=True)
    assert state['mclir']['spn_weight']['weight'] == model.auto_weight.weight
    resumed = build_model(make_opt(tmp_path, spn=AUTO_SPN))
    resumed.resume_training(state)
    assert resumed.cri_spn.loss_weight == model.cri_spn.loss_weight and resumed.auto_weight.avg == model.auto_weight.avg
