"""Beyond one machine, simulated on this one with loopback addresses only: two torchrun "nodes" (c10d rendezvous)
equal one node with the same world size; SLURM's launcher on CPU (gloo) with SLURM's variables; torchrun's elastic
restarts after a worker is SIGKILLed (mid-run, and while rank 0 writes a checkpoint) end bit-identical to the
uninterrupted run. Every process is bounded in time and reaped. The other families' elastic restarts are in their
own e2e files (DCPT, DSRIR, ConStyle)."""
import os
import subprocess
import sys

import pytest
import yaml

from tests.helpers import (ROOT, assert_same_file, elastic_kill_and_resume, free_port, kill_tree, rank_lines,
                           torchrun, write_options)

pytestmark = pytest.mark.e2e

ITERS = 6


def _options(folder, tiny_data, total_iter=ITERS):
    folder.mkdir(exist_ok=True)
    write_options(folder / 'train.yml', tiny_data, name='scale', total_iter=total_iter,
                  extra={'logger.save_checkpoint_freq': 2, 'val.val_freq': 100})


def _bounded(processes, timeout=600):
    """Wait for every process (killing all of them and their workers if one overruns); return (code, output)s."""
    results = []
    try:
        for proc in processes:
            out, _ = proc.communicate(timeout=timeout)
            results.append((proc.returncode, out))
    finally:
        for proc in processes:
            if proc.poll() is None:
                kill_tree(proc)
    return results


def _nodes(folder, nodes, per_node):
    """``nodes`` torchrun agents, ``per_node`` workers each, meeting at a c10d rendezvous on 127.0.0.1."""
    endpoint = f'127.0.0.1:{free_port()}'
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nnodes={nodes}', f'--nproc-per-node={per_node}',
           '--rdzv-backend=c10d', f'--rdzv-endpoint={endpoint}', '--rdzv-id=scale', '-m', 'tests.instrumented',
           '--digests', 'run', '--', '-opt', 'train.yml', '--launcher', 'pytorch']
    agents = [subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(nodes)]
    for code, out in _bounded(agents):
        assert code == 0, out[-3000:]


def _one_node(folder, processes):
    res = torchrun(folder, ['--digests', 'run', '--', '-opt', 'train.yml', '--launcher', 'pytorch'], free_port(),
                   (f'--nproc_per_node={processes}', ))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def _same_runs(a, b, world):
    """Both runs: every rank's digests equal after every step, across ranks and across the two runs; the final
    weights and state bit for bit; one experiment folder."""
    lines = [rank_lines(a / 'run', r) for r in range(world)]
    assert [line['iter'] for line in lines[0]] == list(range(1, ITERS + 1))
    assert all(lines[r] == lines[0] for r in range(world))
    assert all(rank_lines(b / 'run', r) == lines[0] for r in range(world))
    for root in (a, b):
        assert sorted(os.listdir(root / 'experiments')) == ['scale']  # one folder, never archived
    for name in (f'models/net_g_{ITERS}.pth', f'training_states/{ITERS}.state'):
        assert_same_file(a / 'experiments' / 'scale' / name, b / 'experiments' / 'scale' / name)


@pytest.mark.parametrize('nodes, per_node', [(2, 1), (2, 2)])
def test_several_nodes_equal_one_node_with_the_same_world_size(nodes, per_node, tmp_path, tiny_data):
    one, several = tmp_path / 'one_node', tmp_path / 'several_nodes'
    for folder in (one, several):
        _options(folder, tiny_data)
    _one_node(one, nodes * per_node)
    _nodes(several, nodes, per_node)
    _same_runs(one, several, nodes * per_node)


def test_slurm_launcher_on_cpu_equals_torchrun(tmp_path, tiny_data):
    """Two tasks started as srun starts them (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODELIST; no
    scontrol here): gloo, and the same run as torchrun's with two processes."""
    reference, slurm = tmp_path / 'torchrun', tmp_path / 'slurm'
    for folder in (reference, slurm):
        _options(folder, tiny_data)
    _one_node(reference, 2)
    port = free_port()
    with open(slurm / 'train.yml') as f:
        opt = yaml.safe_load(f)
    assert opt['dist_params'] == {'backend': 'nccl', 'port': 29500}  # BasicSR's template: nccl falls back to gloo
    opt['dist_params']['port'] = port  # BasicSR's slurm launcher: dist_params.port wins over MASTER_PORT
    with open(slurm / 'train.yml', 'w') as f:
        yaml.safe_dump(opt, f)
    tasks = []
    for proc_id in range(2):
        env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', SLURM_PROCID=str(proc_id), SLURM_NTASKS='2',
                   SLURM_LOCALID=str(proc_id), SLURM_NODELIST='localhost', SLURM_JOB_ID='42')
        env.pop('MASTER_ADDR', None)
        tasks.append(subprocess.Popen([sys.executable, '-m', 'tests.instrumented', '--digests', 'run', '--', '-opt',
                                       'train.yml', '--launcher', 'slurm'], cwd=slurm, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for code, out in _bounded(tasks):
        assert code == 0, out[-3000:]
    _same_runs(reference, slurm, 2)


@pytest.mark.parametrize('kill', [['--kill-at-iter', '5', '--kill-rank', '1'],
                                  ['--kill-in-save', '4.state', '--kill-rank', '0']], ids=['mid_run', 'in_checkpoint'])
def test_elastic_restart_after_a_lost_worker_is_exact(kill, tmp_path, tiny_data):
    """MCLIR (SPN, two history copies): a worker SIGKILLed (rank 1 at iteration 5; rank 0 half-way through writing
    4.state); torchrun restarts the group, which resumes from the newest complete state and ends as the uninterrupted
    run, bit for bit."""
    report = elastic_kill_and_resume(tmp_path, lambda path: _options(path.parent, tiny_data), kill, 'scale',
                                     (f'models/net_g_{ITERS}.pth', f'training_states/{ITERS}.state'))
    assert report['iter'] == (4 if kill[0] == '--kill-at-iter' else 2)
