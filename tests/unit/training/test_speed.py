"""train.amp, train.compile and the shared VGG pass (perceptual_opt + spn_opt)."""
import copy
import logging

import pytest
import torch

from basicsr.models import build_model

from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features, vgg_source
from mclir_basicsr.losses.shared_vgg import LayerView, SharedVGG, same_feature_space
from mclir_basicsr.models import mclir_model
from mclir_basicsr.training.step_guard import TrainingDiverged
from mclir_basicsr.checks.options import OptionError, check_options
from mclir_basicsr.methods.mclir.options import parse_amp, parse_compile
from tests.helpers import batch, fed_mclir_model, make_opt, net_g_params, same_tensors

LAYERS = {'relu1_1': 0.5, 'relu2_1': 0.5}


@pytest.fixture
def log(caplog, monkeypatch):
    """caplog for BasicSR's root logger (which does not propagate once get_root_logger has set it up)."""
    from basicsr.utils import get_root_logger
    monkeypatch.setattr(get_root_logger(), 'propagate', True)
    caplog.set_level(logging.INFO, logger='basicsr')
    return caplog


# ---------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize('train, message', [
    ({'amp': {'enabled': True, 'dtype': 'fp8'}}, 'train.amp.dtype must be one of bf16, fp16'),
    ({'amp': {'enabled': True, 'dtpye': 'bf16'}}, 'Did you mean train.amp.dtype?'),
    ({'amp': {'enabled': 'yes'}}, 'train.amp.enabled must be true or false'),
    ({'amp': {'enabled': True, 'dtype': 'bf16', 'init_scale': 1024}},
     'train.amp.init_scale only applies to dtype: fp16'),
    ({'amp': {'enabled': True, 'dtype': 'fp16', 'init_scale': 0}}, 'train.amp.init_scale must be in (0'),
    ({'amp': True}, 'train.amp must be a mapping'),
    ({'compile': {'enabled': True, 'backend': 'inductr'}}, 'Did you mean inductor?'),
    ({'compile': {'enabled': True, 'mode': 'fast'}}, 'train.compile.mode must be one of default, reduce-overhead'),
    ({'compile': {'enabled': True, 'targets': ['net_g', 'vgg16']}}, "unknown target 'vgg16'. Did you mean vgg?"),
    ({'compile': {'enabled': True, 'targets': []}}, 'train.compile.targets must be a non-empty list'),
    ({'compile': {'enabled': True, 'dynamic': 'auto'}}, 'train.compile.dynamic must be true or false'),
    ({'compile': {'enabled': True, 'fulgraph': True}}, 'Did you mean train.compile.fullgraph?'),
    ({'ampp': {'enabled': True}}, 'unknown key train.ampp. Did you mean train.amp?'),
    ({'compille': {'enabled': True}}, 'Did you mean train.compile?'),
])
def test_bad_speed_options_name_the_key(tmp_path, train, message):
    opt = make_opt(tmp_path, extra_train=train)
    with pytest.raises(OptionError, match=None) as err:
        check_options(opt)
    assert message in str(err.value)


def test_speed_options_refused_on_a_model_that_ignores_them(tmp_path):
    opt = make_opt(tmp_path, model_type='SRModel', extra_train={'amp': {'enabled': True}})
    with pytest.raises(OptionError, match='train.amp set, but model_type SRModel does not use it'):
        check_options(opt)


def test_speed_option_defaults():
    amp = parse_amp({'amp': {'enabled': True, 'dtype': 'fp16'}})
    assert (amp.enabled, amp.dtype, amp.init_scale) == (True, 'float16', 65536.0)
    assert not parse_amp({}).enabled
    comp = parse_compile({'compile': {'enabled': True, 'targets': 'vgg'}})
    assert (comp.backend, comp.mode, comp.dynamic, comp.fullgraph, comp.targets) == (
        'inductor', None, False, False, ('vgg', ))
    assert parse_compile({'compile': {'dynamic': None}}).dynamic is None
    assert parse_compile({}).targets == ('net_g', 'history', 'vgg') and not parse_compile({}).enabled


