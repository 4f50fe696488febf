"""Cross-rank helpers: every decision and every history copy must be identical on all ranks."""
import torch
import torch.distributed as dist


def world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_ranks_agree(flag, device):
    """True only if ``flag`` is true on every rank (one all-reduce under DDP; free otherwise)."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def check_same_on_all_ranks(values, what):
    """Raise RuntimeError if the 1-D tensor ``values`` differs between ranks. Returns the world size."""
    n = world_size()
    if n == 1:
        return 1
    gathered = [torch.empty_like(values) for _ in range(n)]
    dist.all_gather(gathered, values)
    bad = [r for r, g in enumerate(gathered) if not torch.equal(g, gathered[0])]
    if bad:
        raise RuntimeError(f'{what} differ across ranks (rank 0: {gathered[0].tolist()}, rank {bad[0]}: '
                           f'{gathered[bad[0]].tolist()}). The copies must be refreshed identically on every rank.')
    return n
