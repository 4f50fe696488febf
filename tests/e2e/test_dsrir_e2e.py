"""DSRIR end to end, in subprocesses on the all-in-one demo data (tiny DSRIR, its three losses, progressive patches):
kill -9 then --auto_resume equals the uninterrupted run bit for bit; DDP on 2 CPU processes (gloo) with SPN on top
keeps the network and the history copies identical on both ranks."""
import os
import os.path as osp

import pytest
import torch
import yaml

from tests.helpers import (ROOT, aio_demo_options, assert_same_file, elastic_kill_and_resume, rank_lines,
                           run_straight_then_kill_and_resume, torchrun)

DEMO = osp.join(ROOT, 'options', 'train', 'all_in_one', 'demo', 'train_DSRIR_AIO3_demo.yml')
PROGRESSIVE = {'milestones': [3], 'patch_sizes': [16, 32], 'batch_sizes': [3, 2]}


def _options(path, data, total_iter, spn=False):
    opt = aio_demo_options(DEMO, data, 'dsrir', total_iter)
    opt['network_g'].update(widths=[8, 8, 8], width_steps=[8, 8], groups=1)
    opt['train'].update(progressive=PROGRESSIVE)
    if spn:
        opt['model_type'] = 'MCLIRModel'
        opt['base_model_type'] = 'DSRIRModel'
        opt['train'].update(history={'copies': [{'period': 2, 'decay': 0.5}]},
                            spn_opt={'type': 'SPNLoss', 'loss_weight': 0.01, 'vgg_weights': 'random'})
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)


@pytest.mark.e2e
def test_dsrir_sigkill_then_auto_resume_equals_uninterrupted_run(tmp_path, aio_data):
    """8 iterations straight == killed at 6, resumed from the state of 4 (after the progressive stage change at 4)."""
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir()
        _options(root / 'train.yml', aio_data, 8)
    assert run_straight_then_kill_and_resume(straight, killed, ['--kill-at-iter', '6'])['iter'] == 4
    run = osp.join('experiments', 'dsrir')
    for name in ('models/net_g_8.pth', 'training_states/8.state'):
        assert_same_file(straight / run / name, killed / run / name)
    state = torch.load(straight / run / 'training_states' / '8.state', weights_only=True)
    assert state['dsrir']['progressive']['schedule'] == [[3], [16, 32], [3, 2]]


@pytest.mark.e2e
def test_dsrir_elastic_restart_after_a_lost_worker_is_exact(tmp_path, aio_data):
    """torchrun --max-restarts 2, rank 1 SIGKILLed at iteration 6, across the progressive patch-size change: the
    group restarts from the state of 4 and ends as the uninterrupted two-process run, bit for bit."""
    report = elastic_kill_and_resume(tmp_path, lambda path: _options(path, aio_data, 8),
                                     ['--kill-at-iter', '6', '--kill-rank', '1'], 'dsrir',
                                     ('models/net_g_8.pth', 'training_states/8.state'))
    assert report['iter'] == 4


@pytest.mark.e2e
def test_dsrir_with_spn_ddp_two_cpu_processes_stay_identical(tmp_path, aio_data):
    _options(tmp_path / 'train.yml', aio_data, 4, spn=True)
    port = 29500 + (os.getpid() + 500) % 1000
    res = torchrun(tmp_path, ['--digests', 'run', '--', '-opt', 'train.yml', '--launcher', 'pytorch'], port)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ranks = [rank_lines(tmp_path / 'run', r) for r in (0, 1)]
    assert [line['iter'] for line in ranks[0]] == [1, 2, 3, 4] and ranks[0] == ranks[1]
    assert len({line['net_g'] for line in ranks[0]}) == 4 and ranks[0][-1]['copies']
