"""Distributed training on CPUs (gloo) as well as GPUs (nccl), with BasicSR's ``--launcher pytorch|slurm``."""
import os
import re
import shutil
import subprocess
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from datetime import timedelta
from torch.nn.parallel import DataParallel, DistributedDataParallel


def init_dist_any_device(launcher, backend=None, **kwargs):
    """``basicsr.utils.dist_util.init_dist`` that also works without GPUs (gloo) and honours LOCAL_RANK."""
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    use_cuda = torch.cuda.is_available() and torch.cuda.device_count() > 0
    if backend is None or (backend == 'nccl' and not use_cuda):  # BasicSR's files name nccl (dist_params)
        backend = 'nccl' if use_cuda else 'gloo'
    if launcher == 'slurm':
        return init_slurm(backend, use_cuda, **kwargs)
    if launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher}')
    if use_cuda:
        local_rank = int(os.environ.get('LOCAL_RANK', os.environ.get('RANK', 0)))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, **kwargs, **attempt_store())


def attempt_store():
    """Under torchrun (its agent's store), a store of this attempt's own: the agent keeps one store across
    ``--max-restarts`` and torch adds no per-attempt prefix, so a restarted group could read the dead group's
    addresses (gloo then waits forever, or is refused). ``{}`` elsewhere."""
    if os.environ.get('TORCHELASTIC_USE_AGENT_STORE') != str(True) or 'TORCHELASTIC_RESTART_COUNT' not in os.environ:
        return {}
    world = int(os.environ['WORLD_SIZE'])
    agent = dist.TCPStore(os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), world, is_master=False,
                          timeout=timedelta(minutes=30))
    attempt = os.environ['TORCHELASTIC_RESTART_COUNT']
    return {'store': dist.PrefixStore(f'mclir_basicsr/attempt_{attempt}', agent), 'rank': int(os.environ['RANK']),
            'world_size': world}


def first_host(node_list):
    """The first host of a SLURM node list (``node[01-04,07],gpu3`` -> ``node01``), as ``scontrol show hostnames``
    would give it (used when ``scontrol`` is not on the PATH)."""
    first = re.match(r'([^,\[]*)(?:\[([^\]]*)\])?', node_list.strip())
    prefix, ranges = first.group(1), first.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(',')[0].split('-')[0]


def init_slurm(backend, use_cuda, port=None):
    """BasicSR's ``--launcher slurm`` without its CUDA-only steps: rank and world size from ``SLURM_PROCID`` /
    ``SLURM_NTASKS``, the GPU from ``SLURM_LOCALID``, the master from ``MASTER_ADDR`` or the first host of the job's
    node list (``scontrol`` when present), the port from ``port``, ``MASTER_PORT`` or 29500; gloo without GPUs."""
    proc_id, ntasks = int(os.environ['SLURM_PROCID']), int(os.environ['SLURM_NTASKS'])
    local_id = int(os.environ.get('SLURM_LOCALID', 0))
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ.get('SLURM_JOB_NODELIST') or os.environ['SLURM_NODELIST']
        if shutil.which('scontrol'):
            hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True, text=True)
            os.environ['MASTER_ADDR'] = hosts.stdout.split()[0] if hosts.stdout.split() else first_host(node_list)
        else:
            os.environ['MASTER_ADDR'] = first_host(node_list)
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ.update(WORLD_SIZE=str(ntasks), RANK=str(proc_id), LOCAL_RANK=str(local_id))
    if use_cuda:
        torch.cuda.set_device(local_id % torch.cuda.device_count())
    dist.init_process_group(backend=backend)


def model_to_device(self, net):
    """``BaseModel.model_to_device`` without the CUDA-only ``device_ids`` under DDP on CPU."""
    net = net.to(self.device)
    if self.opt['dist']:
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(net, device_ids=device_ids,
                                      find_unused_parameters=self.opt.get('find_unused_parameters', False))
    elif self.opt['num_gpu'] > 1:
        net = DataParallel(net)
    return net


def finish_distributed_after(train_pipeline):
    """Wrap ``train_pipeline``: under DDP, wait for rank 0's final save and validation, then tear the process group
    down. Without it a rank that reaches interpreter exit first while gloo's threads still run can abort
    ("terminate called without an active exception", SIGABRT), failing the whole torchrun job."""

    def train_then_finish(root_path):
        result = train_pipeline(root_path)
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
        return result

    return train_then_finish
