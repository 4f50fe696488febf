"""Learning-rate schedulers for ``train.scheduler`` beyond BasicSR 1.4.2's two, stepped once per iteration.

* BasicSR's ``MultiStepLR``/``MultiStepRestartLR`` and ``CosineAnnealingRestartLR``, as before;
* ``TrueCosineAnnealingLR`` (NAFNet, the MCLIR authors): torch's ``CosineAnnealingLR`` (``T_max``, ``eta_min``);
* ``CosineAnnealingRestartCyclicLR`` (NAFNet, ConStyle): cosine restarts with one ``eta_min`` per period;
* ``LinearWarmupCosineAnnealingLR`` (PromptIR's, DSRIR's schedule): linear warm-up from ``warmup_start_lr`` for
  ``warmup_epochs`` steps, then cosine to ``eta_min`` at ``max_epochs`` (pl_bolts' argument names; in BasicSR a
  step is an iteration);
* any other class of ``torch.optim.lr_scheduler`` by name (``StepLR``, ``OneCycleLR``, ...).

The runtime fix ``more_schedulers`` makes ``BaseModel.setup_schedulers`` use :func:`build_scheduler` (without
popping ``type`` out of the live options, as 1.4.2 does). Every scheduler has torch's ``state_dict``, so BasicSR's
training state saves and restores it.
"""
import bisect
import inspect
import math
from basicsr.models import lr_scheduler as basicsr_schedulers
from torch.optim import lr_scheduler as torch_schedulers

from ..checks.options import OptionError, nearest
from .optimizers import check_arguments


class TrueCosineAnnealingLR(torch_schedulers.CosineAnnealingLR):
    """torch's ``CosineAnnealingLR`` under the name NAFNet's and the MCLIR authors' option files use."""


class CosineAnnealingRestartCyclicLR(torch_schedulers.LRScheduler):
    """Cosine annealing in consecutive periods; period ``i`` starts at ``restart_weights[i] * base_lr`` and ends
    at ``eta_mins[i]``.

    Args:
        optimizer (Optimizer): the optimizer.
        periods (list[int]): length of each period, in steps.
        restart_weights (list[float]): peak of each period relative to the base lr.
        eta_mins (list[float]): floor of each period.
    """

    def __init__(self, optimizer, periods, restart_weights=(1, ), eta_mins=(0, ), last_epoch=-1):
        if not (len(periods) == len(restart_weights) == len(eta_mins)):
            raise ValueError('periods, restart_weights and eta_mins must have the same length, got '
                             f'{len(periods)}, {len(restart_weights)}, {len(eta_mins)}.')
        self.periods, self.restart_weights, self.eta_mins = list(periods), list(restart_weights), list(eta_mins)
        self.ends = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        i = min(bisect.bisect_right(self.ends, self.last_epoch), len(self.periods) - 1)
        start = self.ends[i - 1] if i else 0
        progress = (self.last_epoch - start) / self.periods[i]
        eta_min, weight = self.eta_mins[i], self.restart_weights[i]
        return [eta_min + weight * 0.5 * (base - eta_min) * (1 + math.cos(math.pi * progress))
                for base in self.base_lrs]


class LinearWarmupCosineAnnealingLR(torch_schedulers.LRScheduler):
    """Linear warm-up from ``warmup_start_lr`` to the base lr over ``warmup_epochs`` steps, then cosine annealing
    to ``eta_min`` at step ``max_epochs``, flat after it."""

    def __init__(self, optimizer, warmup_epochs, max_epochs, warmup_start_lr=0.0, eta_min=0.0, last_epoch=-1):
        if not 0 <= warmup_epochs < max_epochs:
            raise ValueError(f'need 0 <= warmup_epochs < max_epochs, got {warmup_epochs} and {max_epochs}.')
        self.warmup_epochs, self.max_epochs = warmup_epochs, max_epochs
        self.warmup_start_lr, self.eta_min = warmup_start_lr, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t = self.last_epoch
        if t < self.warmup_epochs:
            return [self.warmup_start_lr + (base - self.warmup_start_lr) * t / self.warmup_epochs
                    for base in self.base_lrs]
        span = self.max_epochs - self.warmup_epochs
        progress = min(t - self.warmup_epochs, span) / span
        return [self.eta_min + 0.5 * (base - self.eta_min) * (1 + math.cos(math.pi * progress))
                for base in self.base_lrs]


OURS = {cls.__name__: cls for cls in (TrueCosineAnnealingLR, CosineAnnealingRestartCyclicLR,
                                      LinearWarmupCosineAnnealingLR)}
BASICSR = {'MultiStepLR': basicsr_schedulers.MultiStepRestartLR,
           'MultiStepRestartLR': basicsr_schedulers.MultiStepRestartLR,
           'CosineAnnealingRestartLR': basicsr_schedulers.CosineAnnealingRestartLR}


def scheduler_classes():
    """``{name: class}``: BasicSR's names first, ours, then torch's."""
    torch_ones = {n: c for n, c in vars(torch_schedulers).items()
                  if inspect.isclass(c) and issubclass(c, torch_schedulers.LRScheduler) and not n.startswith('_')
                  and c is not torch_schedulers.LRScheduler}
    return {**torch_ones, **OURS, **BASICSR}


def check_scheduler_options(opt):
    """Check ``train.scheduler``: a known type and the arguments it takes."""
    block = (opt.get('train') or {}).get('scheduler')
    if block is None:
        return
    if not isinstance(block, dict) or 'type' not in block:
        raise OptionError('train.scheduler must be a mapping with a type, such as {type: TrueCosineAnnealingLR, '
                          'T_max: 300000, eta_min: 1.0e-7}.')
    classes = scheduler_classes()
    if block['type'] not in classes:
        hint = nearest(block['type'], classes)
        raise OptionError(f'train.scheduler.type {block["type"]!r} is not a known scheduler.' +
                          (f' Did you mean {hint}?' if hint else '') + f' Known: {", ".join(sorted(classes))}.')
    check_arguments(classes[block['type']], {k: v for k, v in block.items() if k != 'type'}, 'train.scheduler',
                    skip=('self', 'optimizer', 'last_epoch', 'verbose'))


def build_scheduler(optimizer, scheduler_opt):
    """The scheduler ``scheduler_opt`` (``{type, **kwargs}``, not changed) describes, for ``optimizer``."""
    args = {k: v for k, v in scheduler_opt.items() if k != 'type'}
    return scheduler_classes()[scheduler_opt['type']](optimizer, **args)
