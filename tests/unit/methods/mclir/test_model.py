"""MCLIRModel in-process: built through the registry, training step, refresh schedule, checkpoints, other bases."""
import copy

import pytest
import torch

from basicsr.models import build_model
from basicsr.models.sr_model import SRModel
from basicsr.models.swinir_model import SwinIRModel
from basicsr.utils.registry import MODEL_REGISTRY
from mclir_basicsr.methods.mclir.mclir_model import MCLIRModel, MCLIRSwinIRModel, mclir_model_class
from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.runtime.resume import load_resume_state
from tests.helpers import batch, make_opt

TINY_SWINIR = {'type': 'SwinIR', 'upscale': 2, 'in_chans': 3, 'img_size': 16, 'window_size': 4, 'img_range': 1.,
               'depths': [1], 'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffledirect',
               'resi_connection': '1conv'}


def _states(model):
    return [copy.deepcopy(c.module.state_dict()) for c in model.history.copies]


def _train(model, iters, start=1):
    for it in range(start, start + iters):
        model.feed_data(batch(seed=it))
        model.optimize_parameters(it)


def test_build_through_registry_and_one_step(tmp_path):
    model = build_model(make_opt(tmp_path))
    assert type(model) is MCLIRModel
    assert len(model.history) == 2 and model.net_g.training
    model.feed_data(batch())
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert set(log) == {'l_pix', 'l_spn', 'spn_ratio', 'spn_dist_copy0', 'spn_dist_copy1', 'refreshes_copy0',
                        'refreshes_copy1'} and log['l_spn'] < 0 < log['l_pix']
    assert log['spn_ratio'] == pytest.approx(abs(log['l_spn']) / log['l_pix'])
    weight = model.cri_spn.loss_weight  # subtract form, all copies: l_spn = -weight * mean of the distances
    assert -weight * (log['spn_dist_copy0'] + log['spn_dist_copy1']) / 2 == pytest.approx(log['l_spn'], rel=1e-5)
    # the copies and VGG never receive gradients
    assert all(p.grad is None and not p.requires_grad for c in model.history.copies for p in c.module.parameters())
    assert all(p.grad is None for p in model.cri_spn.parameters())
    assert all(p.grad is not None for p in model.net_g.parameters())
    assert all(not c.module.training for c in model.history.copies)


def test_negatives_are_computed_on_the_same_lq_in_eval_without_grad(tmp_path):
    model = build_model(make_opt(tmp_path))
    seen = {}
    forward = model.cri_spn.forward

    def spy(output, negatives, gt=None, lq=None):
        seen['negs'], seen['lq'] = negatives, lq
        return forward(output, negatives, gt=gt, lq=lq)

    model.cri_spn.forward = spy
    data = batch()
    model.feed_data(data)
    expected = [c.module(data['lq']) for c in model.history.copies]
    model.optimize_parameters(1)
    assert seen['lq'] is model.lq
    for got, want in zip(seen['negs'], expected):
        assert not got.requires_grad and torch.equal(got, want.detach())


def test_round_robin_negatives_in_training_step(tmp_path):
    opt = make_opt(tmp_path)
    opt['train']['history']['negatives'] = 'round_robin'
    model = build_model(opt)
    seen = []
    forward = model.cri_spn.forward

    def spy(output, negatives, gt=None, lq=None):
        seen.append(len(negatives))
        return forward(output, negatives, gt=gt, lq=lq)

    model.cri_spn.forward = spy
    calls = [0, 0]
    for i, c in enumerate(model.history.copies):
        c.module.register_forward_hook(lambda m, a, o, i=i: calls.__setitem__(i, calls[i] + 1))
    _train(model, 4)
    assert seen == [1, 1, 1, 1] and calls == [2, 2]  # iterations 1..4 use copies 1, 0, 1, 0


def test_refresh_after_optimizer_step_on_schedule(tmp_path):
    model = build_model(make_opt(tmp_path))  # copies: (period 2, decay 0.5), (period 3, decay 0.25)
    for it in range(1, 7):
        before = _states(model)
        model.feed_data(batch(seed=it))
        model.optimize_parameters(it)
        net = model.net_g.state_dict()
        for i, (period, decay) in enumerate([(2, 0.5), (3, 0.25)]):
            after = model.history.copies[i].module.state_dict()
            for k, v in after.items():
                if it % period == 0:  # refreshed from the weights AFTER this step
                    want = torch.lerp(before[i][k], net[k], 1 - decay)
                    assert torch.equal(v, want), (it, i, k)
                else:
                    assert torch.equal(v, before[i][k]), (it, i, k)


def test_init_from_pretrained_plain_basicsr_checkpoint(tmp_path):
    plain = build_model(make_opt(tmp_path / 'plain', model_type='SRModel'))
    _train(plain, 2)
    plain.save(epoch=0, current_iter=2)
    path = tmp_path / 'plain' / 'models' / 'net_g_2.pth'
    opt = make_opt(tmp_path / 'mclir', history={'init_decay': 0.0, 'copies': [{'period': 5, 'decay': 0.5}]})
    opt['path']['pretrain_network_g'] = str(path)
    model = build_model(opt)
    for k, v in plain.net_g.state_dict().items():
        assert torch.equal(model.net_g.state_dict()[k], v)
        assert torch.equal(model.history.copies[0].module.state_dict()[k], v)  # init_decay 0: exact copy


