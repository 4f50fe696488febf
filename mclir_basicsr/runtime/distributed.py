"""Distributed training on CPUs (gloo) as well as GPUs (nccl), with BasicSR's ``--launcher pytorch|slurm``."""
import os
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from basicsr.utils import dist_util
from torch.nn.parallel import DataParallel, DistributedDataParallel


def init_dist_any_device(launcher, backend=None, **kwargs):
    """``basicsr.utils.dist_util.init_dist`` that also works without GPUs (gloo) and honours LOCAL_RANK."""
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    use_cuda = torch.cuda.is_available() and torch.cuda.device_count() > 0
    if backend is None:
        backend = 'nccl' if use_cuda else 'gloo'
    if launcher == 'slurm':
        return dist_util._init_dist_slurm(backend, **kwargs)
    if launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher}')
    if use_cuda:
        local_rank = int(os.environ.get('LOCAL_RANK', os.environ.get('RANK', 0)))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, **kwargs)


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
