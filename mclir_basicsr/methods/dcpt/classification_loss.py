"""Classification losses on logits and integer labels, for degradation classification (DCPT).

Registered as ``ClassFocalLoss`` and ``ClassCrossEntropyLoss`` (names BasicSR does not use); ``FocalLoss`` and
``CrossEntropyLoss``, the DCPT authors' names and defaults, are registered too when no other package took them.
The focal loss has the semantics of DCPT's ``FocalLoss`` (``basicsr/losses/classify_loss.py``, identical in
MILab-PKU/dcpt at 0889ede and hoatong2411/dcpt at 0c9ea11): N-d logits, ``ignore_index`` rows dropped before the
reduction, a scalar 0 for a batch with every label ignored.
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
    """Focal loss (Lin et al., ICCV 2017): ``-alpha_y * (1 - p_y)**gamma * log p_y`` per row, ``p = softmax``.

    Logits (N, C) with labels (N,), or (N, C, d1, ..., dK) with labels (N, d1, ..., dK): each position is one row
    (rows in the order of ``logits.movedim(1, -1).reshape(-1, C)``). Rows labelled ``ignore_index`` are dropped
    before the reduction, as in DCPT's code: ``mean`` averages the kept rows only, ``sum`` adds them, ``none``
    returns one value per kept row (a 1-D tensor, in row order, shorter than the batch when rows are dropped).
    When every row is ignored the loss is a scalar 0, whatever the reduction, ``none`` included (DCPT's
    ``torch.tensor(0.0)``; here on the logits' device and in their graph: backward gives zero gradients).
    ``alpha_y`` weights each row; ``mean`` divides by the number of kept rows, not by the sum of their weights (as
    DCPT's). Computed in float32 whatever the logits' dtype.

    Args:
        loss_weight (float): Multiplies the loss (DCPT's class has none: 1). Default: 1.
        gamma (float >= 0): Focusing exponent; 0 gives cross-entropy. Default: 2 (DCPT's option files').
        alpha (list[float] | None): Per-class weights alpha_y, or None for 1. Default: None.
        reduction (str): ``mean`` | ``sum`` | ``none`` over the kept rows. Default: ``mean``.
        ignore_index (int): The label of rows to drop. Default: -100.
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
        """
        Args:
            logits (Tensor): (N, C) or (N, C, d1, ..., dK) unnormalised class scores.
            labels (Tensor): (N,) or (N, d1, ..., dK) class indices in [0, C), or ``ignore_index``.
        """
        if logits.dim() < 2:
            raise ValueError(f'logits must be (N, C) or (N, C, d1, ...), got shape {tuple(logits.shape)}.')
        num_classes = logits.shape[1]
        rows = logits.movedim(1, -1).reshape(-1, num_classes)  # (N, C, d1, ...) -> (N * d1 * ..., C)
        labels = labels.long().reshape(-1)
        if labels.numel() != rows.shape[0]:
            raise ValueError(f'labels hold {labels.numel()} values for {rows.shape[0]} rows of logits '
                             f'{tuple(logits.shape)}: labels must be (N, d1, ...) for logits (N, C, d1, ...).')
        if self.alpha is not None and self.alpha.numel() != num_classes:
            raise ValueError(f'alpha has {self.alpha.numel()} weights but the logits have {num_classes} classes.')
        kept = labels != self.ignore_index
        rows, labels = rows[kept], labels[kept]
        if labels.numel() == 0:
            # DCPT's value (0) for a batch with nothing to classify; the empty sum keeps it in the graph so that
            # backward gives zero gradients instead of failing
            return rows.float().sum()
        if ((labels < 0) | (labels >= num_classes)).any():
            raise ValueError(f'labels must be class indices in [0, {num_classes}) or ignore_index '
                             f'{self.ignore_index}, got values from {labels.min().item()} to {labels.max().item()}.')
        log_p = F.log_softmax(rows.float(), dim=1).gather(1, labels.view(-1, 1)).squeeze(1)
        values = -(1 - log_p.exp()).pow(self.gamma) * log_p
        if self.alpha is not None:
            values = values * self.alpha[labels]
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
    """The DCPT authors' ``FocalLoss``: their semantics (:class:`ClassFocalLoss`) and defaults (``gamma`` 0, i.e.
    cross-entropy unless set); ``loss_weight``, which theirs lacks, defaults to 1."""

    def __init__(self, alpha=None, gamma=0.0, reduction='mean', ignore_index=-100, loss_weight=1.0):
        super().__init__(loss_weight, gamma, alpha, reduction, ignore_index)


class CrossEntropyLoss(ClassCrossEntropyLoss):
    """The DCPT authors' ``CrossEntropyLoss`` (``loss_weight * cross_entropy``)."""


for _alias in (FocalLoss, CrossEntropyLoss):  # the authors' names, unless another package registered them
    if _alias.__name__ not in LOSS_REGISTRY:
        LOSS_REGISTRY.register(_alias)
