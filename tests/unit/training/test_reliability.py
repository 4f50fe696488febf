"""Reliability in process: the divergence guard (a NaN step skipped with the weights untouched, consecutive bad steps
stop training, its options) and a start removing the temporary files of dead writers only. Kills, resumes and DDP in
subprocesses: e2e/test_reliability.py."""
import os
import subprocess
import sys

import pytest
import torch

from basicsr.models import build_model
from mclir_basicsr.training.step_guard import TrainingDiverged
from tests.helpers import batch, make_opt


def _dead_pid():
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, '-c', ''])
    proc.wait()
    return proc.pid


def test_a_start_removes_the_temporary_files_of_dead_writers_only(tmp_path, capsys):
    from mclir_basicsr.runtime.resume import load_resume_state
    opt = make_opt(tmp_path, auto_resume=True)
    build_model(opt).save(0, 4)
    models, states = tmp_path / 'models', tmp_path / 'training_states'
    dead = _dead_pid()
    stale = [states / f'.8.state.tmp-{dead}', models / f'.net_g_8.pth.tmp-{dead}']
    stale[0].write_bytes(bytes(3 << 20))  # a torn state
    stale[1].write_bytes(b'')  # killed right after opening
    live = states / f'.12.state.tmp-{os.getpid()}'  # its writer still runs (another rank, a concurrent run)
    others = [models / '.notes', states / 'x.tmp-1', models / f'.net_g_4.pth.tmp-{dead}x', models / 'net_g_4.pth']
    for path in [live] + others[:3]:
        path.write_bytes(b'x')
    state = load_resume_state(opt)
    assert state['iter'] == 4
    assert not any(p.exists() for p in stale) and live.exists() and all(p.exists() for p in others)
    out = capsys.readouterr().out
    assert f'Resume from {states / "4.state"} (iteration 4)' in out
    assert 'removed 2 temporary file(s) of interrupted writes (3.0 MiB)' in out
    assert all(p.name in out for p in stale) and live.name not in out
    stale[0].write_bytes(b'')  # a fresh start (nothing to resume) cleans too, before BasicSR archives the folder
    opt.update(auto_resume=False)
    opt['path']['resume_state'] = None
    assert load_resume_state(opt) is None
    assert not stale[0].exists() and live.exists()
    assert f'removed 1 temporary file(s) of interrupted writes (0.0 MiB): [{stale[0].name}]' in capsys.readouterr().out
    assert load_resume_state(opt) is None and capsys.readouterr().out == ''  # nothing to say


# ---------------------------------------------------------------------------------------------- divergence guard
def test_nan_step_is_skipped_and_weights_untouched(tmp_path):
    model = build_model(make_opt(tmp_path, history={'copies': [{'period': 1, 'decay': 0.0}]}))
    model.feed_data(batch())
    model.optimize_parameters(1)
    net_before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    copy_before = {k: v.clone() for k, v in model.history.copies[0].module.state_dict().items()}
    adam_before = {k: v.clone() for k, v in model.optimizer_g.state_dict()['state'][0].items()}
    bad = batch(seed=3)
    bad['lq'][0, 0, 0, 0] = float('nan')  # an injected NaN
    model.feed_data(bad)
    model.optimize_parameters(2)
    assert model.guard.bad_steps == 1
    assert all(torch.equal(v, net_before[k]) for k, v in model.net_g.state_dict().items())
    assert all(torch.equal(v, copy_before[k]) for k, v in model.history.copies[0].module.state_dict().items())
    assert all(torch.equal(v, adam_before[k]) for k, v in model.optimizer_g.state_dict()['state'][0].items())
    model.feed_data(batch(seed=4))
    model.optimize_parameters(3)  # a good step resets the count and trains again
    assert model.guard.bad_steps == 0
    assert any(not torch.equal(v, net_before[k]) for k, v in model.net_g.state_dict().items())


def test_consecutive_bad_steps_stop_training(tmp_path):
    model = build_model(make_opt(tmp_path, extra_train={'divergence_guard': {'max_consecutive_bad_steps': 3}}))
    bad = batch()
    bad['gt'][:] = float('inf')
    for it in (1, 2):
        model.feed_data(bad)
        model.optimize_parameters(it)
    model.feed_data(bad)
    with pytest.raises(TrainingDiverged, match=r'training stopped at iter 3: 3 consecutive steps.*'
                       r'max_consecutive_bad_steps = 3'):
        model.optimize_parameters(3)


def test_guard_option_errors(tmp_path):
    from mclir_basicsr.checks.options import OptionError, check_options
    opt = make_opt(tmp_path, extra_train={'divergence_guard': {'max_bad': 3}})
    with pytest.raises(OptionError, match='unknown key train.divergence_guard.max_bad'):
        check_options(opt)
    opt = make_opt(tmp_path, extra_train={'divergence_guard': {'max_consecutive_bad_steps': 0}})
    with pytest.raises(OptionError, match='max_consecutive_bad_steps must be >= 1'):
        check_options(opt)
