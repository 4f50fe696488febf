"""ConStyle's auxiliary losses on the prompter's codes (Fan et al.; see :mod:`mclir_basicsr.archs.constyle_arch`).

* ``ConStyleContentLoss`` (alias ``ContentLoss``, the authors' name): ``MSE(q2, k2)``, the query code against the
  momentum key of the clean image;
* ``ConStyleStyleLoss`` (alias ``StyleLoss``): ``-sum_j MSE(G(q_j), G(n_j))`` with ``G(x) = x x^T / (B * dim)`` (the
  codes' B x B similarity), ``q = [q1, q2]`` and ``n`` the two queue slices about to be overwritten. It pushes the
  codes' similarity structure away from older codes' and is unbounded below: the codes can grow without limit to
  lower it. ``max_distance`` caps each MSE (``-min(MSE, max_distance)``), so past the cap the term has no gradient;
  our name caps by default (docs/constyle.md has the measurement behind the default), the authors' alias does not.

The InfoNCE term uses the registered ``CrossEntropyLoss`` (logits, positive at index 0).
"""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from ...checks.options import OptionError, check_known_keys, check_number

DEFAULT_MAX_DISTANCE = 1.0


class _CodeLoss(nn.Module):
    OPTION_DEFAULTS = {'loss_weight': 1.0}

    @classmethod
    def check_options(cls, args, path):
        check_known_keys(args, list(cls.OPTION_DEFAULTS), path)
        out = dict(cls.OPTION_DEFAULTS, **args)
        out['loss_weight'] = check_number(out['loss_weight'], f'{path}.loss_weight', low=0)
        if out.get('max_distance') is not None:
            out['max_distance'] = check_number(out['max_distance'], f'{path}.max_distance', low=0, low_open=True)
        if out.get('reduction', 'mean') != 'mean':
            raise OptionError(f'{path}.reduction must be mean (the codes are averaged), got {out["reduction"]!r}.')
        return out


@LOSS_REGISTRY.register()
class ConStyleContentLoss(_CodeLoss):
    """``loss_weight * MSE(query, key)``; ``reduction`` is accepted for the authors' files (mean only)."""

    OPTION_DEFAULTS = {'loss_weight': 1.0, 'reduction': 'mean'}

    def __init__(self, loss_weight=1.0, reduction='mean'):
        super().__init__()
        self.loss_weight = self.check_options(dict(loss_weight=loss_weight, reduction=reduction),
                                              type(self).__name__)['loss_weight']

    def forward(self, query, key):
        return self.loss_weight * (query - key.detach()).pow(2).mean()


def similarity(codes, n):
    """``codes codes^T / n``: (B, B)."""
    return codes @ codes.t() / n


@LOSS_REGISTRY.register()
class ConStyleStyleLoss(_CodeLoss):
    """``-loss_weight * sum_j min(MSE(G(q_j), G(n_j)), max_distance)`` (module doc); ``max_distance: null``
    removes the cap (the authors' unbounded term)."""

    OPTION_DEFAULTS = {'loss_weight': 1.0, 'max_distance': DEFAULT_MAX_DISTANCE, 'reduction': 'mean'}

    def __init__(self, loss_weight=1.0, max_distance=DEFAULT_MAX_DISTANCE, reduction='mean'):
        super().__init__()
        args = self.check_options(dict(loss_weight=loss_weight, max_distance=max_distance, reduction=reduction),
                                  type(self).__name__)
        self.loss_weight, self.max_distance = args['loss_weight'], args['max_distance']
        self.last_distances = None  # the uncapped MSEs of the last call (logged by the model)

    def forward(self, codes, older):
        n = codes[0].shape[0] * codes[0].shape[1]  # the authors' normaliser, the same for both codes
        distances = [(similarity(q, n) - similarity(o.detach()[:q.shape[0]], n)).pow(2).mean()
                     for q, o in zip(codes, older)]
        self.last_distances = [d.detach().item() for d in distances]
        if self.max_distance is not None:
            distances = [d.clamp(max=self.max_distance) for d in distances]
        return -self.loss_weight * torch.stack(distances).sum()


class ContentLoss(ConStyleContentLoss):
    """The authors' name for :class:`ConStyleContentLoss`."""


class StyleLoss(ConStyleStyleLoss):
    """The authors' name for :class:`ConStyleStyleLoss`, uncapped by default as theirs."""

    OPTION_DEFAULTS = dict(ConStyleStyleLoss.OPTION_DEFAULTS, max_distance=None)

    def __init__(self, loss_weight=1.0, max_distance=None, reduction='mean'):
        super().__init__(loss_weight, max_distance, reduction)


for _alias in (ContentLoss, StyleLoss):  # the authors' names, unless another package registered them
    if _alias.__name__ not in LOSS_REGISTRY:
        LOSS_REGISTRY.register(_alias)
