"""Reliability: exact resume after SIGKILL, crash-safe checkpoints under kills, DDP, divergence with the checkpoint
intact.

Faults are injected from the test side: ``tests/instrumented.py`` monkeypatches a kill point (an iteration, a file
write, a validation, start-up) and then runs ``mclir-train`` in a subprocess; it also reports what a resume
restored and the per-rank digests of every tensor, so the tests compare values, not log lines.
"""
import os
import random
import signal
import subprocess
import sys

import pytest

from mclir_basicsr.training.ranks import tensor_digest
from tests.helpers import (ROOT, equal_files, equal_states, instrumented, load_state, rank_lines, read_report,
                           run_module, run_straight_then_kill_and_resume, torchrun, write_options)


def _copy_digests(state_path):
    """Per-copy SHA-256 of the history copies saved in a training state (as the model computes them)."""
    history = load_state(state_path)['mclir']['history']
    n = len({k.split('.')[1] for k in history})
    return [tensor_digest(v for k, v in history.items() if k.startswith(f'copies.{i}.')).hex() for i in range(n)]


def _straight_and_killed(tmp_path, tiny_data, kill_args, total_iter, extra):
    """The same options trained straight, and killed (``kill_args``) then resumed with --auto_resume."""
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir()
        write_options(root / 'train.yml', tiny_data, name='run', total_iter=total_iter, extra=extra)
    report = run_straight_then_kill_and_resume(straight, killed, kill_args)
    return straight / 'experiments' / 'run', killed / 'experiments' / 'run', report


@pytest.mark.e2e
def test_sigkill_then_auto_resume_equals_uninterrupted_run(tmp_path, tiny_data):
    """16 iterations straight == killed (SIGKILL) at iteration 7 then --auto_resume from the state of 4.

    tiny_data gives 12 batches per epoch: the resume lands mid-epoch and the run then crosses an epoch boundary.
    With adaptive refresh, the automatic SPN weight and the uncertainty loss on, their state is restored too.
    """
    extra = {'logger.save_checkpoint_freq': 4, 'val.val_freq': 100,  # and every option that carries state:
             'train.history.adaptive': {'threshold': 0.05}, 'train.spn_opt.loss_weight': 'auto',
             'train.uncertainty_opt': {'type': 'HistoryUncertaintyLoss'}}
    straight, killed, report = _straight_and_killed(tmp_path, tiny_data, ['--kill-at-iter', '7'], 16, extra)
    assert report['iter'] == 4 and report['state'].endswith('4.state')
    assert report['digests'] == _copy_digests(report['state'])
    for it in (8, 12, 16):
        equal_files(straight / 'models' / f'net_g_{it}.pth', killed / 'models' / f'net_g_{it}.pth')
        equal_states(straight / 'training_states' / f'{it}.state', killed / 'training_states' / f'{it}.state')


@pytest.mark.e2e
def test_sigkill_resume_is_exact_with_fp16_amp_and_compile(tmp_path, tiny_data):
    """train.amp fp16 (GradScaler) + train.compile: 8 iterations straight == killed at 6, auto-resumed from 4;
    the scaler's state travels in the training state."""
    extra = {'logger.save_checkpoint_freq': 4, 'val.val_freq': 100,
             'train.amp': {'enabled': True, 'dtype': 'fp16', 'init_scale': 2.0 ** 24},
             'train.compile': {'enabled': True, 'backend': 'eager'}}
    straight, killed, report = _straight_and_killed(tmp_path, tiny_data, ['--kill-at-iter', '6'], 8, extra)
    assert report['iter'] == 4
    equal_files(straight / 'models' / 'net_g_8.pth', killed / 'models' / 'net_g_8.pth')
    equal_states(straight / 'training_states' / '8.state', killed / 'training_states' / '8.state')
    scalers = [load_state(exp / 'training_states' / '8.state')['mclir']['amp']['scaler'] for exp in (straight, killed)]
    assert scalers[0] == scalers[1] and scalers[0]['scale'] <= 2.0 ** 24


