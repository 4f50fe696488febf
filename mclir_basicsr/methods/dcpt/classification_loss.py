"""Classification losses on logits (N, K) and integer labels (N,), for degradation classification (DCPT).

Registered as ``ClassFocalLoss`` and ``ClassCrossEntropyLoss`` (names BasicSR does not use); ``FocalLoss`` and
``CrossEntropyLoss``, the DCPT authors' names and defaults, are registered too when no other package took them.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import LOSS_REGISTRY

REDUCTIONS = ('mean', 'sum', 'none')


def _check(loss_weight, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {", ".join(REDUCTIONS)}, got {reduction!r}.')
    if not isinstance(loss_weight, (int, float)) or isinstance(loss_weight, bool) or loss_weight < 0:
        raise ValueError(f'loss_weight must be a number >= 0, got {loss_weight!r}.')


def _reduce(values, reduction):
    return values.mean() if reduction == 'mean' else values.sum() if reduction == 'sum' else values


@LOSS_REGISTRY.register()
class ClassFocalLoss(nn.Module):
    """Focal loss (Lin et al., ICCV 2017): ``-alpha_y * (1 - p_y)**gamma * log p_y`` per sample, ``p = softmax``.

    Args:
        loss_weight (float): Multiplies the loss. Default: 1.
        gamma (float >= 0): Focusing exponent; 0 gives cross-entropy. Default: 2 (DCPT's).
        alpha (list[float] | None): Per-class weights alpha_y, or None for 1. Default: None.
        reduction (str): ``mean`` | ``sum`` | ``none`` over the batch. Default: ``mean``.
        ignore_index (int): Samples with this label contribute 0 (and still count in the mean, as in DCPT's code).
            Default: -100.
    """

    def __init__(self, loss_weight=1.0, gamma=2.0, alpha=None, reduction='mean', ignore_index=-100):
        super().__init__()
        _check(loss_weight, reduction)
        if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or gamma < 0:
            raise ValueError(f'gamma must be a number >= 0, got {gamma!r}.')
        if alpha is not None and (not isinstance(alpha, (list, tuple)) or not alpha
                                  or any(not isinstance(a, (int, float)) or a < 0 for a in alpha)):
            raise ValueError(f'alpha must be null or a list of per-class weights >= 0, got {alpha!r}.')
        self.loss_weight, self.gamma, self.reduction = float(loss_weight), float(gamma), reduction
        self.ignore_index = int(ignore_index)
        self.register_buffer('alpha', None if alpha is None else torch.tensor(alpha, dtype=torch.float32),
                             persistent=False)

    def forward(self, logits, labels):
        labels = labels.long().view(-1)
        kept = labels != self.ignore_index
        safe = torch.where(kept, labels, torch.zeros_like(labels))
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, safe.view(-1, 1)).squeeze(1)
        values = -(1 - log_p.exp()).pow(self.gamma) * log_p * kept
        if self.alpha is not None:
            if self.alpha.numel() != logits.shape[1]:
                raise ValueError(f'alpha has {self.alpha.numel()} weights but the logits have {logits.shape[1]} '
                                 f'classes.')
            values = values * self.alpha[safe]
        return self.loss_weight * _reduce(values, self.reduction)


@LOSS_REGISTRY.register()
class ClassCrossEntropyLoss(nn.Module):
    """Softmax cross-entropy (``torch.nn.functional.cross_entropy``).

    Args:
        loss_weight (float): Multiplies the loss. Default: 1.
        label_smoothing (float in [0, 1)): As torch's. Default: 0.
        reduction (str): ``mean`` | ``sum`` | ``none`` over the batch. Default: ``mean``.
    """

    def __init__(self, loss_weight=1.0, label_smoothing=0.0, reduction='mean'):
        super().__init__()
        _check(loss_weight, reduction)
        if not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 1:
            raise ValueError(f'label_smoothing must be in [0, 1), got {label_smoothing!r}.')
        self.loss_weight, self.label_smoothing, self.reduction = float(loss_weight), float(label_smoothing), reduction

    def forward(self, logits, labels):
        return self.loss_weight * F.cross_entropy(logits.float(), labels.long(), reduction=self.reduction,
                                                  label_smoothing=self.label_smoothing)


class FocalLoss(ClassFocalLoss):
    """The DCPT authors' ``FocalLoss``: their defaults (``gamma`` 0, i.e. cross-entropy unless set)."""

    def __init__(self, alpha=None, gamma=0.0, reduction='mean', ignore_index=-100, loss_weight=1.0):
        super().__init__(loss_weight, gamma, alpha, reduction, ignore_index)


class CrossEntropyLoss(ClassCrossEntropyLoss):
    """The DCPT authors' ``CrossEntropyLoss`` (``loss_weight * cross_entropy``)."""


for _alias in (FocalLoss, CrossEntropyLoss):  # the authors' names, unless another package registered them
    if _alias.__name__ not in LOSS_REGISTRY:
        LOSS_REGISTRY.register(_alias)
