"""DCPT's focal loss semantics (their ``FocalLoss``, basicsr/losses/classify_loss.py, identical in MILab-PKU/dcpt at
0889ede and hoatong2411/dcpt at 0c9ea11), checked against a naive reference written from them:

* (N, C, d1, ..., dK) logits with (N, d1, ..., dK) labels: each position is one row, rows ordered as
  ``logits.permute(0, 2, ..., K+1, 1).reshape(-1, C)``;
* rows labelled ``ignore_index`` are dropped before the reduction: ``mean`` over the kept rows, ``sum`` of them,
  ``none`` one value per kept row (a 1-D tensor as long as the kept rows);
* every row ignored: a scalar 0 whatever the reduction (theirs: ``torch.tensor(0.0)``);
* ``alpha`` weights a row by its class, and ``mean`` still divides by the number of kept rows.
"""
import math

import mclir_basicsr  # noqa: F401  (before basicsr)

import pytest
import torch
from basicsr.utils.registry import LOSS_REGISTRY

from mclir_basicsr.methods.dcpt.classification_loss import ClassFocalLoss

REDUCTIONS = ('mean', 'sum', 'none')


def naive_focal_rows(rows, labels, gamma, alpha=None, ignore_index=-100):
    """One value per kept row, in row order: -alpha_y (1 - p_y)^gamma log p_y."""
    values = []
    for row, y in zip(rows, labels):
        if y == ignore_index:
            continue
        p = math.exp(row[y]) / sum(math.exp(v) for v in row)
        values.append(-(alpha[y] if alpha else 1.) * (1 - p) ** gamma * math.log(p))
    return values


def naive_focal(rows, labels, gamma, reduction, alpha=None, ignore_index=-100):
    values = naive_focal_rows(rows, labels, gamma, alpha, ignore_index)
    if not values:
        return 0.0  # theirs: torch.tensor(0.0), whatever the reduction
    if reduction == 'mean':
        return sum(values) / len(values)
    return sum(values) if reduction == 'sum' else values


def naive_rows_of(logits, labels):
    """(N, C, d1, ..., dK) logits and (N, d1, ..., dK) labels as rows, by explicit loops over the positions."""
    n, c = logits.shape[:2]
    positions = list(torch.cartesian_prod(*[torch.arange(d) for d in logits.shape[2:]]).view(-1, logits.dim() - 2))
    rows, row_labels = [], []
    for i in range(n):
        for pos in positions:
            index = tuple(pos.tolist())
            rows.append([logits[(i, k) + index].item() for k in range(c)])
            row_labels.append(labels[(i, ) + index].item())
    return rows, row_labels


def _close(got, expected):
    if isinstance(expected, list):
        assert got.dim() == 1 and got.shape[0] == len(expected), got.shape
        assert got.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-9)
    else:
        assert got.dim() == 0, got.shape
        assert got.item() == pytest.approx(expected, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize('reduction', REDUCTIONS)
@pytest.mark.parametrize('gamma, alpha', [(2.0, None), (0.5, [1., 2., 0.5, 3.]), (0.0, None)])
def test_ignored_rows_are_dropped_before_the_reduction(reduction, gamma, alpha):
    torch.manual_seed(0)
    logits = torch.randn(7, 4, dtype=torch.float64)
    labels = torch.tensor([0, -1, 2, 3, -1, 1, 2])
    loss = ClassFocalLoss(gamma=gamma, alpha=alpha, reduction=reduction, ignore_index=-1)(logits, labels)
    _close(loss, naive_focal(logits.tolist(), labels.tolist(), gamma, reduction, alpha, ignore_index=-1))
    if reduction == 'none':
        assert loss.shape == (5, )  # the kept rows only, not 7 values with zeros


def test_the_mean_is_over_the_kept_rows_only():
    logits, labels = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, -100, -100, 2, 1])
    kept = labels != -100
    focal = ClassFocalLoss(gamma=2.)
    assert torch.allclose(focal(logits, labels), focal(logits[kept], labels[kept]))
    assert torch.allclose(ClassFocalLoss(gamma=2., reduction='sum')(logits, labels),
                          4 * ClassFocalLoss(gamma=2.)(logits, labels))


@pytest.mark.parametrize('reduction', REDUCTIONS)
@pytest.mark.parametrize('shape', [(2, 3, 4, 5), (3, 4, 6), (2, 3, 2, 3, 2)])
def test_nd_logits_equal_their_flattened_rows(reduction, shape):
    torch.manual_seed(1)
    logits = torch.randn(shape, dtype=torch.float64)
    labels = torch.randint(0, shape[1], (shape[0], ) + shape[2:])
    labels.view(-1)[::5] = -100  # some positions ignored
    loss = ClassFocalLoss(gamma=2., reduction=reduction)(logits, labels)
    rows, row_labels = naive_rows_of(logits, labels)
    _close(loss, naive_focal(rows, row_labels, 2., reduction))
    flat = logits.movedim(1, -1).reshape(-1, shape[1])
    torch.testing.assert_close(loss, ClassFocalLoss(gamma=2., reduction=reduction)(flat, labels.reshape(-1)))


@pytest.mark.parametrize('reduction', REDUCTIONS)
def test_a_batch_with_every_row_ignored_is_a_scalar_zero(reduction):
    for logits in (torch.randn(4, 3, requires_grad=True), torch.randn(2, 3, 4, 4, requires_grad=True)):
        labels = torch.full((logits.shape[0], ) + logits.shape[2:], -100)
        loss = ClassFocalLoss(gamma=2., reduction=reduction)(logits, labels)
        assert loss.shape == () and loss.item() == 0.0  # 'none' too, as theirs
        loss.backward()  # stays in the graph: zero gradients, no error
        assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_ignored_rows_get_no_gradient():
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, -100, 2, -100, 1])
    ClassFocalLoss(gamma=2.)(logits, labels).backward()
    assert torch.equal(logits.grad[1], torch.zeros(3, dtype=torch.float64)) and logits.grad[0].abs().sum() > 0


def test_the_authors_name_keeps_their_defaults():
    """FocalLoss: gamma 0 (cross-entropy over the kept rows), ignore_index -100, mean."""
    logits, labels = torch.randn(2, 4, 3, 3, dtype=torch.float64), torch.randint(0, 4, (2, 3, 3))
    labels[0, 0, 0] = -100
    rows, row_labels = naive_rows_of(logits, labels)
    assert LOSS_REGISTRY.get('FocalLoss')()(logits, labels).item() == pytest.approx(
        naive_focal(rows, row_labels, 0., 'mean'), rel=1e-6)
    ce = torch.nn.functional.cross_entropy(logits, labels)  # torch's mean also skips ignore_index
    torch.testing.assert_close(LOSS_REGISTRY.get('FocalLoss')()(logits, labels), ce.float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('logits, labels, message', [
    (torch.randn(2, 3, 4), torch.zeros(2, 5, dtype=torch.long), 'labels hold 10 values for 8 rows'),
    (torch.randn(3, 3), torch.tensor([0, 3, 1]), r'labels must be class indices in \[0, 3\) or ignore_index -100'),
    (torch.randn(3), torch.tensor([0, 1, 2]), r'logits must be \(N, C\) or \(N, C, d1, ...\)'),
])
def test_labels_that_fit_no_row_are_refused(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        ClassFocalLoss()(logits, labels)
