"""``train.spn_opt.loss_weight: auto``: an SPN weight that keeps the negative term at a chosen fraction of the
reconstruction loss, instead of a lambda tuned by hand for each feature space and task.

After every step, with ``l_spn`` and ``l_rec`` (the sum of ``l_pix``, ``l_percep``, ``l_style``, ``l_unc``) averaged
over DDP ranks (one all-reduce of two numbers), so every rank computes the same weight::

    r      = |l_spn| / (weight * l_rec)                   the term's size per unit of weight, this step
    r_avg  = momentum * r_avg + (1 - momentum) * r        (r_avg starts at the first r)
    weight = clamp(target_ratio / r_avg, weight / (1 + max_change), weight * (1 + max_change))

The weight is a number, so no gradient flows through it; it is used from the next step on. Collapse guard: when the
actual ratio ``weight * r`` exceeds ``COLLAPSE_FACTOR * target_ratio`` for ``COLLAPSE_STEPS`` steps in a row (the
negative term about to dominate), the weight is halved at once, with a warning. Weight, average and counter are
saved in the training state, so a resumed run continues exactly.
"""
import math
import torch
from basicsr.utils import get_root_logger

from ...training.ranks import mean_across_ranks

RECONSTRUCTION = ('l_pix', 'l_percep', 'l_style', 'l_unc')
COLLAPSE_FACTOR = 10.0
COLLAPSE_STEPS = 3


class AutoSPNWeight:

    def __init__(self, target_ratio, init_weight, momentum, max_change):
        self.target, self.momentum, self.max_change = float(target_ratio), float(momentum), float(max_change)
        self.weight = float(init_weight)
        self.avg = None
        self.high = 0  # consecutive steps far above the target

    def update(self, losses, current_iter):
        """``losses``: the step's loss tensors (``l_spn`` and reconstruction terms). Returns the new weight."""
        rec = [v.detach().float() for k, v in losses.items() if k in RECONSTRUCTION]
        if 'l_spn' not in losses or not rec:
            return self.weight
        l_spn, l_rec = mean_across_ranks(torch.stack([losses['l_spn'].detach().float().abs(), sum(rec)])).tolist()
        if not (math.isfinite(l_spn) and math.isfinite(l_rec)) or l_rec <= 0:
            return self.weight  # a skipped (non-finite) step teaches nothing
        r = l_spn / (self.weight * l_rec)
        self.avg = r if self.avg is None else self.momentum * self.avg + (1 - self.momentum) * r
        self.high = self.high + 1 if self.weight * r > COLLAPSE_FACTOR * self.target else 0
        if self.high >= COLLAPSE_STEPS:
            self.high = 0
            self.weight /= 2
            get_root_logger().warning(
                f'SPN loss_weight auto: the negative term was over {COLLAPSE_FACTOR:g}x the target ratio '
                f'{self.target:g} of the reconstruction loss for {COLLAPSE_STEPS} steps (last '
                f'{self.weight * 2 * r:.3g}); weight halved to {self.weight:.3g} at iter {current_iter}.')
            return self.weight
        wanted = self.target / max(self.avg, 1e-30)
        self.weight = min(max(wanted, self.weight / (1 + self.max_change)), self.weight * (1 + self.max_change))
        return self.weight

    def state_dict(self):
        return {'weight': self.weight, 'avg': self.avg, 'high': self.high}

    def load_state_dict(self, state):
        if state:
            self.weight, self.avg, self.high = float(state['weight']), state['avg'], int(state['high'])
