"""Cross-rank helpers: every decision and every history copy must be identical on all ranks."""
import hashlib
import torch
import torch.distributed as dist


def world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank():
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather_objects(obj):
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` without DDP): one all-gather; every rank must
    call it."""
    if world_size() == 1:
        return [obj]
    gathered = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def from_rank_zero(obj):
    """Rank 0's ``obj`` on every rank (``obj`` without DDP): one broadcast; every rank must call it."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_ranks_agree(flag, device):
    """True only if ``flag`` is true on every rank (one all-reduce under DDP; free otherwise)."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def mean_across_ranks(value):
    """The mean of a scalar tensor over all ranks (itself without DDP): one all-reduce."""
    if world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / world_size()


def tensor_digest(tensors):
    """SHA-256 of the exact bytes, dtypes and shapes of ``tensors`` (in order): equal digests mean equal contents,
    which sums of norms cannot tell (a permutation or a sign flip keeps them)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach()
        h.update(f'{t.dtype}{tuple(t.shape)}'.encode())
        h.update(t.cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()


def check_same_on_all_ranks(digests, what):
    """Raise RuntimeError if the list of ``bytes`` ``digests`` differs between ranks. Returns the world size."""
    n = world_size()
    if n == 1:
        return 1
    gathered = [None] * n
    dist.all_gather_object(gathered, [d.hex() for d in digests])
    bad = [r for r, g in enumerate(gathered) if g != gathered[0]]
    if bad:
        raise RuntimeError(f'{what} differ across ranks (rank 0: {gathered[0]}, rank {bad[0]}: {gathered[bad[0]]}). '
                           f'The copies must be refreshed identically on every rank.')
    return n
