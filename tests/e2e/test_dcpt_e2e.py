"""DCPT end to end, in subprocesses on the all-in-one demo data: kill -9 then --auto_resume equals the uninterrupted
run bit for bit (both networks, both optimizers, both schedulers); DDP on 2 CPU processes keeps net_g and net_dc
identical on both ranks; ``mclir-probe-degradation`` reports k-NN accuracy and refuses bad input clearly."""
import json
import os
import os.path as osp

import pytest
import torch

from tests.helpers import (assert_same_file, dcpt_demo_options, elastic_kill_and_resume, rank_lines, run_module,
                           run_straight_then_kill_and_resume, torchrun)


@pytest.mark.e2e
def test_dcpt_sigkill_then_auto_resume_equals_uninterrupted_run(tmp_path, aio_data):
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir()
        dcpt_demo_options(root / 'train.yml', aio_data, 8)
    assert run_straight_then_kill_and_resume(straight, killed, ['--kill-at-iter', '6'])['iter'] == 4
    run = osp.join('experiments', 'dcpt')
    for name in ('models/net_g_8.pth', 'models/net_dc_8.pth', 'training_states/8.state'):
        assert_same_file(straight / run / name, killed / run / name)
    state = torch.load(straight / run / 'training_states' / '8.state', weights_only=True)
    assert len(state['optimizers']) == 2 and len(state['schedulers']) == 2


@pytest.mark.e2e
def test_dcpt_ddp_two_cpu_processes_stay_identical(tmp_path, aio_data):
    """torchrun, 2 CPU processes (gloo), with validation on rank 0: after every step net_g and net_dc are
    bit-identical on both ranks (two forward passes of the DDP-wrapped net_g per backward)."""
    dcpt_demo_options(tmp_path / 'train.yml', aio_data, 4, with_val=True)
    port = 29500 + (os.getpid() + 300) % 1000
    res = torchrun(tmp_path, ['--digests', 'run', '--', '-opt', 'train.yml', '--launcher', 'pytorch'], port)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ranks = [rank_lines(tmp_path / 'run', r) for r in (0, 1)]
    assert [line['iter'] for line in ranks[0]] == [1, 2, 3, 4] and ranks[0] == ranks[1]
    assert len({line['net_dc'] for line in ranks[0]}) == 4  # the classifier trains
    log = next((tmp_path / 'experiments' / 'dcpt').glob('train_*.log')).read_text()
    assert 'Degradation classification on derain' in log and '# accuracy:' in log


@pytest.mark.e2e
def test_dcpt_elastic_restart_after_a_lost_worker_is_exact(tmp_path, aio_data):
    """torchrun --max-restarts 2, rank 1 SIGKILLed at iteration 7: the group restarts from the state of 4 and ends
    as the uninterrupted two-process run (net_g, net_dc, state), bit for bit."""
    report = elastic_kill_and_resume(tmp_path, lambda path: dcpt_demo_options(path, aio_data, 8),
                                     ['--kill-at-iter', '7', '--kill-rank', '1'], 'dcpt',
                                     ('models/net_g_8.pth', 'models/net_dc_8.pth', 'training_states/8.state'))
    assert report['iter'] == 4


@pytest.mark.e2e
def test_probe_reports_knn_accuracy_and_refuses_bad_input(tmp_path, aio_data):
    dcpt_demo_options(tmp_path / 'train.yml', aio_data, 4)
    res = run_module('mclir_basicsr.cli.probe', ['-opt', 'train.yml', '--crop', '64', '--splits', '2', '--json',
                                                 'probe.json'], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / 'probe.json').read_text())
    assert report['classes'] == ['denoise', 'derain', 'dehaze'] and report['samples'] == 120
    assert report['hooked'] == ['decoders.0', 'decoders.1', 'decoders.2'] and report['chance'] == pytest.approx(100 / 3)
    assert report['accuracy']['mean'] > report['chance']  # random features already tell these apart
    assert 'overall accuracy' in res.stdout
    res = run_module('mclir_basicsr.cli.probe', ['-opt', 'train.yml', '--dataset', 'val'], cwd=tmp_path)
    assert res.returncode == 1 and 'datasets.val of train.yml must be an AllInOneDataset block' in res.stderr
    res = run_module('mclir_basicsr.cli.probe', ['-opt', 'train.yml', '--checkpoint', 'missing.pth'], cwd=tmp_path)
    assert res.returncode == 1 and '--checkpoint missing.pth: no such file' in res.stderr
