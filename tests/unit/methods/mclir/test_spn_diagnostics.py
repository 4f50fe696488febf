"""SPN diagnostics: the ratio to the reconstruction loss and its warning, per-copy feature distances, refresh counts
(kept across resume)."""
import logging

import pytest
import torch

from basicsr.models import build_model
from mclir_basicsr.methods.mclir.spn_diagnostics import SPNDiagnostics
from tests.helpers import batch, make_opt


class FakeSPN:
    loss_weight = 0.01
    last_distances = torch.tensor([2.0, 3.0])


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_ratio_warns_once_after_patience_steps_outside_the_band():
    diag = SPNDiagnostics(2, patience=3)
    handler = Collect()
    logging.getLogger('basicsr').addHandler(handler)
    try:
        for it in range(1, 6):
            out = diag.step({'l_pix': 0.1, 'l_spn': -0.05}, FakeSPN(), it)  # ratio 0.5: far above 0.1
    finally:
        logging.getLogger('basicsr').removeHandler(handler)
    assert out['spn_ratio'] == pytest.approx(0.5)
    warnings = [m for m in handler.messages if 'outside the authors' in m]
    assert len(warnings) == 1 and 'for 3 steps up to iter 3' in warnings[0] and 'swamp' in warnings[0]
    assert 'loss_weight 0.01 -> about 0.00063' in warnings[0]  # 0.01 * sqrt(0.01 * 0.1) / 0.5
    diag.step({'l_pix': 0.1, 'l_spn': -0.003}, FakeSPN(), 6)  # back in the band: re-armed
    assert diag.outside == 0


def test_distances_are_named_by_the_copy_used_and_refreshes_counted():
    diag = SPNDiagnostics(2, round_robin=True, lq_negative=True)
    diag.record_refreshes([1, 1, 0])
    out = diag.step({'l_pix': 1.0, 'l_spn': -0.02}, FakeSPN(), current_iter=3)  # round robin: copy 3 % 2 = 1
    assert out['spn_dist_copy1'] == 2.0 and out['spn_dist_lq'] == 3.0 and 'spn_dist_copy0' not in out
    assert (out['refreshes_copy0'], out['refreshes_copy1']) == (1.0, 2.0)
    again = SPNDiagnostics(2)
    again.load_state_dict(diag.state_dict())
    assert again.refreshes == [1, 2]


def test_refresh_counts_follow_the_schedule_and_survive_resume(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_opt(tmp_path))  # copies with periods 2 and 3
    for it in range(1, 7):
        model.feed_data(batch(it))
        model.optimize_parameters(it)
    assert model.diagnostics.refreshes == [3, 2]
    model.save_training_state(epoch=0, current_iter=6)
    state = torch.load(tmp_path / 'training_states' / '6.state', weights_only=True)
    resumed = build_model(make_opt(tmp_path))
    resumed.resume_training(state)
    assert resumed.diagnostics.refreshes == [3, 2]
    resumed.feed_data(batch(7))
    resumed.optimize_parameters(7)
    assert resumed.get_current_log()['refreshes_copy0'] == 3.0  # logged before the refresh of this step
