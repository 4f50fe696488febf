"""DCPTModel trained in process (seconds): both networks train and the classifier learns; checkpoints hold both
networks and resume; validation scores each set against the training labels by task name. The rest of DCPT in
process: unit/methods/dcpt/test_dcpt.py."""
import copy

import pytest
import torch

from basicsr.models import build_model
from tests.helpers import dcpt_opt, digest, labelled_batch


# ---------------------------------------------------------------- models
@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A DCPTModel trained 40 steps on the three synthetic degradations: (model, its first weights, l_cls per step)."""
    torch.manual_seed(0)
    model = build_model(dcpt_opt(tmp_path_factory.mktemp('dcpt')))
    first = digest(model.net_g), digest(model.net_dc)
    losses = []
    for it in range(1, 41):
        model.feed_data(labelled_batch())
        model.optimize_parameters(it)
        losses.append(model.log_dict['l_cls'])
    return model, first, losses


@pytest.mark.e2e  # slow (seconds): outside the fast unit tier
def test_dcpt_step_trains_both_networks_and_learns_to_classify(trained):
    model, (g0, dc0), losses = trained
    assert len(model.optimizers) == 2 and len(model.schedulers) == 2
    assert set(model.log_dict) >= {'l_pix', 'l_cls', 'acc'}
    assert all(not torch.equal(a, b) for a, b in zip(g0[:1], digest(model.net_g)[:1]))
    assert all(not torch.equal(a, b) for a, b in zip(dc0, digest(model.net_dc)) if a.requires_grad)
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])
    assert model.log_dict['acc'] == 100.0


@pytest.mark.e2e  # slow (two networks trained, saved and resumed): outside the fast unit tier
def test_dcpt_checkpoints_hold_both_networks_and_resume(tmp_path):
    torch.manual_seed(0)
    opt = dcpt_opt(tmp_path)
    model = build_model(opt)
    for it in (1, 2):
        model.feed_data(labelled_batch(it))
        model.optimize_parameters(it)
    model.save(epoch=0, current_iter=2)
    state = torch.load(tmp_path / 'training_states' / '2.state', weights_only=True)
    assert len(state['optimizers']) == 2 and state['dcpt']['format'] == 1 and 'rng' in state['dcpt']
    assert (tmp_path / 'models' / 'net_dc_2.pth').exists() and (tmp_path / 'models' / 'net_g_2.pth').exists()
    resumed_opt = copy.deepcopy(opt)
    resumed_opt['path'].update(pretrain_network_g=str(tmp_path / 'models' / 'net_g_2.pth'),
                               pretrain_network_dc=str(tmp_path / 'models' / 'net_dc_2.pth'))
    resumed = build_model(resumed_opt)
    resumed.resume_training(state)
    for a, b in zip(digest(model.net_dc), digest(resumed.net_dc)):
        assert torch.equal(a, b)
    batch = labelled_batch(9)
    for m in (model, resumed):
        m.feed_data(batch)
        m.optimize_parameters(3)
    for a, b in zip(digest(model.net_g) + digest(model.net_dc), digest(resumed.net_g) + digest(resumed.net_dc)):
        assert torch.equal(a, b)


@pytest.mark.e2e  # slow (seconds): outside the fast unit tier
def test_validation_scores_each_set_against_the_training_labels_by_task_name(trained):
    """A validation set holding only rain (its own label 0) is scored against the training label of derain (1)."""
    from types import SimpleNamespace
    model = trained[0]
    rain = labelled_batch()
    rain = {'lq': rain['lq'][1::3], 'gt': rain['gt'][1::3], 'label': torch.zeros(2, dtype=torch.long)}
    batches = [{k: v[i:i + 1] for k, v in rain.items()} for i in range(2)]

    class Loader:
        dataset = SimpleNamespace(opt={'name': 'rain_only'}, task_names=['derain'])

        def __iter__(self):
            return iter(batches)
    model.nondist_validation(Loader(), 40, None, False)
    assert model.confusion[1].sum() == 2 and model.confusion[0].sum() == 0  # counted as derain, not denoise
    assert model.metric_results['accuracy'] == 100.0  # the classifier learned the three synthetic degradations
    assert model.best_metric_results['rain_only']['accuracy']['val'] == 100.0
