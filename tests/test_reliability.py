"""Reliability: exact resume after SIGKILL, crash-safe checkpoints under random kills, DDP, divergence guard."""
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from basicsr.models import build_model
from mclir_basicsr.models.mclir_model import TrainingDiverged
from tests.conftest import ROOT, batch, make_opt, run_module
from tests.test_pipeline import write_options

pytestmark = pytest.mark.pipeline


def _state(path):
    return torch.load(path, weights_only=True, map_location='cpu')


def _checksum(copies):
    """The checksum the model logs on resume: sum over copies of the sum of the norms of their float tensors."""
    total = torch.zeros((), dtype=torch.float64)
    for sd in copies:
        norms = [v.norm() for v in sd.values() if v.is_floating_point()]
        total = total + torch.stack(norms).double().sum()
    return total.item()


def _equal_files(a, b):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        ta, tb = sa[k], sb[k]
        assert ta.keys() == tb.keys()
        for name in ta:
            assert torch.equal(ta[name], tb[name]), (a, k, name)


def _equal_states(a, b):
    sa, sb = _state(a), _state(b)
    assert sa['iter'] == sb['iter'] and sa['epoch'] == sb['epoch']
    for ca, cb in zip(sa['mclir']['history']['copies'], sb['mclir']['history']['copies']):
        assert all(torch.equal(ca[k], cb[k]) for k in ca)
    for oa, ob in zip(sa['optimizers'], sb['optimizers']):
        for pid, st in oa['state'].items():
            assert all(torch.equal(st[k], ob['state'][pid][k]) for k in st if torch.is_tensor(st[k]))


def test_sigkill_then_auto_resume_equals_uninterrupted_run(tmp_path, tiny_data):
    """16 iterations straight == killed (SIGKILL) at iteration 7 then --auto_resume from the state of 4.

    tiny_data gives 12 batches per epoch: the resume lands mid-epoch and the run then crosses an epoch boundary.
    """
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir()
        write_options(root / 'train.yml', tiny_data, name='run', total_iter=16,
                      extra={'logger.save_checkpoint_freq': 4, 'val.val_freq': 100})
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml'], cwd=straight)
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml'], cwd=killed,
                     env_extra={'MCLIR_DEBUG_SIGKILL_AT_ITER': '7'})
    assert res.returncode == -signal.SIGKILL
    states = killed / 'experiments' / 'run' / 'training_states'
    assert sorted(os.listdir(states)) == ['4.state']
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--auto_resume'], cwd=killed)
    assert res.returncode == 0, res.stderr[-3000:]
    log = open(sorted((killed / 'experiments' / 'run').glob('train_run_*.log'))[-1]).read()
    assert 'Resume: skipping the 4 batches of the current epoch' in log
    for it in (8, 12, 16):
        _equal_files(straight / 'experiments' / 'run' / 'models' / f'net_g_{it}.pth',
                     killed / 'experiments' / 'run' / 'models' / f'net_g_{it}.pth')
        _equal_states(straight / 'experiments' / 'run' / 'training_states' / f'{it}.state',
                      killed / 'experiments' / 'run' / 'training_states' / f'{it}.state')


def test_sigkill_resume_is_exact_with_fp16_amp_and_compile(tmp_path, tiny_data):
    """train.amp fp16 (GradScaler) + train.compile: 8 iterations straight == killed at 6, auto-resumed from 4;
    the scaler's state travels in the training state."""
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    speed = {'amp': {'enabled': True, 'dtype': 'fp16', 'init_scale': 2.0 ** 24},
             'compile': {'enabled': True, 'backend': 'eager'}}
    for root in (straight, killed):
        root.mkdir()
        write_options(root / 'train.yml', tiny_data, name='run', total_iter=8,
                      extra={'logger.save_checkpoint_freq': 4, 'val.val_freq': 100, 'train.amp': speed['amp'],
                             'train.compile': speed['compile']})
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml'], cwd=straight)
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml'], cwd=killed,
                     env_extra={'MCLIR_DEBUG_SIGKILL_AT_ITER': '6'})
    assert res.returncode == -signal.SIGKILL
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--auto_resume'], cwd=killed)
    assert res.returncode == 0, res.stderr[-3000:]
    log = open(sorted((straight / 'experiments' / 'run').glob('train_run_*.log'))[-1]).read()
    assert 'MCLIR training step: fp16 autocast on cpu, GradScaler' in log and 'torch.compile (backend eager' in log
    run = 'experiments/run'
    _equal_files(straight / run / 'models' / 'net_g_8.pth', killed / run / 'models' / 'net_g_8.pth')
    _equal_states(straight / run / 'training_states' / '8.state', killed / run / 'training_states' / '8.state')
    scalers = [_state(root / run / 'training_states' / '8.state')['mclir']['amp']['scaler'] for root in (straight,
                                                                                                        killed)]
    assert scalers[0] == scalers[1] and scalers[0]['scale'] <= 2.0 ** 24


