"""train.history.adaptive: the MCLIR authors' refresh trigger (residual spread above a threshold) as an option of
every MCLIR model: its keys, round-robin refreshes with their decay, its count in the training state. The same
decision on every DDP rank: e2e/test_adaptive_refresh.py."""
import pytest
import torch

from basicsr.models import build_model
from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.methods.mclir.options import parse_history
from tests.helpers import adaptive_history, batch, make_opt


@pytest.mark.parametrize('history, message', [
    ({'copies': [{'period': None, 'decay': 0.5}]}, 'period is null, but without train.history.adaptive'),
    (adaptive_history(neg_t=0.1), 'threshold and train.history.adaptive.neg_t'),
    (adaptive_history(thresold=0.1), 'Did you mean train.history.adaptive.threshold'),
    (adaptive_history(threshold=-1), 'threshold'),
    (dict(adaptive_history(), adaptive={'decay': 1.0}), 'decay'),
    (dict(adaptive_history(), adaptive=0.022), 'must be a mapping'),
])
def test_adaptive_keys_are_checked(history, message):
    with pytest.raises(OptionError, match=message):
        parse_history({'history': history})


def test_adaptive_defaults_and_the_authors_alias():
    cfg = parse_history({'history': {'copies': [{'period': None, 'decay': 0.1}], 'adaptive': {}}})
    assert (cfg.adaptive.threshold, cfg.adaptive.decay) == (0.022, 0.001) and cfg.copies[0].period is None
    cfg = parse_history({'history': {'copies': [{'period': 5, 'decay': 0.1}], 'adaptive': {'neg_t': 0.05}}})
    assert cfg.adaptive.threshold == 0.05 and cfg.copies[0].period == 5


def test_adaptive_refreshes_copies_round_robin_and_resumes_its_count(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_opt(tmp_path, history=adaptive_history(threshold=0.0)))
    before = model.history.digests()
    model.feed_data(batch(1))
    model.optimize_parameters(1)
    after = model.history.digests()
    assert after[0] != before[0] and after[1] == before[1]  # copy 0 (no period) refreshed adaptively
    assert model.adaptive.count == 1 and model.log_dict['adaptive_spread'] > 0 and model.log_dict[
        'adaptive_refresh'] == 0.0
    model.feed_data(batch(2))
    model.optimize_parameters(2)
    assert model.adaptive.count == 2 and model.history.digests()[1] != after[1]
    model.save_training_state(epoch=0, current_iter=2)
    state = torch.load(tmp_path / 'training_states' / '2.state', weights_only=True)
    assert state['mclir']['adaptive_refreshes'] == 2
    resumed = build_model(make_opt(tmp_path, history=adaptive_history(threshold=0.0)))
    resumed.resume_training(state)
    assert resumed.adaptive.count == 2 and resumed.history.digests() == model.history.digests()
    quiet = build_model(make_opt(tmp_path, history=adaptive_history(threshold=1e9)))
    digests = quiet.history.digests()
    quiet.feed_data(batch(1))
    quiet.optimize_parameters(1)
    assert quiet.adaptive.count == 0 and quiet.history.digests() == digests and 'adaptive_refresh' not in \
        quiet.log_dict
