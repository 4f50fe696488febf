"""ConStyle in process: the prompter (queue, momentum encoder), ConStyleNAFNet (the paper's parameter counts,
padding), the auxiliary losses against naive references, ConStyleModel's joint training then freezing,
IRConStyleModel's frozen pre-trained prompter, SPN on top, and the option errors of the authors' keys."""
import copy

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import build_model

from mclir_basicsr.methods.constyle.constyle_arch import ConStyle
from mclir_basicsr.methods.constyle.constyle_loss import ConStyleContentLoss, ConStyleStyleLoss, StyleLoss
from mclir_basicsr.methods.constyle.constyle_model import MCLIRConStyleModel, MCLIRIRConStyleModel
from mclir_basicsr.checks.options import OptionError, check_options
from tests.helpers import CONSTYLE_TINY, batch, constyle_opt


def _count(net):
    return sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------- networks
def test_paper_network_parameter_counts():
    assert _count(build_network({'type': 'ConStyleNAFNet'})) == 13_930_704  # the authors' training model
    assert _count(build_network({'type': 'ConStyleNAFNet', 'Train': False})) == 12_739_872  # their inference model


def test_queue_momentum_and_style_negatives():
    torch.manual_seed(0)
    prompter = ConStyle(dim=16, queue_size=6, momentum=0.5, temperature=0.5)
    queue = prompter.queue.clone()
    k_before = [p.detach().clone() for p in prompter.encoder_k.parameters()]
    with torch.no_grad():  # make the query encoder differ from the key encoder
        for p in prompter.encoder_q.parameters():
            p.add_(0.1)
    lq, gt = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    q, feats, logits, key, older = prompter.contrast(lq, gt)
    for k0, k1, qp in zip(k_before, prompter.encoder_k.parameters(), prompter.encoder_q.parameters()):
        torch.testing.assert_close(k1, 0.5 * k0 + 0.5 * qp)  # momentum 0.5
    assert [f.shape[1:] for f in feats] == [(32, 8, 8), (64, 4, 4), (128, 2, 2)]
    torch.testing.assert_close(logits[:, 0], (q[1] * key).sum(1) / 0.5)
    torch.testing.assert_close(logits[:, 1:], q[1] @ queue.t() / 0.5)
    assert torch.equal(older[1], queue[0:4]) and torch.equal(older[0], queue[[4, 5, 0, 1]])  # wraps
    assert torch.equal(prompter.queue[:4], q[1].detach()) and int(prompter.queue_ptr) == 4  # queries enqueued
    prompter.contrast(lq, gt)
    assert int(prompter.queue_ptr) == 2 and torch.equal(prompter.queue[4:6], prompter.queue[4:6])