def test_kill_while_writing_a_state_leaves_previous_state_usable(tmp_path, tiny_data):
    write_options(tmp_path / 'train.yml', tiny_data, name='run', total_iter=8,
                  extra={'logger.save_checkpoint_freq': 4, 'val.val_freq': 100})
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml'], cwd=tmp_path,
                     env_extra={'MCLIR_DEBUG_SIGKILL_IN_SAVE': '8.state'})
    assert res.returncode == -signal.SIGKILL
    states = tmp_path / 'experiments' / 'run' / 'training_states'
    assert sorted(p for p in os.listdir(states) if not p.startswith('.')) == ['4.state']  # torn file: temp name
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--auto_resume'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'iter: 4.' in open(sorted((tmp_path / 'experiments' / 'run').glob('train_run_*.log'))[-1]).read()
    assert (states / '8.state').exists()


def test_random_kills_never_break_auto_resume(tmp_path, tiny_data):
    """SIGKILL at 20 random moments (start-up, training steps, checkpoint writes, validation); each restart with
    --auto_resume must succeed and resume the newest complete state, with the copies exactly as saved."""
    rng = random.Random(1234)
    write_options(tmp_path / 'train.yml', tiny_data, name='run', total_iter=100000,
                  extra={'logger.save_checkpoint_freq': 3, 'val.val_freq': 7, 'logger.print_freq': 50})
    exp = tmp_path / 'experiments' / 'run'
    # a first checkpoint, so that every restart below has something to resume (BasicSR archives an experiment
    # folder that has no state yet when a new run starts in it)
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--force_yml', 'train:total_iter=3'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='2')
    resumed_from = []
    for attempt in range(20):
        before = set(exp.glob('train_run_*.log'))
        proc = subprocess.Popen([sys.executable, '-m', 'mclir_basicsr.train', '-opt', 'train.yml', '--auto_resume'],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if attempt % 2 == 0:  # anywhere from start-up on (imports, option parsing, state loading, first steps)
            time.sleep(rng.uniform(0.5, 6.0))
        else:  # inside training: steps, checkpoint writes (every 3 iterations), validation (every 7)
            deadline = time.time() + 120
            while time.time() < deadline and not _new_log_says(exp, before, 'Start training from'):
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 2.5))
        if proc.poll() is not None:
            pytest.fail(f'attempt {attempt}: training exited by itself ({proc.returncode}): {proc.stderr.read()}')
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        new_logs = sorted(set(exp.glob('train_run_*.log')) - before)
        log = open(new_logs[-1]).read() if new_logs else ''  # killed before its log existed: nothing to check
        match = re.search(r'Restored 2 history copies from (\S+\.state) \(checksum ([^)]+)\)', log)
        if match:
            path, checksum = match.group(1), float(match.group(2))
            assert _checksum(_state(path)['mclir']['history']['copies']) == checksum
            resumed_from.append(int(os.path.basename(path).split('.')[0]))
        elif attempt % 2 == 1:
            pytest.fail(f'attempt {attempt}: started training without restoring the copies:\n{log[-2000:]}')
    print(f'\nrandom kills: 20; {len(resumed_from)} restarts got as far as restoring, from states {resumed_from}')
    assert len(resumed_from) >= 10, resumed_from
    assert resumed_from == sorted(resumed_from)  # never went back to an older state than before
    assert not list((tmp_path / 'experiments').glob('run_archived_*'))
    # and after all that, a normal run finishes from the newest state
    last = max(int(p.split('.')[0]) for p in os.listdir(exp / 'training_states') if p.endswith('.state'))
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--auto_resume', '--force_yml',
                                             f'train:total_iter={last + 3}'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (exp / 'training_states' / f'{last + 3}.state').exists()


def _new_log_says(exp, before, text):
    new_logs = sorted(set(exp.glob('train_run_*.log')) - before)
    return bool(new_logs) and text in open(new_logs[-1]).read()