# ---------------------------------------------------------------------------------------------- AMP
def test_bf16_autocast_runs_the_step_in_bf16_and_keeps_float32_weights(tmp_path, log, monkeypatch):
    from mclir_basicsr.training import precision
    monkeypatch.setattr(precision, 'cpu_has_native_half', lambda: False)
    model = fed_mclir_model(tmp_path, amp={'enabled': True, 'dtype': 'bf16'})
    assert 'train.amp on a CPU without native bf16/fp16 instructions' in log.text
    seen = []
    model.net_g.conv_first.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    model.history.copies[0].module.conv_first.register_forward_hook(lambda m, i, o: seen.append(('copy', o.dtype)))
    before = net_g_params(model)
    model.optimize_parameters(1)
    assert ('copy', torch.bfloat16) in seen and torch.bfloat16 in seen
    assert torch.isfinite(torch.tensor(model.log_dict['l_spn']))
    assert not same_tensors(before, net_g_params(model))
    assert all(v.dtype == torch.float32 for v in model.net_g.state_dict().values())
    assert not model.precision.scaling
    model.test()  # validation path: float32 (no autocast outside the step)
    assert model.output.dtype == torch.float32


def test_fp16_non_finite_loss_with_finite_gradients_moves_nothing(tmp_path):
    """An infinite GT gives an infinite L1 loss whose gradient (a sign) is finite. GradScaler.step() would then
    call optimizer.step(): the skipped step must leave weights, optimiser state, EMA and copies untouched."""
    model = fed_mclir_model(tmp_path, amp={'enabled': True, 'dtype': 'fp16', 'init_scale': 1024.0}, ema_decay=0.5,
                            history={'copies': [{'period': 1, 'decay': 0.0}]})
    model.optimize_parameters(1)  # a good step, so that Adam has state to compare
    before = (net_g_params(model), copy.deepcopy(model.optimizer_g.state_dict()),
              {k: v.clone() for k, v in model.net_g_ema.state_dict().items()}, model.history.digests())
    bad = batch(seed=5)
    bad['gt'][:] = float('inf')
    model.feed_data(bad)
    model.optimize_parameters(2)
    assert model.guard.bad_steps == 1
    assert same_tensors(before[0], net_g_params(model))
    after_opt = model.optimizer_g.state_dict()
    assert after_opt['state'].keys() == before[1]['state'].keys()
    for pid, st in before[1]['state'].items():
        assert all(torch.equal(st[k], after_opt['state'][pid][k]) for k in st)
    assert same_tensors(before[2], model.net_g_ema.state_dict())
    assert model.history.digests() == before[3]


def test_fp16_gradients_that_overflow_unscaled_count_as_bad(tmp_path):
    spn = dict(make_opt(tmp_path)['train']['spn_opt'], loss_weight=1e30)
    opt = make_opt(tmp_path, spn=spn, extra_train={'amp': {'enabled': True, 'dtype': 'fp16', 'init_scale': 1.0},
                                                   'divergence_guard': {'max_consecutive_bad_steps': 2}})
    model = build_model(opt)
    model.feed_data(batch())
    before = net_g_params(model)
    model.optimize_parameters(1)  # scale 1 -> 0.5: below MIN_HEALTHY_SCALE, so the guard counts it
    assert model.guard.bad_steps == 1 and same_tensors(before, net_g_params(model))
    with pytest.raises(TrainingDiverged, match='2 consecutive steps'):
        model.optimize_parameters(2)


def test_fp16_scaler_state_saved_and_restored(tmp_path):
    amp = {'enabled': True, 'dtype': 'fp16', 'init_scale': 2.0 ** 40}
    model = fed_mclir_model(tmp_path, amp=amp)
    for it in range(1, 4):
        model.optimize_parameters(it)
    assert model.precision.scale == 2.0 ** 37
    model.save_training_state(epoch=0, current_iter=3)
    state = torch.load(tmp_path / 'training_states' / '3.state', weights_only=True)
    assert state['mclir']['amp']['scaler']['scale'] == 2.0 ** 37
    resumed = fed_mclir_model(tmp_path, amp=amp)
    resumed.resume_training(state)
    assert resumed.precision.scale == 2.0 ** 37
    assert resumed.precision.scaler.state_dict() == model.precision.scaler.state_dict()


def test_state_without_scaler_warns_and_keeps_init_scale(tmp_path, log):
    plain = fed_mclir_model(tmp_path)
    plain.optimize_parameters(1)
    plain.save_training_state(epoch=0, current_iter=1)
    state = torch.load(tmp_path / 'training_states' / '1.state', weights_only=True)
    assert state['mclir']['amp'] == {}
    model = fed_mclir_model(tmp_path, amp={'enabled': True, 'dtype': 'fp16', 'init_scale': 256.0})
    model.resume_training(state)
    assert 'holds no gradient-scaler state' in log.text and model.precision.scale == 256.0