def test_keys_can_be_enqueued_and_encoder_only_prompters_cannot_contrast():
    prompter = ConStyle(dim=8, queue_size=8, enqueue='key')
    _, _, _, key, _ = prompter.contrast(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    assert torch.equal(prompter.queue[:2], key)
    with pytest.raises(RuntimeError, match='no key encoder'):
        ConStyle(momentum_encoder=False).contrast(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match='enqueue must be one of query, key'):
        ConStyle(enqueue='both')


def test_any_size_restores_at_its_size_and_the_queue_is_in_the_state_dict():
    net = build_network(CONSTYLE_TINY)
    out = net(torch.rand(2, 3, 19, 30), gt=torch.rand(2, 3, 19, 30))
    assert out['output'].shape == (2, 3, 19, 30)
    assert net.eval()(torch.rand(1, 3, 13, 9)).shape == (1, 3, 13, 9)
    state = net.state_dict()
    assert {'prompter.queue', 'prompter.queue_ptr', 'prompter.encoder_k.head1.0.weight'} <= set(state)
    other = build_network(CONSTYLE_TINY)
    other.load_state_dict(state)
    assert torch.equal(other.prompter.queue, net.prompter.queue) and int(other.prompter.queue_ptr) == 2


# ---------------------------------------------------------------- losses
def test_content_and_style_losses_match_naive_references():
    g = torch.Generator().manual_seed(0)
    q = [torch.randn(4, 8, generator=g, requires_grad=True) for _ in range(2)]
    older = [torch.randn(6, 8, generator=g) for _ in range(2)]
    key = torch.randn(4, 8, generator=g)
    assert ConStyleContentLoss(loss_weight=2)(q[1], key).item() == pytest.approx(
        2 * float(sum((q[1][i, j].item() - key[i, j].item()) ** 2 for i in range(4) for j in range(8))) / 32)
    expected = 0
    for qj, oj in zip(q, older):
        gram_q = [[sum(qj[a, c].item() * qj[b, c].item() for c in range(8)) / 32 for b in range(4)] for a in range(4)]
        gram_o = [[sum(oj[a, c].item() * oj[b, c].item() for c in range(8)) / 32 for b in range(4)] for a in range(4)]
        expected += sum((gram_q[a][b] - gram_o[a][b]) ** 2 for a in range(4) for b in range(4)) / 16
    assert StyleLoss()(q, older).item() == pytest.approx(-expected, rel=1e-5)


def test_style_cap_stops_the_push_beyond_max_distance():
    q = [(10 * torch.randn(4, 8)).requires_grad_() for _ in range(2)]
    older = [torch.randn(4, 8) for _ in range(2)]
    capped = ConStyleStyleLoss(max_distance=1.0)
    loss = capped(q, older)
    assert loss.item() == pytest.approx(-2.0) and min(capped.last_distances) > 1.0
    loss.backward()
    assert all(float(t.grad.abs().sum()) == 0 for t in q)  # past the cap: no gradient, nothing runs away
    uncapped = StyleLoss()(q, older)
    assert uncapped.item() < -2.0  # the authors' term keeps pushing


@pytest.mark.parametrize('cls, kwargs, message', [
    (ConStyleStyleLoss, dict(max_distance=0), r'max_distance must be in \(0, inf\)'),
    (ConStyleContentLoss, dict(reduction='sum'), 'reduction must be mean'),
    (ConStyleStyleLoss, dict(loss_weight=-1), r'loss_weight must be in \[0, inf\)'),
])
def test_loss_options_name_the_key(cls, kwargs, message):
    with pytest.raises(OptionError, match=message):
        cls(**kwargs)


def test_irconstyle_loads_a_trained_prompter_and_keeps_it_frozen(tmp_path):
    src, trained = _trained_prompter(tmp_path / 'a')
    opt = constyle_opt(tmp_path / 'b', model_type='IRConStyleModel', constyle_iter=None, aux=False)
    opt['path']['pretrain_constyle'] = str(src)
    check_options(opt)
    model = build_model(opt)
    for k, v in model.prompter.encoder_q.state_dict().items():
        assert torch.equal(v, trained[k]), k
    before = copy.deepcopy(model.prompter.encoder_q.state_dict())
    restorer = model.net_g.embed.weight.detach().clone()
    model.feed_data(batch(n=4, lq=16, scale=1))
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_pix'} and not torch.equal(restorer, model.net_g.embed.weight)
    assert all(torch.equal(v, before[k]) for k, v in model.prompter.encoder_q.state_dict().items())


def test_spn_composes_with_the_prompted_network(tmp_path):
    opt = constyle_opt(tmp_path, model_type='MCLIRModel', base_model_type='ConStyleModel')
    check_options(opt)
    model = build_model(opt)
    assert type(model) is MCLIRConStyleModel
    model.feed_data(batch(n=4, lq=16, scale=1))
    model.optimize_parameters(1)
    assert {'l_pix', 'l_CrossEntropy', 'l_spn', 'style_distance'} <= set(model.log_dict)
    assert all(n.shape == model.lq.shape for n in model.history.negatives(model.lq))


def _trained_prompter(tmp_path):
    first = build_model(constyle_opt(tmp_path))
    first.feed_data(batch(n=4, lq=16, scale=1))
    first.optimize_parameters(1)
    first.save_network([first.net_g, first.net_g], 'net_g', 1, param_key=['params', 'params_ema'])
    return tmp_path / 'models' / 'net_g_1.pth', first.prompter.encoder_q.state_dict()


def test_spn_on_a_frozen_pretrained_prompter_resumes_bit_exactly(tmp_path):
    """MCLIRModel on IRConStyleModel: the prompter loaded and never changed, SPN trains the restorer; 4 steps
    straight == 2 steps, saved, resumed, 2 more (network and copies bit-exact)."""
    src, trained = _trained_prompter(tmp_path / 'a')

    def model(root):
        opt = constyle_opt(root, model_type='MCLIRModel', base_model_type='IRConStyleModel', constyle_iter=None,
                           aux=False)
        opt['path']['pretrain_constyle'] = str(src)
        check_options(opt)
        return build_model(opt)

    def steps(m, its):
        for it in its:
            m.feed_data(batch(seed=it, n=4, lq=16, scale=1))
            m.optimize_parameters(it)

    straight = model(tmp_path / 'b')
    assert type(straight) is MCLIRIRConStyleModel
    assert all(torch.equal(v, trained[k]) for k, v in straight.prompter.encoder_q.state_dict().items())
    steps(straight, (1, 2))
    straight.save_training_state(epoch=0, current_iter=2)
    straight.save_network(straight.net_g, 'net_g', 2)
    state = torch.load(tmp_path / 'b' / 'training_states' / '2.state', weights_only=False)
    steps(straight, (3, 4))
    assert {'l_pix', 'l_spn'} <= set(straight.log_dict) and 'l_CrossEntropy' not in straight.log_dict
    assert all(torch.equal(v, trained[k]) for k, v in straight.prompter.encoder_q.state_dict().items())
    resumed = model(tmp_path / 'b')
    resumed.net_g.load_state_dict(torch.load(tmp_path / 'b' / 'models' / 'net_g_2.pth', weights_only=True)['params'])
    resumed.resume_training(state)
    steps(resumed, (3, 4))
    for a, b in [(straight.net_g, resumed.net_g)] + list(zip(straight.history.copies, resumed.history.copies)):
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize('model_type, change, message', [
    ('ConStyleModel', lambda o: o['train'].pop('ConStyle_iter'), 'train.ConStyle_iter is required'),
    ('ConStyleModel', lambda o: o['train'].update(ConStyle_iter=-1), 'train.ConStyle_iter must be >= 0'),
    ('ConStyleModel', lambda o: o.update(network_g={'type': 'NAFNet', 'width': 8}),
     r'ConStyle prompter \(ConStyleNAFNet, ConStyleRestormer, ConStyleMaxim\); network_g.type NAFNet is not one'),
    ('ConStyleModel', lambda o: o['network_g'].update(Train=False), 'network_g.Train: false builds no key encoder'),
    ('ConStyleModel', lambda o: o['train'].update(mixing_augs={'mixup': True, 'mixup_beta': 0}), 'mixup_beta'),
    ('ConStyleModel', lambda o: o['train'].update(style_opt={'type': 'StyleLos'}), "Did you mean StyleLoss"),
    ('IRConStyleModel', lambda o: o['train'].pop('ConStyle_iter'), 'path.pretrain_constyle is required'),
])
def test_bad_constyle_options_name_the_key(tmp_path, model_type, change, message):
    opt = constyle_opt(tmp_path, model_type=model_type, aux=model_type == 'ConStyleModel')
    change(opt)
    with pytest.raises(OptionError, match=message):
        check_options(opt)


def test_pretrained_prompter_file_is_checked_before_training(tmp_path):
    from mclir_basicsr.checks.preflight.checkpoints import check_pretrained_prompter
    opt = constyle_opt(tmp_path, model_type='IRConStyleModel', constyle_iter=None, aux=False)
    opt['path']['pretrain_constyle'] = str(tmp_path / 'x.pth')
    with pytest.raises(OptionError, match='path.pretrain_constyle: .*x.pth does not exist'):
        check_pretrained_prompter(opt)
    torch.save({'params_ema': {'conv.weight': torch.zeros(1)}}, tmp_path / 'x.pth')
    with pytest.raises(OptionError, match=r'holds no prompter.encoder_q.\* weights'):
        check_pretrained_prompter(opt)
    opt['path']['param_key_constyle'] = 'weights'
    with pytest.raises(OptionError, match="has no 'weights' entry"):
        check_pretrained_prompter(opt)


def test_irconstyle_refuses_the_prompter_losses(tmp_path):
    opt = constyle_opt(tmp_path, model_type='IRConStyleModel', constyle_iter=None)
    with pytest.raises(OptionError, match='does not use it'):
        check_options(opt)
