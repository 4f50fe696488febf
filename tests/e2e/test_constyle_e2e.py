"""ConStyle end to end, in subprocesses on the all-in-one demo data (a tiny ConStyleNAFNet with all three auxiliary
losses): kill -9 then --auto_resume equals the uninterrupted run bit for bit across the prompter's freezing (queue,
key encoder, guard); DDP on 2 CPU processes (gloo) keeps the network, the queue and the key encoder identical on both
ranks (the codes of both ranks enter the queue)."""
import os
import os.path as osp

import pytest
import torch
import yaml

from tests.helpers import (ROOT, aio_demo_options, assert_same_file, elastic_kill_and_resume, rank_lines,
                           run_straight_then_kill_and_resume, torchrun)

DEMO = osp.join(ROOT, 'options', 'train', 'all_in_one', 'demo', 'train_ConStyleNAFNet_AIO3_demo.yml')


def _options(path, data, total_iter, constyle_iter):
    opt = aio_demo_options(DEMO, data, 'constyle', total_iter)
    opt['network_g'].update(dim=8, constyle={'queue_size': 16})
    opt['train'].update(ConStyle_iter=constyle_iter)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)


@pytest.mark.e2e
def test_constyle_sigkill_then_auto_resume_equals_uninterrupted_run(tmp_path, aio_data):
    """8 iterations straight == killed at 7, resumed from the state of 4; the prompter freezes after iteration 5."""
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir()
        _options(root / 'train.yml', aio_data, 8, 5)
    assert run_straight_then_kill_and_resume(straight, killed, ['--kill-at-iter', '7'])['iter'] == 4
    run = osp.join('experiments', 'constyle')
    for name in ('models/net_g_8.pth', 'training_states/8.state'):
        assert_same_file(straight / run / name, killed / run / name)
    net = torch.load(straight / run / 'models' / 'net_g_8.pth', weights_only=True)['params']
    assert int(net['prompter.queue_ptr']) == (5 * 3) % 16  # five contrastive steps of 3 codes, then frozen


@pytest.mark.e2e
def test_constyle_elastic_restart_after_a_lost_worker_is_exact(tmp_path, aio_data):
    """torchrun --max-restarts 2, rank 1 SIGKILLed at iteration 7 (after the prompter froze at 5): the group
    restarts from the state of 4 and ends as the uninterrupted two-process run, queue included, bit for bit."""
    report = elastic_kill_and_resume(tmp_path, lambda path: _options(path, aio_data, 8, 5),
                                     ['--kill-at-iter', '7', '--kill-rank', '1'], 'constyle',
                                     ('models/net_g_8.pth', 'training_states/8.state'))
    assert report['iter'] == 4


@pytest.mark.e2e
def test_constyle_ddp_two_cpu_processes_keep_queue_and_networks_identical(tmp_path, aio_data):
    _options(tmp_path / 'train.yml', aio_data, 4, 10)
    port = 29500 + (os.getpid() + 700) % 1000
    res = torchrun(tmp_path, ['--digests', 'run', '--', '-opt', 'train.yml', '--launcher', 'pytorch'], port)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ranks = [rank_lines(tmp_path / 'run', r) for r in (0, 1)]
    assert [line['iter'] for line in ranks[0]] == [1, 2, 3, 4] and ranks[0] == ranks[1]  # net_g incl. the queue
    net = torch.load(tmp_path / 'experiments' / 'constyle' / 'models' / 'net_g_4.pth', weights_only=True)['params']
    assert int(net['prompter.queue_ptr']) == (4 * 2 * 3) % 16  # both ranks' codes entered the queue
