"""ConStyleModel trained in process past ``ConStyle_iter``: joint training, then the prompter frozen (slow). The
rest of ConStyle: unit/methods/constyle/test_constyle.py."""
import copy

import pytest
import torch
from basicsr.models import build_model

from mclir_basicsr.checks.options import check_options
from tests.helpers import batch, constyle_opt


# ---------------------------------------------------------------- model classes
@pytest.mark.e2e  # slow (trains past the freezing step): outside the fast unit tier
def test_joint_training_then_frozen_prompter(tmp_path):
    opt = constyle_opt(tmp_path, constyle_iter=2)
    check_options(opt)
    model = build_model(opt)
    logged = []
    for it in range(1, 5):
        if it == 3:
            frozen = copy.deepcopy(model.prompter.encoder_q.state_dict())  # weights and BatchNorm statistics
        model.feed_data(batch(seed=it, n=4, lq=16, scale=1))
        model.optimize_parameters(it)
        logged.append(set(model.log_dict))
    assert logged[:2] == [{'l_pix', 'l_CrossEntropy', 'l_content', 'l_style', 'style_distance'}] * 2
    assert logged[2:] == [{'l_pix'}] * 2
    for k, v in model.prompter.encoder_q.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    assert int(model.prompter.queue_ptr) == 8  # two contrastive steps of 4


@pytest.mark.e2e  # slow (trains past the freezing step): outside the fast unit tier
def test_after_the_freeze_no_backward_runs_through_the_prompter(tmp_path):
    """Single process: the frozen prompter needs no gradient, so none is computed (the step's autograd graph does
    not reach it) while the restorer still trains."""
    model = build_model(constyle_opt(tmp_path, constyle_iter=1))
    for it in (1, 2):
        model.feed_data(batch(seed=it, n=4, lq=16, scale=1))
        model.optimize_parameters(it)
    assert not any(p.requires_grad for p in model.prompter.parameters())
    assert all(p.grad is None for p in model.prompter.parameters())
    restorer = [p for n, p in model.net_g.named_parameters() if not n.startswith('prompter.')]
    assert all(p.requires_grad for p in restorer) and any(p.grad is not None for p in restorer)
