"""History copies: frozen exponential-moving-average snapshots of a network whose outputs are negatives.

Update rule (``decay`` keeps this much of the old copy, as BasicSR's ``ema_decay``)::

    theta_copy <- decay * theta_copy + (1 - decay) * theta_net

applied to parameters AND floating-point buffers (BatchNorm statistics) with one ``torch._foreach_lerp_`` per
copy; integer buffers (``num_batches_tracked``) are copied. Copies never require grad and stay in eval mode.
:class:`HistoryBank` is an ``nn.Module`` (a ``ModuleList`` of copies), so its state dict is torch's.
"""
import copy
import torch
from basicsr.utils import get_root_logger
from torch import nn

from ...training.ranks import check_same_on_all_ranks, mean_across_ranks, tensor_digest, world_size
from ...utils import bare_module

NEGATIVE_MODES = ('all', 'round_robin')


def _float_and_other_tensors(module):
    """(float tensors, other tensors) of ``module``'s parameters and buffers, as ordered name -> tensor dicts."""
    floats, others = {}, {}
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        (floats if t.is_floating_point() or t.is_complex() else others)[name] = t
    return floats, others


class HistoryCopy(nn.Module):
    """One frozen copy of ``net``.

    Args:
        net (nn.Module): the network being trained (bare, unwrapped); the copy follows its tensors.
        period (int | None): refresh every ``period`` iterations (None: only when asked, e.g. adaptively).
        decay (float): in [0, 1); share of the old copy kept at each refresh.
        init_decay (float): in [0, 1]; the copy starts as ``init_decay*fresh + (1-init_decay)*net``.
        fresh (nn.Module | None): a freshly initialised network of the same architecture (needed when
            ``init_decay > 0``).
    """

    def __init__(self, net, period, decay, init_decay=0.0, fresh=None):
        super().__init__()
        self.period = None if period is None else int(period)
        self.decay = float(decay)
        self.module = copy.deepcopy(net).requires_grad_(False).eval()
        self._followed = (net, )  # a tuple, so that the trained network is not registered as a submodule
        self._compiled = ()  # (compiled forward,) once compile() is called; the module stays the saved one
        if init_decay > 0:
            if fresh is None:
                raise ValueError('init_decay > 0 needs a freshly initialised network (fresh=...)')
            mine, _ = _float_and_other_tensors(self.module)
            theirs, _ = _float_and_other_tensors(fresh)
            with torch.no_grad():
                torch._foreach_lerp_(list(mine.values()), [theirs[k].detach().to(t.device) for k, t in mine.items()],
                                     float(init_decay))

    def train(self, mode=True):
        return super().train(False)  # always eval: a fixed snapshot

    @torch.no_grad()
    def refresh(self, decay=None):
        """``theta_copy <- decay*theta_copy + (1-decay)*theta_net`` (float tensors); copy the others."""
        decay = self.decay if decay is None else float(decay)
        mine_f, mine_o = _float_and_other_tensors(self.module)
        net_f, net_o = _float_and_other_tensors(self._followed[0])
        if mine_f:
            torch._foreach_lerp_(list(mine_f.values()), [net_f[k] for k in mine_f], 1.0 - decay)
        for k, t in mine_o.items():
            t.copy_(net_o[k])

    def compile(self, compiler):
        """Run the forward through ``compiler(module)`` (e.g. ``torch.compile``); refreshes still update the plain
        module in place, which the compiled callable reads."""
        self._compiled = (compiler(self.module), )

    def forward(self, x):
        return (self._compiled[0] if self._compiled else self.module)(x)

    def digest(self):
        """SHA-256 of every tensor of the copy: equal digests mean identical copies."""
        return tensor_digest(self.module.state_dict().values())


