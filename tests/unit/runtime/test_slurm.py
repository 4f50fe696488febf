"""``--launcher slurm`` without scontrol or GPUs: the master from SLURM's node list, rank and world size from srun's
variables (the whole run: tests/e2e/test_scaling_out.py)."""
import pytest

from mclir_basicsr.runtime import distributed


@pytest.mark.parametrize('node_list, first', [('localhost', 'localhost'), ('node[01-04,07]', 'node01'),
                                              ('gpu-a12,gpu-b3', 'gpu-a12'), ('n[3]', 'n3'),
                                              ('rack1-n[009-012],rack2-n1', 'rack1-n009')])
def test_the_first_host_of_a_slurm_node_list(node_list, first):
    assert distributed.first_host(node_list) == first


def test_slurm_variables_become_torch_s(monkeypatch):
    calls = []
    monkeypatch.setattr(distributed.dist, 'init_process_group', lambda backend: calls.append(backend))
    monkeypatch.setattr(distributed.shutil, 'which', lambda name: None)  # no scontrol
    for key in ('MASTER_ADDR', 'MASTER_PORT', 'SLURM_JOB_NODELIST'):
        monkeypatch.delenv(key, raising=False)
    for key, value in dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1', SLURM_NODELIST='node[07-08]',
                           WORLD_SIZE='', RANK='', LOCAL_RANK='').items():
        monkeypatch.setenv(key, value)
    distributed.init_slurm('gloo', use_cuda=False)
    import os
    assert calls == ['gloo']
    assert {k: os.environ[k] for k in ('MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK')} == {
        'MASTER_ADDR': 'node07', 'MASTER_PORT': '29500', 'WORLD_SIZE': '8', 'RANK': '5', 'LOCAL_RANK': '1'}
