"""One training step for every model class (mclir_basicsr.training.step): every class of the plugin steps through it,
so each gets the divergence guard, gradient clipping, AMP and the same training-state entries; SPN on another method
is one composition (mclir_model_class), not a hand-written twin."""
import math

import pytest
import torch
from basicsr.models import build_model
from basicsr.utils.registry import MODEL_REGISTRY

from mclir_basicsr.methods.constyle.constyle_model import ConStyleModel, IRConStyleModel
from mclir_basicsr.methods.dsrir.dsrir_model import DSRIRModel, MCLIRDSRIRModel
from mclir_basicsr.methods.mclir.mclir_model import MCLIRModel, mclir_model_class
from mclir_basicsr.training.step import TrainingStep
from tests.helpers import dcpt_opt, digest, labelled_batch


def _plugin_classes():
    return [(name, cls) for name, cls in MODEL_REGISTRY if cls.__module__.startswith('mclir_basicsr.')]


def test_every_model_class_of_the_plugin_trains_with_the_one_step():
    for name, cls in _plugin_classes():
        assert issubclass(cls, TrainingStep), name
        assert cls.optimize_parameters is TrainingStep.optimize_parameters, name


def test_spn_on_another_method_is_the_one_composition():
    assert mclir_model_class(DSRIRModel) is MCLIRDSRIRModel
    assert MCLIRDSRIRModel.__mro__[1:3] == (MCLIRModel, DSRIRModel) and MCLIRDSRIRModel.mclir_base is DSRIRModel
    assert MODEL_REGISTRY.get('MCLIRConStyleModel').__mro__[1:3] == (MCLIRModel, ConStyleModel)
    assert MODEL_REGISTRY.get('MCLIRIRConStyleModel').__mro__[1:3] == (MCLIRModel, IRConStyleModel)
    keys = MCLIRDSRIRModel.plugin_option_keys['train']
    assert {'history', 'spn_opt', 'stage_uncertainty_opt', 'pocl_opt', 'amp', 'grad_clip'} <= set(keys)
    assert 'path' in MODEL_REGISTRY.get('MCLIRIRConStyleModel').plugin_option_keys  # IRConStyle's prompter file


def _dcpt(tmp_path, **train):
    opt = dcpt_opt(tmp_path)
    opt['train'].update(train)
    model = build_model(opt)
    model.feed_data(labelled_batch())
    return model


def test_dcpt_steps_both_optimizers_through_the_guard(tmp_path):
    model = _dcpt(tmp_path)
    net_g, net_dc = digest(model.net_g), digest(model.net_dc)
    model.optimize_parameters(1)
    assert all(not torch.equal(a, b) for a, b in zip(net_g[:1], digest(model.net_g)[:1]))
    assert any(not torch.equal(a, b) for a, b in zip(net_dc, digest(model.net_dc)))
    assert 0 <= model.log_dict['acc'] <= 100 and model.guard.bad_steps == 0


def test_dcpt_skips_a_non_finite_step_and_keeps_both_networks(tmp_path):
    model = _dcpt(tmp_path, divergence_guard={'max_consecutive_bad_steps': 3})
    model.cri_classify.forward = lambda logits, label: logits.sum() * math.nan
    net_g, net_dc = digest(model.net_g), digest(model.net_dc)
    model.optimize_parameters(1)
    assert model.guard.bad_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(net_g + net_dc, digest(model.net_g) + digest(model.net_dc)))
    state = model.plugin_training_state()
    assert state['bad_steps'] == 1 and state['amp'] == {} and state['format'] == 1


def test_dcpt_clips_the_gradients_of_both_networks(tmp_path):
    model = _dcpt(tmp_path, grad_clip={'max_norm': 1e-3})
    model.optimize_parameters(1)
    assert model.log_dict['grad_norm'] > 1e-3  # logged before clipping
    grads = [p.grad for o in model.optimizers for g in o.param_groups for p in g['params'] if p.grad is not None]
    assert torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) <= 1e-3 * 1.001


@pytest.mark.parametrize('dtype', ['bf16'])
def test_dcpt_trains_under_autocast(tmp_path, dtype):
    model = _dcpt(tmp_path, amp={'enabled': True, 'dtype': dtype})
    model.optimize_parameters(1)
    assert model.precision.enabled and math.isfinite(model.log_dict['l_cls'])