class HistoryBank(nn.Module):
    """The history copies of one network and their refresh schedule.

    Args:
        net (nn.Module): the network being trained (wrapped or not).
        specs (list): objects with ``period`` and ``decay`` (one per copy).
        init_decay (float): see :class:`HistoryCopy`.
        fresh_factory (callable | None): ``i -> nn.Module``, a freshly initialised network for copy ``i``.
        negatives (str): ``'all'`` (every copy at every step) or ``'round_robin'`` (copy ``iter % N``).
    """

    def __init__(self, net, specs, init_decay=0.0, fresh_factory=None, negatives='all'):
        super().__init__()
        if negatives not in NEGATIVE_MODES:
            raise ValueError(f'negatives must be one of {NEGATIVE_MODES}, got {negatives!r}')
        net = bare_module(net)
        self.negatives_mode = negatives
        self.ranks_verified = 1  # ranks the copies were last checked identical on (1 without DDP)
        copies = []
        for i, spec in enumerate(specs):
            fresh = fresh_factory(i) if (init_decay > 0 and fresh_factory is not None) else None
            copies.append(HistoryCopy(net, spec.period, spec.decay, init_decay, fresh))
            del fresh
        self.copies = nn.ModuleList(copies)

    def __len__(self):
        return len(self.copies)

    def compile(self, compiler):
        for c in self.copies:
            c.compile(compiler)

    @torch.no_grad()
    def negatives(self, x, current_iter=None):
        """Outputs of the copies on ``x`` (eval mode, no grad): a list of tensors.

        ``round_robin``: only copy ``current_iter % N``: one copy's forward and one VGG pass per step instead of N,
        the same choice on every rank, without randomness.
        """
        if self.negatives_mode == 'round_robin' and current_iter is not None:
            return [self.copies[current_iter % len(self.copies)](x)]
        return [c(x) for c in self.copies]

    def step(self, current_iter):
        """Refresh the copies whose period divides ``current_iter``; returns their indices.

        The schedule depends on ``current_iter`` only, so every rank refreshes the same copies; under DDP the
        refreshed copies are then checked to be identical on all ranks (one small all-gather per refresh).
        """
        due = [i for i, c in enumerate(self.copies) if c.period is not None and current_iter % c.period == 0]
        for i in due:
            self.copies[i].refresh()
        if due:
            first = self.ranks_verified == 1
            self.ranks_verified = self.verify_across_ranks(f'history copies {due} at iter {current_iter}')
            if first and self.ranks_verified > 1:
                get_root_logger().info(f'History copies refreshed at iter {current_iter} are identical on '
                                       f'{self.ranks_verified} ranks (checked at every refresh).')
        return due

    def digests(self):
        return [c.digest() for c in self.copies]

    def verify_across_ranks(self, what='history copies'):
        """Raise if the copies differ between DDP ranks; returns the number of ranks compared (1 without DDP)."""
        if world_size() == 1:
            return 1
        return check_same_on_all_ranks(self.digests(), what)

    def training_state(self):
        """The copies' tensors for a training state: torch's state dict, on the CPU."""
        return {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}

    def load_training_state(self, state, source='resume state'):
        """Restore the copies from :meth:`training_state` output (the schedule comes from the options)."""
        saved = sorted({int(k.split('.')[1]) for k in state if k.startswith('copies.')})
        if len(saved) != len(self.copies):
            raise ValueError(f'{source} holds {len(saved)} history copies but the options configure '
                             f'{len(self.copies)} (train.history.copies). Resume with the same number of copies, '
                             f'or start a new experiment from the network only (path.pretrain_network_g).')
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f'{source}: the history copies do not fit network_g: '
                             f'{str(err).splitlines()[0]}') from err


class AdaptiveRefresh:
    """The MCLIR authors' adaptive trigger: after a step whose residual spread ``mean_batch std(2 (output - gt))``
    over (C, H, W), averaged over ranks, exceeds ``threshold``, copy ``count % N`` is refreshed with ``decay``.

    Every rank takes the same decision at the same iteration (the authors decide per rank, so their copies drift).
    ``count`` belongs in the training state.
    """

    def __init__(self, threshold, decay):
        self.threshold, self.decay, self.count = float(threshold), float(decay), 0

    @torch.no_grad()
    def step(self, bank, output, gt, current_iter):
        """Returns ``(spread, refreshed copy index or None)``."""
        spread = mean_across_ranks(torch.std(2 * (output.detach().float() - gt.float()), dim=(-3, -2, -1)).mean())
        spread = float(spread)
        if spread <= self.threshold:
            return spread, None
        i = self.count % len(bank)
        bank.copies[i].refresh(self.decay)
        bank.verify_across_ranks(f'history copy {i} refreshed (adaptive) at iter {current_iter}')
        self.count += 1
        return spread, i
