"""train.amp and train.compile on MCLIRModel steps (seconds each): an fp16 overflow skipped by the scaler, not
counted; compile wrapping only the training step; inductor's compiled step equal to eager. The options and the shared
VGG pass: unit/training/test_speed.py."""
import shutil

import pytest
import torch

from tests.helpers import fed_mclir_model, net_g_params, same_tensors


@pytest.mark.e2e  # slow (seconds): outside the fast unit tier
def test_fp16_overflow_is_skipped_by_the_scaler_not_counted(tmp_path):
    model = fed_mclir_model(tmp_path, amp={'enabled': True, 'dtype': 'fp16', 'init_scale': 2.0 ** 40},
                            divergence_guard={'enabled': True, 'max_consecutive_bad_steps': 1})
    before = net_g_params(model)
    copies_before = model.history.digests()
    model.optimize_parameters(6)  # 6: both copies (periods 2 and 3) would refresh after a real step
    assert same_tensors(before, net_g_params(model))
    assert copies_before == model.history.digests()
    assert model.precision.scale == 2.0 ** 39 and model.guard.bad_steps == 0
    for it in range(7, 60):  # the scale comes down to one that fits float16, then the weights move
        model.optimize_parameters(it)
        if not same_tensors(before, net_g_params(model)):
            break
    assert not same_tensors(before, net_g_params(model)) and model.precision.scale < 2.0 ** 30


# ---------------------------------------------------------------------------------------------- compile
@pytest.mark.e2e  # slow (seconds): outside the fast unit tier
def test_compile_wraps_only_the_training_step(tmp_path):
    model = fed_mclir_model(tmp_path, compile={'enabled': True, 'backend': 'eager'})
    assert model.train_net_g is not model.net_g and model.train_net_g._orig_mod is model.net_g
    assert all(c._compiled[0]._orig_mod is c.module for c in model.history.copies)
    assert isinstance(model.cri_spn.vgg, torch.nn.Module) and hasattr(model.cri_spn.vgg, '_orig_mod')
    before = net_g_params(model)
    for it in range(1, 4):
        model.optimize_parameters(it)
    assert not same_tensors(before, net_g_params(model))
    model.save_network(model.net_g, 'net_g', 3)
    model.save_training_state(epoch=0, current_iter=3)
    saved = torch.load(tmp_path / 'models' / 'net_g_3.pth', weights_only=True)['params']
    state = torch.load(tmp_path / 'training_states' / '3.state', weights_only=True)
    keys = list(saved) + list(state['mclir']['history'])
    assert keys and not any('_orig_mod' in k or k.startswith('module.') for k in keys)
    assert saved.keys() == model.net_g.state_dict().keys()
    # the copies refreshed through their plain modules are what the compiled callables compute with
    x = model.lq
    for c in model.history.copies:
        assert torch.equal(c(x), c.module(x))


@pytest.mark.e2e  # slow (seconds): outside the fast unit tier
@pytest.mark.skipif(not (shutil.which('g++') or shutil.which('c++')), reason='inductor on CPU needs a C++ compiler')
def test_inductor_compiled_step_matches_eager(tmp_path):
    """The real backend (inductor, C++ on CPU): the compiled training forward and its gradients equal eager's, and
    a whole step logs the same losses. (Weights after Adam steps are not compared: Adam's first steps are +-lr
    wherever a gradient is near zero, so float rounding flips them.)"""
    from torch._dynamo.utils import counters
    eager = fed_mclir_model(tmp_path / 'e')
    # vgg too: SPN calls it with two batch shapes (the output; the 2 copies' negatives), each compiled once
    compiled = fed_mclir_model(tmp_path / 'c', compile={'enabled': True, 'targets': ['net_g', 'vgg']})
    compiled.net_g.load_state_dict(eager.net_g.state_dict())
    for c_e, c_c in zip(eager.history.copies, compiled.history.copies):
        c_c.module.load_state_dict(c_e.module.state_dict())
    frames = counters['frames']['ok']
    grads = []
    for m in (eager, compiled):
        out = m.train_net_g(m.lq)
        (out - m.gt).abs().mean().backward()
        grads.append((out.detach(), [p.grad.clone() for p in m.net_g.parameters()]))
        m.optimizer_g.zero_grad(set_to_none=True)
    assert counters['frames']['ok'] > frames  # dynamo really compiled something
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-5)
    for g_e, g_c in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(g_e, g_c, rtol=1e-4, atol=1e-6)
    for m in (eager, compiled):
        m.optimize_parameters(1)
    for key in ('l_pix', 'l_spn'):
        assert compiled.log_dict[key] == pytest.approx(eager.log_dict[key], rel=1e-4)
