"""HistoryUncertaintyLoss: a reconstruction loss weighted by where the history copies disagree with the network.

OUR design (the MCLIR journal version, arXiv 2309.06023v5, describes an uncertainty-aware reconstruction loss built
from the negative models' statistics but publishes neither formula nor code). With the network's output ``y``, the
copies' outputs ``n_1..n_K`` (the SPN negatives of the same step) and the ground truth ``x``, per image::

    sigma(p) = sqrt( mean_k mean_c (n_k(c, p) - y(c, p))^2 + eps )     spread of the copies around the output
    u(p)     = sigma(p) / mean_p sigma(p)                              mean 1 over the image; no gradient
    w(p)     = (1 - beta) + beta * u(p)                                mean 1: the loss keeps L1's scale
    loss     = loss_weight * mean_{c, p} w(p) * rho(y(c, p) - x(c, p))

``rho`` is ``|d|`` (``criterion: l1``) or ``sqrt(d^2 + 1e-6)`` (``charbonnier``). Pixels where the network still
moves (its recent copies disagree with it) weigh more, as uncertainty-driven losses for SR prioritise uncertain
pixels; ``beta`` 0 gives the plain criterion. Use it in ``train.uncertainty_opt`` of an MCLIR model, logged as
``l_unc``: beside ``pixel_opt``, or instead of it with ``pixel_opt.loss_weight: 0`` (SRModel requires a pixel_opt).
"""
import torch
import torch.nn as nn
from basicsr.utils.registry import LOSS_REGISTRY

from ...checks.options import OptionError, check_known_keys, check_number

CRITERIA = ('l1', 'charbonnier')
SPREAD_EPS = 1e-12
CHARBONNIER_EPS = 1e-6


def uncertainty_weights(output, negatives, beta):
    """``w`` (B, 1, H, W) of the module docstring, without gradient."""
    with torch.no_grad():
        negs = torch.stack([n.detach().float() for n in negatives])  # (K, B, C, H, W)
        spread = (negs - output.detach().float().unsqueeze(0)).pow(2).mean(dim=(0, 2)).add(SPREAD_EPS).sqrt()
        u = spread / spread.mean(dim=(-2, -1), keepdim=True)
        return ((1 - beta) + beta * u).unsqueeze(1)


@LOSS_REGISTRY.register()
class HistoryUncertaintyLoss(nn.Module):
    """Reconstruction loss weighted by the history copies' spread (see the module docstring).

    Args:
        loss_weight (float >= 0): Default: 1.
        beta (float in [0, 1]): Share of the uncertainty map in the weights. Default: 0.5.
        criterion (str): ``l1`` | ``charbonnier``. Default: ``l1``.
    """

    OPTION_DEFAULTS = {'loss_weight': 1.0, 'beta': 0.5, 'criterion': 'l1'}

    def __init__(self, loss_weight=1.0, beta=0.5, criterion='l1'):
        super().__init__()
        args = self.check_options({'loss_weight': loss_weight, 'beta': beta, 'criterion': criterion},
                                  'HistoryUncertaintyLoss')
        self.loss_weight, self.beta, self.criterion = args['loss_weight'], args['beta'], args['criterion']

    @classmethod
    def check_options(cls, args, path):
        check_known_keys(args, list(cls.OPTION_DEFAULTS), path)
        out = dict(cls.OPTION_DEFAULTS, **args)
        out['loss_weight'] = check_number(out['loss_weight'], f'{path}.loss_weight', low=0)
        out['beta'] = check_number(out['beta'], f'{path}.beta', 0, 1)
        if out['criterion'] not in CRITERIA:
            raise OptionError(f'{path}.criterion must be one of {", ".join(CRITERIA)}, got {out["criterion"]!r}.')
        return out

    def forward(self, output, gt, negatives):
        """``output`` (B, C, H, W) with grad, ``gt`` the same shape, ``negatives`` a non-empty list of (B, C, H, W)."""
        if not negatives:
            raise ValueError('HistoryUncertaintyLoss needs at least one history copy output.')
        diff = output - gt
        rho = diff.abs() if self.criterion == 'l1' else (diff.pow(2) + CHARBONNIER_EPS).sqrt()
        return self.loss_weight * (uncertainty_weights(output, negatives, self.beta) * rho).mean()