def test_checkpoint_saved_from_a_compiled_network_loads(tmp_path):
    src = build_model(make_opt(tmp_path / 'src', model_type='SRModel'))
    wrapped = {f'_orig_mod.{k}': v for k, v in src.net_g.state_dict().items()}
    path = tmp_path / 'compiled_net.pth'
    torch.save({'params': wrapped}, path)
    opt = make_opt(tmp_path / 'dst', model_type='SRModel')
    opt['path']['pretrain_network_g'] = str(path)
    from mclir_basicsr.checks.preflight import check_inputs
    check_inputs(opt)  # the key check accepts _orig_mod. prefixes too
    dst = build_model(opt)
    assert same_tensors(src.net_g.state_dict(), dst.net_g.state_dict())


# ---------------------------------------------------------------------------------------------- shared VGG
@pytest.fixture
def vgg11_file(tmp_path):
    torch.manual_seed(3)
    feats = build_torchvision_vgg_features('vgg11')
    path = tmp_path / 'vgg11_test.pth'
    torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, path)
    return str(path)


def _perceptual_model(tmp_path, vgg_file, share=True, monkeypatch=None, percep_layers=None):
    spn = {'type': 'SPNLoss', 'loss_weight': 0.01, 'vgg_type': 'vgg11', 'layer_weights': dict(LAYERS),
           'vgg_weights': vgg_file}
    percep = {'type': 'PerceptualLoss', 'vgg_type': 'vgg11', 'layer_weights': percep_layers or {'relu1_1': 1.0},
              'perceptual_weight': 0.1, 'style_weight': 0.05}
    opt = make_opt(tmp_path, spn=spn, extra_train={'perceptual_opt': percep})
    if not share:
        monkeypatch.setattr(mclir_model, 'share_vgg_features', lambda *losses: None)
    with vgg_source(vgg_file):
        model = build_model(opt)
    model.feed_data(batch())
    return model


def test_shared_vgg_pass_same_losses_and_update_one_pass_fewer(tmp_path, vgg11_file, monkeypatch):
    shared = _perceptual_model(tmp_path / 's', vgg11_file)
    assert isinstance(shared.shared_vgg, SharedVGG)
    assert isinstance(shared.cri_spn.vgg, LayerView) and shared.cri_perceptual.vgg.shared is shared.shared_vgg
    assert shared.shared_vgg.extractor.layer_name_list == ['relu1_1', 'relu2_1']
    separate = _perceptual_model(tmp_path / 'p', vgg11_file, share=False, monkeypatch=monkeypatch)
    assert separate.shared_vgg is None
    separate.net_g.load_state_dict(shared.net_g.state_dict())
    for c_sep, c_sh in zip(separate.history.copies, shared.history.copies):
        c_sep.module.load_state_dict(c_sh.module.state_dict())
    calls = []
    for m in (separate.cri_spn.vgg, separate.cri_perceptual.vgg):
        m.register_forward_hook(lambda *a: calls.append('separate'))
    shared.optimize_parameters(1)
    separate.optimize_parameters(1)
    # shared: output (once), GT (perceptual), negatives (SPN batch); separate: the output twice
    assert shared.shared_vgg.calls == 3 and calls.count('separate') == 4
    for key in ('l_pix', 'l_percep', 'l_style', 'l_spn'):
        assert shared.log_dict[key] == pytest.approx(separate.log_dict[key], rel=1e-5)
    a, b = net_g_params(shared), net_g_params(separate)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert shared.shared_vgg._memo is None  # nothing (no graph) kept after the step


def test_different_feature_spaces_are_not_shared(tmp_path, vgg11_file):
    model = _perceptual_model(tmp_path, 'random')  # SPN seeded random VGG, perceptual from vgg_source('random')
    assert model.shared_vgg is None and not isinstance(model.cri_spn.vgg, LayerView)


def test_same_feature_space_checks_weights_norm_and_type(vgg11_file):
    from basicsr.archs.vgg_arch import VGGFeatureExtractor
    with vgg_source(vgg11_file):
        a = VGGFeatureExtractor(['relu1_1'], vgg_type='vgg11')
        b = VGGFeatureExtractor(['relu2_1'], vgg_type='vgg11')
        c = VGGFeatureExtractor(['relu2_1'], vgg_type='vgg11', use_input_norm=False)
        d = VGGFeatureExtractor(['relu2_1'], vgg_type='vgg11', pooling_stride=1)
    assert same_feature_space(a, b) and same_feature_space(b, a)
    assert not same_feature_space(a, c) and not same_feature_space(b, d)
    e = copy.deepcopy(b)
    with torch.no_grad():
        e.vgg_net.conv1_1.weight[0, 0, 0, 0] += 1e-3
    assert not same_feature_space(a, e)
