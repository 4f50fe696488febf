"""ConStyle: a contrastive style prompter (Fan et al., IRConStyle / ConStyle), registered as ``ConStyle``.

A MoCo-style pair of encoders. The query encoder maps the degraded image to two latent codes ``q = [q1, q2]``
(128-d each) and features at 1/2, 1/4 and 1/8 resolution (32, 64, 128 channels), which a restorer uses as prompts
(:class:`~mclir_basicsr.archs.constyle_nafnet_arch.ConStyleNAFNet`). For training, a momentum key encoder encodes the
clean image, and a queue of past codes gives the negatives of an InfoNCE loss; the queue's oldest slices are the
"style negatives" of the authors' Gram-matrix loss.

Decisions (the authors' code differs where noted):

* the queue stores the **queries** ``q2`` by default, as the authors' code does (MoCo stores the keys);
  ``enqueue: key`` stores the momentum keys instead;
* under DDP the codes of every rank are gathered before they enter the queue (as MoCo does), so the queue is the same
  on every rank; any queue size works (the write position wraps, no divisibility needed); the BatchNorms' running
  statistics are averaged over the ranks after each contrastive pass (plain DDP would leave each rank its own);
* no ``.cuda()``: the queue, its write position and the key encoder are buffers and a module, saved and loaded with
  the network.
"""
import torch
import torch.distributed as dist
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

ENQUEUE = ('query', 'key')


def _conv(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.LeakyReLU(0.1, True))


class StyleEncoder(nn.Module):
    """Four strided conv stages (3 -> 32 -> 64 -> 128 -> 256 channels, each ending at half the size), global
    pooling, two heads (Linear + BatchNorm1d + GELU). ``forward(x) -> ([q1, q2], [f_1/2, f_1/4, f_1/8])``."""

    def __init__(self, dim=128):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(_conv(3, 16), _conv(16, 16), _conv(16, 32, 2)),
            nn.Sequential(_conv(32, 32), _conv(32, 64, 2)),
            nn.Sequential(_conv(64, 128), _conv(128, 128, 2)),
            nn.Sequential(_conv(128, 256), _conv(256, 256, 2)),
        ])
        self.head1 = nn.Sequential(nn.Linear(256, dim), nn.BatchNorm1d(dim), nn.GELU())
        self.head2 = nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.GELU())

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        q1 = self.head1(x.mean(dim=(2, 3)))
        return [q1, self.head2(q1)], feats[:3]


@ARCH_REGISTRY.register()
class ConStyle(nn.Module):
    """The prompter (see the module doc).

    Args:
        dim (int): code size. Default: 128.
        queue_size (int): negatives in the queue (the authors' ``K``). Default: 65760.
        momentum (float): key-encoder momentum (``m``). Default: 0.999.
        temperature (float): InfoNCE temperature (``T``). Default: 0.07.
        momentum_encoder (bool): build the key encoder and the queue (training); false for a prompter that only
            encodes (inference, or a frozen pre-trained prompter). Default: true.
        enqueue (str): ``query`` (the authors') or ``key`` (MoCo's). Default: ``query``.
    """

    def __init__(self, dim=128, queue_size=65760, momentum=0.999, temperature=0.07, momentum_encoder=True,
                 enqueue='query'):
        super().__init__()
        if enqueue not in ENQUEUE:
            raise ValueError(f'ConStyle: enqueue must be one of {", ".join(ENQUEUE)}, got {enqueue!r}.')
        if not 0 <= momentum < 1 or temperature <= 0 or queue_size < 1:
            raise ValueError(f'ConStyle: need 0 <= momentum < 1, temperature > 0, queue_size >= 1; got {momentum}, '
                             f'{temperature}, {queue_size}.')
        self.momentum, self.temperature, self.enqueue = momentum, temperature, enqueue
        self.encoder_q = StyleEncoder(dim)
        self.encoder_k = None
        if momentum_encoder:
            self.encoder_k = StyleEncoder(dim)
            self.encoder_k.load_state_dict(self.encoder_q.state_dict())
            self.encoder_k.requires_grad_(False)
            self.register_buffer('queue', torch.randn(queue_size, dim))
            self.register_buffer('queue_ptr', torch.zeros((), dtype=torch.long))

    def forward(self, lq):
        """``([q1, q2], features)`` of the query encoder."""
        return self.encoder_q(lq)

    def contrast(self, lq, gt):
        """One training pass: the query codes and features of ``lq``, the InfoNCE logits against the momentum key of
        ``gt`` (positive first) and the queue, the key, and the two queue slices that are about to be overwritten
        (the authors' style negatives: ``[next oldest, oldest]``). Updates the key encoder and the queue."""
        if self.encoder_k is None:
            raise RuntimeError('ConStyle(momentum_encoder=False) has no key encoder and no queue: it cannot train '
                               'contrastively.')
        q, feats = self.encoder_q(lq)
        with torch.no_grad():
            torch._foreach_lerp_(list(self.encoder_k.parameters()), list(self.encoder_q.parameters()),
                                 1 - self.momentum)
            key = self.encoder_k(gt)[0][1]
            queue = self.queue.clone()
        logits = torch.cat([(q[1] * key).sum(1, keepdim=True), q[1] @ queue.t()], dim=1) / self.temperature
        batch = lq.shape[0]
        older = [self._rows(batch, batch), self._rows(0, batch)]
        self._push((q[1] if self.enqueue == 'query' else key).detach())
        self._average_batch_statistics()
        return q, feats, logits, key, older

    def _rows(self, offset, n):
        index = (self.queue_ptr + offset + torch.arange(n, device=self.queue.device)) % self.queue.shape[0]
        return self.queue[index].clone()

    @torch.no_grad()
    def _average_batch_statistics(self):
        """Under DDP each rank's BatchNorms saw their own batch: average the running statistics, so every rank
        (and the checkpoint) holds the same prompter."""
        if not _distributed():
            return
        stats = [t for m in self.modules() if isinstance(m, nn.BatchNorm1d) for t in (m.running_mean, m.running_var)]
        flat = torch.cat([t.flatten() for t in stats])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        for t, avg in zip(stats, flat.split([t.numel() for t in stats])):
            # .data: autograd saved these buffers (unused by the training-mode backward, which keeps the batch's
            # own statistics); writing through .data leaves their version counter, so backward does not object
            t.data.copy_(avg.view_as(t))

    @torch.no_grad()
    def _push(self, codes):
        if _distributed():
            gathered = [torch.empty_like(codes) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, codes.contiguous())
            codes = torch.cat(gathered)
        n = min(codes.shape[0], self.queue.shape[0])
        index = (self.queue_ptr + torch.arange(n, device=self.queue.device)) % self.queue.shape[0]
        self.queue[index] = codes[:n].to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + n) % self.queue.shape[0])


def _distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
