"""History copies: frozen exponential-moving-average snapshots of a network whose outputs are negatives.

Update rule (``decay`` keeps this much of the old copy, as BasicSR's ``ema_decay``)::

    theta_copy <- decay * theta_copy + (1 - decay) * theta_net

applied to parameters AND floating-point buffers (BatchNorm statistics) with one ``torch._foreach_lerp_`` per
copy; integer buffers (``num_batches_tracked``) are copied. Copies never require grad and stay in eval mode.
"""
import copy

import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

STATE_FORMAT = 1


def bare_module(net):
    """Unwrap DataParallel / DistributedDataParallel and ``torch.compile`` (``_orig_mod``)."""
    while True:
        if isinstance(net, (DataParallel, DistributedDataParallel)):
            net = net.module
        elif hasattr(net, '_orig_mod') and isinstance(net._orig_mod, nn.Module):
            net = net._orig_mod
        else:
            return net


def _split_tensors(module):
    """(float tensors, other tensors) of ``module``'s parameters and buffers, as ordered name->tensor dicts."""
    floats, others = {}, {}
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        (floats if t.is_floating_point() or t.is_complex() else others)[name] = t
    return floats, others


class HistoryCopy:
    """One frozen copy of ``net``.

    Args:
        net (nn.Module): the network being trained (bare, unwrapped); the copy follows its tensors.
        period (int): refresh every ``period`` iterations.
        decay (float): in [0, 1); share of the old copy kept at each refresh.
        init_decay (float): in [0, 1]; the copy starts as ``init_decay*fresh + (1-init_decay)*net``.
        fresh (nn.Module | None): a freshly initialised network of the same architecture (needed when
            ``init_decay > 0``).
    """

    def __init__(self, net, period, decay, init_decay=0.0, fresh=None):
        self.period = int(period)
        self.decay = float(decay)
        self.module = copy.deepcopy(net)
        self.module.requires_grad_(False)
        self.module.eval()
        src_f, src_o = _split_tensors(net)
        dst_f, dst_o = _split_tensors(self.module)
        self._src = [src_f[k] for k in dst_f]  # the live tensors (not detached views: survive .to())
        self._dst = list(dst_f.values())
        self._src_other = [src_o[k] for k in dst_o]
        self._dst_other = list(dst_o.values())
        if init_decay > 0:
            if fresh is None:
                raise ValueError('init_decay > 0 needs a freshly initialised network (fresh=...)')
            fresh_f, _ = _split_tensors(fresh)
            with torch.no_grad():
                torch._foreach_lerp_(self._dst, [fresh_f[k].detach().to(t.device) for k, t in dst_f.items()],
                                     float(init_decay))

    @torch.no_grad()
    def refresh(self, decay=None):
        """``theta_copy <- decay*theta_copy + (1-decay)*theta_net`` (float tensors); copy the others."""
        decay = self.decay if decay is None else float(decay)
        if self._dst:
            torch._foreach_lerp_(self._dst, self._src, 1.0 - decay)
        for d, s in zip(self._dst_other, self._src_other):
            d.copy_(s)

    def __call__(self, x):
        return (self.module if self.forward is None else self.forward)(x)

    forward = None  # a compiled ``module`` (HistoryBank.compile); the module itself stays the saved, averaged one


class HistoryBank:
    """The history copies of one network and their refresh schedule.

    Args:
        net (nn.Module): the network being trained (wrapped or not).
        specs (list): objects with ``period`` and ``decay`` (one per copy).
        init_decay (float): see :class:`HistoryCopy`.
        fresh_factory (callable | None): ``i -> nn.Module``, a freshly initialised network for copy ``i``.
    """

    def __init__(self, net, specs, init_decay=0.0, fresh_factory=None):
        net = bare_module(net)
        self.init_decay = float(init_decay)
        self.ranks_verified = 1  # ranks the copies were last checked identical on (1 without DDP)
        self.copies = []
        for i, spec in enumerate(specs):
            fresh = fresh_factory(i) if (init_decay > 0 and fresh_factory is not None) else None
            self.copies.append(HistoryCopy(net, spec.period, spec.decay, init_decay, fresh))
            del fresh

    def __len__(self):
        return len(self.copies)

    def compile(self, compiler):
        """Run each copy's forward through ``compiler(module)`` (e.g. ``torch.compile``). Refreshes still update
        the plain modules in place, which the compiled callables read."""
        for c in self.copies:
            c.forward = compiler(c.module)

    def step(self, current_iter):
        """Refresh the copies whose period divides ``current_iter``; returns their indices.

        The schedule depends on ``current_iter`` only, so every rank refreshes the same copies; under DDP the
        refreshed copies are then checked to be identical on all ranks (one small all-gather per refresh).
        """
        due = [i for i, c in enumerate(self.copies) if current_iter % c.period == 0]
        for i in due:
            self.copies[i].refresh()
        if due:
            self.ranks_verified = self.verify_across_ranks(f'history copies {due} at iter {current_iter}')
        return due

    @torch.no_grad()
    def checksums(self):
        """One float64 checksum per copy (sum of the norms of its tensors), on the copies' device."""
        sums = []
        for c in self.copies:
            norms = torch._foreach_norm(c._dst) if c._dst else []
            sums.append(torch.stack(norms).double().sum() if norms else torch.zeros((), dtype=torch.float64))
        return torch.stack(sums)

    def verify_across_ranks(self, what='history copies'):
        """Raise if the copies differ between DDP ranks; returns the number of ranks compared (1 without DDP)."""
        from .dist import check_same_on_all_ranks, world_size
        if world_size() == 1:
            return 1
        return check_same_on_all_ranks(self.checksums(), what)

    @torch.no_grad()
    def negatives(self, x, current_iter=None, mode='all'):
        """Outputs of the copies on ``x`` (eval mode, no grad): a list of tensors.

        ``mode='all'``: every copy. ``mode='round_robin'``: only copy ``current_iter % N``. That is one copy's
        forward and one VGG pass per step instead of N, and the same choice on every rank, without randomness.
        """
        if mode == 'round_robin' and current_iter is not None:
            return [self.copies[current_iter % len(self.copies)](x)]
        return [c(x) for c in self.copies]

    def state_dict(self):
        """Plain, ``weights_only``-loadable state: the copies' tensors (on CPU) and their schedule."""
        return {
            'format': STATE_FORMAT,
            'init_decay': self.init_decay,
            'periods': [c.period for c in self.copies],
            'decays': [c.decay for c in self.copies],
            'copies': [{k: v.detach().cpu().clone() for k, v in c.module.state_dict().items()} for c in self.copies],
        }

    def load_state_dict(self, state, source='resume state'):
        """Restore the copies' tensors from :meth:`state_dict` output (the schedule comes from the options)."""
        if not isinstance(state, dict) or state.get('format') != STATE_FORMAT or 'copies' not in state:
            raise ValueError(f'{source} has no readable history copies (format {STATE_FORMAT} expected).')
        if len(state['copies']) != len(self.copies):
            raise ValueError(f'{source} holds {len(state["copies"])} history copies but the options configure '
                             f'{len(self.copies)} (train.history.copies). Resume with the same number of copies, '
                             f'or start a new experiment from the network only (path.pretrain_network_g).')
        for i, (c, sd) in enumerate(zip(self.copies, state['copies'])):
            try:
                c.module.load_state_dict(sd, strict=True)
            except RuntimeError as err:
                raise ValueError(f'{source}: history copy {i} does not fit network_g: '
                                 f'{str(err).splitlines()[0]}') from err
