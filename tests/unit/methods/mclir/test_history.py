"""History copies: exact EMA arithmetic, buffers, freezing, schedule and state."""
import copy

import torch
from torch import nn

from mclir_basicsr.methods.mclir.history import HistoryBank, HistoryCopy
from mclir_basicsr.methods.mclir.options import CopySpec


class NetWithBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.bn = nn.BatchNorm2d(2)

    def forward(self, x):
        return self.bn(self.conv(x))


def _fill(net, value):
    with torch.no_grad():
        for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            t.fill_(value)


def test_refresh_exact_arithmetic_params_and_buffers():
    net = NetWithBN()
    _fill(net, 4.0)
    net.bn.num_batches_tracked.fill_(7)
    h = HistoryCopy(net, period=1, decay=0.5)
    _fill(net, 0.0)
    net.bn.num_batches_tracked.fill_(9)
    h.refresh()  # 0.5*4 + 0.5*0 = 2
    for name, t in h.module.state_dict().items():
        if name.endswith('num_batches_tracked'):
            assert t.item() == 9  # integer buffer copied, not averaged
        else:
            assert torch.equal(t, torch.full_like(t, 2.0)), name
    _fill(net, 1.0)
    h.refresh()  # 0.5*2 + 0.5*1 = 1.5
    assert torch.equal(h.module.bn.running_mean, torch.full((2, ), 1.5))
    assert torch.equal(h.module.conv.weight, torch.full_like(net.conv.weight, 1.5))
    h.refresh(decay=0.0)  # decay 0 = exact copy
    assert torch.equal(h.module.conv.weight, net.conv.weight)


def test_refresh_matches_closed_form_on_random_weights():
    torch.manual_seed(0)
    net = NetWithBN()
    h = HistoryCopy(net, period=1, decay=0.9)
    old = copy.deepcopy(h.module.state_dict())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
        net.bn.running_var.mul_(3)
    h.refresh()
    for name, t in h.module.state_dict().items():
        if t.is_floating_point():
            expected = 0.9 * old[name] + 0.1 * net.state_dict()[name]
            torch.testing.assert_close(t, expected, rtol=1e-6, atol=1e-7)


def test_init_decay_mixes_fresh_network():
    net, fresh = NetWithBN(), NetWithBN()
    _fill(net, 10.0)
    _fill(fresh, 0.0)
    h = HistoryCopy(net, period=1, decay=0.1, init_decay=0.25, fresh=fresh)
    # init_decay*fresh + (1-init_decay)*net = 0.25*0 + 0.75*10
    assert torch.equal(h.module.conv.weight, torch.full_like(net.conv.weight, 7.5))
    assert torch.equal(h.module.bn.running_var, torch.full((2, ), 7.5))


def test_copies_frozen_eval_and_independent():
    net = NetWithBN().train()
    h = HistoryCopy(net, period=1, decay=0.5)
    assert not h.module.training
    assert all(not p.requires_grad for p in h.module.parameters())
    assert all(p.requires_grad for p in net.parameters())
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(h.module.parameters(), net.parameters()))
    out = h(torch.randn(2, 1, 3, 3))
    assert not out.requires_grad
    # eval mode: BatchNorm uses running stats, so the copy's running stats do not move
    before = h.module.bn.running_mean.clone()
    h(torch.randn(4, 1, 3, 3) + 5)
    assert torch.equal(before, h.module.bn.running_mean)


def test_refresh_follows_in_place_and_to_updates():
    net = nn.Linear(2, 2)
    h = HistoryCopy(net, period=1, decay=0.0)
    net.to(torch.float32)  # .to() may replace .data; the copy must still follow the live parameters
    with torch.no_grad():
        net.weight.fill_(3.0)
    h.refresh()
    assert torch.equal(h.module.weight, torch.full((2, 2), 3.0))


def test_bank_schedule_and_negatives():
    torch.manual_seed(0)
    net = nn.Conv2d(3, 3, 3, padding=1)
    bank = HistoryBank(net, [CopySpec(2, 0.5), CopySpec(3, 0.5)], init_decay=0.0)
    due = {it: bank.step(it) for it in range(1, 7)}
    assert due == {1: [], 2: [0], 3: [1], 4: [0], 5: [], 6: [0, 1]}
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    negs = bank.negatives(x)
    assert len(negs) == 2 and all(not n.requires_grad for n in negs)


def test_bank_state_round_trip_bit_exact():
    torch.manual_seed(0)
    net = NetWithBN()
    fresh = lambda i: NetWithBN()  # noqa: E731
    bank = HistoryBank(net, [CopySpec(1, 0.3), CopySpec(2, 0.7)], init_decay=0.5, fresh_factory=fresh)
    with torch.no_grad():
        net.conv.weight.mul_(1.7)
    bank.step(2)
    state = bank.training_state()
    assert state.keys() == bank.state_dict().keys() and all(v.device.type == 'cpu' for v in state.values())
    other = HistoryBank(NetWithBN(), [CopySpec(1, 0.3), CopySpec(2, 0.7)], init_decay=0.0)
    other.load_training_state(state)
    assert other.digests() == bank.digests()
    for a, b in zip(bank.copies, other.copies):
        for (ka, va), (kb, vb) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)


def test_bank_load_refuses_other_count():
    net = nn.Linear(2, 2)
    bank = HistoryBank(net, [CopySpec(1, 0.3)], init_decay=0.0)
    other = HistoryBank(net, [CopySpec(1, 0.3), CopySpec(2, 0.3)], init_decay=0.0)
    try:
        other.load_training_state(bank.training_state(), source='x.state')
    except ValueError as err:
        assert 'x.state holds 1 history copies' in str(err) and 'train.history.copies' in str(err)
    else:
        raise AssertionError('loading 1 copy into 2 must fail')


def test_round_robin_negatives_pick_one_copy_per_step():
    torch.manual_seed(0)
    net = nn.Conv2d(3, 3, 1)
    bank = HistoryBank(net, [CopySpec(1, 0.5)] * 3, init_decay=0.0, negatives='round_robin')
    with torch.no_grad():
        for i, c in enumerate(bank.copies):
            c.module.bias.fill_(float(i))
            c.module.weight.zero_()
    x = torch.zeros(1, 3, 2, 2)
    for it in range(1, 7):
        (neg, ) = bank.negatives(x, it)
        assert torch.equal(neg, torch.full_like(neg, float(it % 3)))
    assert len(HistoryBank(net, [CopySpec(1, 0.5)] * 3).negatives(x, 5)) == 3  # default: all copies


def test_digest_tells_permutations_and_sign_flips_apart():
    """Sums of norms cannot see a permuted or sign-flipped copy; the digest does."""
    torch.manual_seed(0)
    net = nn.Linear(3, 3)
    bank = HistoryBank(net, [CopySpec(1, 0.5)])
    before = bank.digests()
    with torch.no_grad():
        bank.copies[0].module.weight.copy_(bank.copies[0].module.weight.flip(0))
    flipped = bank.digests()
    with torch.no_grad():
        bank.copies[0].module.weight.copy_(-bank.copies[0].module.weight.flip(0))
    assert len({before[0], flipped[0], bank.digests()[0]}) == 3