def test_fresh_init_is_seeded_and_leaves_global_rng(tmp_path):
    torch.manual_seed(1)
    ref = build_model(make_opt(tmp_path / 'a', model_type='SRModel'))
    after_sr = torch.rand(4)
    torch.manual_seed(1)
    model = build_model(make_opt(tmp_path / 'b'))
    after_mclir = torch.rand(4)
    assert torch.equal(after_sr, after_mclir)  # copies and VGG consumed no global randomness
    for k, v in ref.net_g.state_dict().items():
        assert torch.equal(model.net_g.state_dict()[k], v)  # same initial network as the baseline arm
    torch.manual_seed(99)  # the fresh initialisations depend on manual_seed and the copy index only
    again = build_model(make_opt(tmp_path / 'c'))
    for i in range(2):
        a, b = model._fresh_network(i).state_dict(), again._fresh_network(i).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    a, b = model._fresh_network(0).state_dict(), model._fresh_network(1).state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_save_resume_round_trip_bit_exact(tmp_path):
    opt = make_opt(tmp_path)
    model = build_model(opt)
    _train(model, 4)
    model.save(epoch=0, current_iter=4)
    saved_copies = _states(model)
    saved_net = copy.deepcopy(model.net_g.state_dict())
    _train(model, 3, start=5)
    reference_copies, reference_net = _states(model), copy.deepcopy(model.net_g.state_dict())

    opt2 = make_opt(tmp_path)
    opt2['auto_resume'] = True
    state = load_resume_state(opt2)  # our CPU loader, finds the latest state
    assert state['iter'] == 4 and opt2['path']['pretrain_network_g'].endswith('net_g_4.pth')
    resumed = build_model(opt2)
    resumed.resume_training(state)
    for a, b in zip(saved_copies, _states(resumed)):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(saved_net[k], v) for k, v in resumed.net_g.state_dict().items())
    _train(resumed, 3, start=5)  # same data, same steps -> same weights and copies as the uninterrupted run
    for a, b in zip(reference_copies, _states(resumed)):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(reference_net[k], v) for k, v in resumed.net_g.state_dict().items())


def test_resume_with_other_copy_count_is_refused(tmp_path):
    model = build_model(make_opt(tmp_path))
    _train(model, 1)
    model.save(epoch=0, current_iter=1)
    opt = make_opt(tmp_path, history={'copies': [{'period': 2, 'decay': 0.5}]})
    opt['auto_resume'] = True
    state = load_resume_state(opt)
    with pytest.raises(ValueError, match='holds 2 history copies but the options configure 1'):
        build_model(opt).resume_training(state)


def test_checkpoint_is_a_plain_basicsr_checkpoint(tmp_path):
    model = build_model(make_opt(tmp_path, extra_train={'ema_decay': 0.9}))
    _train(model, 1)
    model.save(epoch=0, current_iter=1)
    ckpt = torch.load(tmp_path / 'models' / 'net_g_1.pth', weights_only=True)
    assert set(ckpt) == {'params', 'params_ema'}
    state = torch.load(tmp_path / 'training_states' / '1.state', weights_only=True)
    assert set(state) == {'epoch', 'iter', 'optimizers', 'schedulers', 'mclir'}
    history = state['mclir']['history']  # torch's state dict of the HistoryBank, on the CPU
    assert history.keys() == model.history.state_dict().keys()
    assert {k.split('.')[1] for k in history} == {'0', '1'} and all(v.device.type == 'cpu' for v in history.values())
    assert set(state['mclir']['rng']) >= {'python', 'numpy', 'torch'}
    test_opt = make_opt(tmp_path / 'test', model_type='SRModel')
    test_opt['is_train'] = False
    test_opt['path']['pretrain_network_g'] = str(tmp_path / 'models' / 'net_g_1.pth')
    sr = build_model(test_opt)
    assert all(torch.equal(v, model.net_g.state_dict()[k]) for k, v in sr.net_g.state_dict().items())


def test_swinir_base_by_name_and_by_key(tmp_path):
    assert MODEL_REGISTRY.get('MCLIRSwinIRModel') is MCLIRSwinIRModel
    assert issubclass(MCLIRSwinIRModel, SwinIRModel) and issubclass(MCLIRSwinIRModel, MCLIRModel)
    for kw in ({'model_type': 'MCLIRSwinIRModel'}, {'base_model_type': 'SwinIRModel'}):
        opt = make_opt(tmp_path, network=TINY_SWINIR, **kw)
        model = build_model(opt)
        assert type(model) is MCLIRSwinIRModel
        _train(model, 2)
        assert 'l_spn' in model.get_current_log()
        model.feed_data(batch(lq=10))  # not a multiple of the window: SwinIRModel.test pads
        model.test()
        assert model.output.shape[-2:] == (20, 20)