@pytest.mark.e2e
def test_kill_while_writing_a_state_leaves_previous_state_usable(tmp_path, tiny_data):
    write_options(tmp_path / 'train.yml', tiny_data, name='run', total_iter=8,
                  extra={'logger.save_checkpoint_freq': 4, 'val.val_freq': 100})
    res = instrumented(['--kill-in-save', '8.state', '--', '-opt', 'train.yml'], cwd=tmp_path)
    assert res.returncode == -signal.SIGKILL
    states = tmp_path / 'experiments' / 'run' / 'training_states'
    assert sorted(p for p in os.listdir(states) if not p.startswith('.')) == ['4.state']  # torn file: temp name
    torn = [p for p in os.listdir(states) if p.startswith('.8.state.tmp-')]
    assert len(torn) == 1 and (states / torn[0]).stat().st_size > 0
    res = instrumented(['--report', 'resume', '--', '-opt', 'train.yml', '--auto_resume'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert read_report(tmp_path / 'resume')['iter'] == 4
    assert (states / '8.state').exists()
    assert not (states / torn[0]).exists()  # the dead run's torn write is gone, and the resume said so
    assert 'removed 1 temporary file(s)' in res.stdout and torn[0] in res.stdout
    assert not [p for folder in (states, states.parent / 'models') for p in os.listdir(folder) if '.tmp-' in p]


def _kill_point(rng, last, freq=3):
    """A random kill point after the newest state ``last``: an iteration, a checkpoint write, a validation, or
    start-up (options parsed, resume state read)."""
    kind = rng.choice(['iter', 'state', 'net', 'test', 'startup'])
    checkpoint = (last // freq + rng.randint(1, 2)) * freq
    return kind, {'iter': ['--kill-at-iter', str(last + rng.randint(1, 2 * freq))],
                  'state': ['--kill-in-save', f'{checkpoint}.state'],
                  'net': ['--kill-in-save', f'net_g_{checkpoint}.pth'],
                  'test': ['--kill-in-test', str(rng.randint(1, 2))],
                  'startup': ['--kill-at-startup']}[kind]


@pytest.mark.e2e
def test_random_kills_never_break_auto_resume(tmp_path, tiny_data):
    """SIGKILL at 20 random points chosen by iteration and by write (steps, checkpoint writes, validation, start-up);
    each restart with --auto_resume resumes the newest complete state, with the copies exactly as saved."""
    rng = random.Random(1234)
    write_options(tmp_path / 'train.yml', tiny_data, name='run', total_iter=100000,
                  extra={'logger.save_checkpoint_freq': 3, 'val.val_freq': 7, 'logger.print_freq': 50})
    exp = tmp_path / 'experiments' / 'run'
    # a first checkpoint, so that every restart below has something to resume (BasicSR archives an experiment
    # folder that has no state yet when a new run starts in it)
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--force_yml', 'train:total_iter=3'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    resumed_from, kinds = [], []
    for attempt in range(20):
        last = max(int(p.split('.')[0]) for p in os.listdir(exp / 'training_states') if p.endswith('.state'))
        kind, point = _kill_point(rng, last)
        kinds.append(kind)
        report = tmp_path / f'resume{attempt}'
        res = instrumented(point + ['--report', str(report), '--', '-opt', 'train.yml', '--auto_resume'],
                           cwd=tmp_path)
        assert res.returncode == -signal.SIGKILL, (attempt, point, res.stderr[-3000:])
        if kind != 'startup':  # killed before the resume was reported
            got = read_report(report)
            assert got['iter'] == last, (attempt, point, got)  # the newest complete state, never an older one
            assert got['digests'] == _copy_digests(got['state'])
            resumed_from.append(got['iter'])
    print(f'\nrandom kills: {len(kinds)} at {sorted(set(kinds))}; resumed from {resumed_from}')
    assert len(set(kinds)) == 5 and len(resumed_from) >= 10
    assert not list((tmp_path / 'experiments').glob('run_archived_*'))
    # and after all that, a normal run finishes from the newest state
    last = max(int(p.split('.')[0]) for p in os.listdir(exp / 'training_states') if p.endswith('.state'))
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--auto_resume', '--force_yml',
                                             f'train:total_iter={last + 3}'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (exp / 'training_states' / f'{last + 3}.state').exists()


@pytest.mark.e2e
def test_ddp_two_cpu_processes_stay_identical_and_resume(tmp_path, tiny_data):
    """torchrun, 2 CPU processes (gloo): after every step the network and every copy are bit-identical on both ranks
    (SHA-256 of every tensor); a resume restores the same copies on both ranks and they stay identical."""
    write_options(tmp_path / 'train.yml', tiny_data, name='ddp', total_iter=6,
                  extra={'logger.save_checkpoint_freq': 3, 'val.val_freq': 100})
    port = 29500 + os.getpid() % 1000
    res = torchrun(tmp_path, ['--digests', 'run1', '--', '-opt', 'train.yml', '--launcher', 'pytorch'], port)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ranks = [rank_lines(tmp_path / 'run1', r) for r in (0, 1)]
    assert [line['iter'] for line in ranks[0]] == list(range(1, 7)) and ranks[0] == ranks[1]
    exp = tmp_path / 'experiments' / 'ddp'
    assert ranks[0][-1]['copies'] == _copy_digests(exp / 'training_states' / '6.state')
    write_options(tmp_path / 'train.yml', tiny_data, name='ddp', total_iter=9,
                  extra={'logger.save_checkpoint_freq': 3, 'val.val_freq': 100})
    res = torchrun(tmp_path, ['--digests', 'run2', '--report', 'resume', '--', '-opt', 'train.yml', '--launcher',
                              'pytorch', '--auto_resume'], port + 1)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    reports = [read_report(tmp_path / 'resume', r) for r in (0, 1)]
    assert reports[0] == reports[1] and reports[0]['iter'] == 6
    assert reports[0]['digests'] == ranks[0][-1]['copies']
    after = [rank_lines(tmp_path / 'run2', r) for r in (0, 1)]
    assert [line['iter'] for line in after[0]] == [7, 8, 9] and after[0] == after[1]
    assert (exp / 'training_states' / '9.state').exists()


DDP_MISMATCH = r'''
import sys, torch, torch.distributed as dist
import mclir_basicsr
from mclir_basicsr.methods.mclir.history import HistoryBank
from mclir_basicsr.methods.mclir.options import CopySpec
dist.init_process_group('gloo')
torch.manual_seed(0)
net = torch.nn.Linear(3, 3)
bank = HistoryBank(net, [CopySpec(1, 0.5)])
assert bank.step(1) == [0] and bank.ranks_verified == 2
if dist.get_rank() == 1:  # a rank-local permutation of the output units: every norm, so every sum, is unchanged
    with torch.no_grad():
        for t in (bank.copies[0].module.weight, bank.copies[0].module.bias):
            t.copy_(t.flip(0))
code = 3
try:
    bank.verify_across_ranks('history copies after a permutation')
except RuntimeError as err:
    open(f'caught_{dist.get_rank()}.txt', 'w').write(str(err))
    code = 0
dist.barrier()
dist.destroy_process_group()  # gloo's threads end before the process does (else: "terminate called ..." at exit)
sys.exit(code)
'''


@pytest.mark.e2e
def test_ddp_copy_divergence_between_ranks_is_detected(tmp_path):
    script = tmp_path / 'probe.py'
    script.write_text(DDP_MISMATCH)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port',
                          str(30500 + os.getpid() % 1000), str(script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for rank in (0, 1):
        caught = (tmp_path / f'caught_{rank}.txt').read_text()
        assert caught.startswith('history copies after a permutation differ across ranks (rank 0: ')


@pytest.mark.e2e
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
    assert sorted(os.listdir(exp / 'training_states')) == ['2.state', '4.state']
    assert (exp / 'models' / 'net_g_4.pth').read_bytes() == good_net
    assert (exp / 'training_states' / '4.state').read_bytes() == good_state
    write_options(tmp_path / 'train.yml', tiny_data, name='boom', total_iter=6, extra=extra)
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml', '--auto_resume'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (exp / 'training_states' / '6.state').exists()