def test_ddp_two_cpu_processes_keep_copies_identical_and_resume(tmp_path, tiny_data):
    write_options(tmp_path / 'train.yml', tiny_data, name='ddp', total_iter=6,
                  extra={'logger.save_checkpoint_freq': 3, 'val.val_freq': 100})
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port',
                str(29500 + os.getpid() % 1000), '-m', 'mclir_basicsr.train', '-opt', 'train.yml', '--launcher',
                'pytorch']
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    res = subprocess.run(torchrun, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'ddp'
    log = open(sorted(exp.glob('train_ddp_*.log'))[-1]).read()
    assert 'World size (gpu number): 2' in log
    assert 'identical on 2 ranks (checked at every refresh)' in log
    write_options(tmp_path / 'train.yml', tiny_data, name='ddp', total_iter=9,
                  extra={'logger.save_checkpoint_freq': 3, 'val.val_freq': 100})
    res = subprocess.run(torchrun + ['--auto_resume'], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = open(sorted(exp.glob('train_ddp_*.log'))[-1]).read()
    assert re.search(r'Restored 2 history copies from \S+6\.state \(checksum [^,]+, identical on 2 ranks\)', log)
    assert (exp / 'training_states' / '9.state').exists()


DDP_MISMATCH = r'''
import os, sys, torch, torch.distributed as dist
import mclir_basicsr
from mclir_basicsr.history import HistoryBank
from mclir_basicsr.options import CopySpec
dist.init_process_group('gloo')
torch.manual_seed(0)
net = torch.nn.Linear(3, 3)
bank = HistoryBank(net, [CopySpec(1, 0.5)])
assert bank.step(1) == [0] and bank.ranks_verified == 2
if dist.get_rank() == 1:
    with torch.no_grad():
        bank.copies[0].module.weight.add_(1e-3)  # a rank-local divergence
try:
    bank.step(2)
except RuntimeError as err:
    open(f'caught_{dist.get_rank()}.txt', 'w').write(str(err))
    sys.exit(0)
sys.exit(3)
'''


def test_ddp_copy_divergence_between_ranks_is_detected(tmp_path):
    script = tmp_path / 'probe.py'
    script.write_text(DDP_MISMATCH)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port',
                          str(30500 + os.getpid() % 1000), str(script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for rank in (0, 1):
        assert (tmp_path / f'caught_{rank}.txt').read_text().startswith('history copies [0] at iter 2 differ across '
                                                                       'ranks (rank 0: ')


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
    assert model.bad_steps == 1
    assert all(torch.equal(v, net_before[k]) for k, v in model.net_g.state_dict().items())
    assert all(torch.equal(v, copy_before[k]) for k, v in model.history.copies[0].module.state_dict().items())
    assert all(torch.equal(v, adam_before[k]) for k, v in model.optimizer_g.state_dict()['state'][0].items())
    model.feed_data(batch(seed=4))
    model.optimize_parameters(3)  # a good step resets the count and trains again
    assert model.bad_steps == 0
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


def test_huge_spn_weight_diverges_and_stops_cleanly_with_checkpoint_intact(tmp_path, tiny_data):
    """The subtract form is unbounded. Train 4 good iterations, then resume with a huge SPN weight: the gradients
    overflow, the steps are skipped, training stops with a clear message, and the last good checkpoint stays
    intact and resumable with a sane weight."""
    extra = {'logger.save_checkpoint_freq': 2, 'val.val_freq': 1000,
             'train.divergence_guard': {'max_consecutive_bad_steps': 2}}
    write_options(tmp_path / 'train.yml', tiny_data, name='boom', total_iter=4, extra=extra)
    assert run_module('mclir_basicsr.train', ['-opt', 'train.yml'], cwd=tmp_path).returncode == 0
    exp = tmp_path / 'experiments' / 'boom'
    good_net = (exp / 'models' / 'net_g_4.pth').read_bytes()
    good_state = (exp / 'training_states' / '4.state').read_bytes()
    write_options(tmp_path / 'train.yml', tiny_data, name='boom', total_iter=20,
                  extra=dict(extra, **{'train.spn_opt.loss_weight': 1.0e+38}))
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--auto_resume'], cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    assert 'mclir-train: training stopped at iter 6: 2 consecutive steps' in res.stderr
    assert 'Last checkpoint: ' in res.stderr and '4.state' in res.stderr and 'Traceback' not in res.stderr
    log = open(sorted(exp.glob('train_boom_*.log'))[-1]).read()
    assert 'iter 5: non-finite loss or gradient' in log and 'step skipped' in log
    assert sorted(os.listdir(exp / 'training_states')) == ['2.state', '4.state']
    assert (exp / 'models' / 'net_g_4.pth').read_bytes() == good_net
    assert (exp / 'training_states' / '4.state').read_bytes() == good_state
    write_options(tmp_path / 'train.yml', tiny_data, name='boom', total_iter=6, extra=extra)
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--auto_resume'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (exp / 'training_states' / '6.state').exists()


def test_guard_option_errors(tmp_path):
    from mclir_basicsr.options import OptionError, check_options
    opt = make_opt(tmp_path, extra_train={'divergence_guard': {'max_bad': 3}})
    with pytest.raises(OptionError, match='unknown key train.divergence_guard.max_bad'):
        check_options(opt)
    opt = make_opt(tmp_path, extra_train={'divergence_guard': {'max_consecutive_bad_steps': 0}})
    with pytest.raises(OptionError, match='max_consecutive_bad_steps must be >= 1'):
        check_options(opt)