def test_user_registered_model_class(tmp_path):
    calls = []

    @MODEL_REGISTRY.register()
    class UserTestModel(SRModel):

        def feed_data(self, data):
            calls.append('feed')
            super().feed_data(data)

    opt = make_opt(tmp_path, base_model_type='UserTestModel')
    model = build_model(opt)
    assert type(model).__name__ == 'MCLIRUserTestModel' and isinstance(model, UserTestModel)
    assert MODEL_REGISTRY.get('MCLIRUserTestModel') is type(model)
    assert mclir_model_class(UserTestModel) is type(model)  # cached
    _train(model, 2)
    assert calls == ['feed', 'feed'] and 'l_spn' in model.get_current_log()


def test_base_with_own_step_is_refused():

    class OwnStep(SRModel):

        def optimize_parameters(self, current_iter):
            pass

    with pytest.raises(OptionError, match='has its own optimize_parameters'):
        mclir_model_class(OwnStep)
    with pytest.raises(OptionError, match='not a subclass of SRModel'):
        mclir_model_class(dict)


def test_perceptual_and_ema_kept(tmp_path):
    from mclir_basicsr.losses.vgg_weights import vgg_source
    opt = make_opt(tmp_path, extra_train={'ema_decay': 0.5, 'perceptual_opt': {
        'type': 'PerceptualLoss', 'layer_weights': {'conv1_1': 1.0}, 'vgg_type': 'vgg11', 'perceptual_weight': 1.0,
        'style_weight': 0}})
    with vgg_source('random'):
        model = build_model(opt)
    _train(model, 2)
    log = model.get_current_log()
    assert {k for k in log if k.startswith('l_')} == {'l_pix', 'l_percep', 'l_spn'}
    assert log['spn_ratio'] == pytest.approx(abs(log['l_spn']) / (log['l_pix'] + log['l_percep']))
    assert hasattr(model, 'net_g_ema')


def test_user_registered_network_with_batchnorm(tmp_path):
    """Any network in ARCH_REGISTRY works, one registered by user code included; its BatchNorm statistics are
    averaged into the copies like parameters."""
    from torch import nn

    from basicsr.utils.registry import ARCH_REGISTRY

    @ARCH_REGISTRY.register()
    class UserTestNet(nn.Module):

        def __init__(self, feat=4):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, feat, 3, padding=1), nn.BatchNorm2d(feat), nn.ReLU(),
                                      nn.Conv2d(feat, 12, 3, padding=1), nn.PixelShuffle(2))

        def forward(self, x):
            return self.body(x)

    opt = make_opt(tmp_path, network={'type': 'UserTestNet', 'feat': 4},
                   history={'init_decay': 0.0, 'copies': [{'period': 1, 'decay': 0.5}]})
    model = build_model(opt)
    bn_copy = model.history.copies[0].module.body[1]
    before = bn_copy.running_mean.clone()
    _train(model, 1)
    bn_net = model.net_g.body[1]
    assert torch.equal(bn_copy.running_mean, torch.lerp(before, bn_net.running_mean, 0.5))
    assert bn_copy.num_batches_tracked.item() == bn_net.num_batches_tracked.item() == 1


def test_state_written_by_format_2_loads_and_unknown_format_is_refused(tmp_path):
    """States of the previous release (format 2: a list of per-copy dicts) still resume; others are refused."""
    model = build_model(make_opt(tmp_path))
    _train(model, 2)
    model.save(epoch=0, current_iter=2)
    state = torch.load(tmp_path / 'training_states' / '2.state', weights_only=True)
    copies = [{k[len(f'copies.{i}.module.'):]: v for k, v in state['mclir']['history'].items()
               if k.startswith(f'copies.{i}.module.')} for i in range(2)]
    old = copy.deepcopy(state)
    old['mclir'].update(format=2, history={'format': 1, 'init_decay': 0.1, 'periods': [2, 3], 'decays': [0.5, 0.25],
                                           'copies': copies})
    resumed = build_model(make_opt(tmp_path))
    resumed.resume_training(old)
    assert resumed.history.digests() == model.history.digests()
    old['mclir']['format'] = 7
    with pytest.raises(ValueError, match='state format 7, expected 3 or 2'):
        build_model(make_opt(tmp_path)).resume_training(old)


def test_two_base_classes_with_one_name_get_two_classes():
    """Two different SRModel subclasses that share a __name__ (two plugins' ``MyModel``) both get an MCLIR class."""
    first = type('TwinNameModel', (SRModel, ), {'__module__': 'plugin_a.models'})
    second = type('TwinNameModel', (SRModel, ), {'__module__': 'plugin_b.models'})
    cls_a, cls_b = mclir_model_class(first), mclir_model_class(second)
    assert cls_a is not cls_b and issubclass(cls_a, first) and issubclass(cls_b, second)
    assert mclir_model_class(first) is cls_a and mclir_model_class(second) is cls_b  # built once per base class
    assert MODEL_REGISTRY.get('MCLIRTwinNameModel') is cls_a
    assert MODEL_REGISTRY.get('MCLIRTwinNameModel_plugin_b_models') is cls_b
