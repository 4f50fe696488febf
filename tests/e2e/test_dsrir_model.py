"""train.progressive in every model class (DSRIR, MCLIR, DCPT), trained in process: crops, batch subsets and the
crop generator in the training state. DSRIRModel and MCLIRDSRIRModel: unit/methods/dsrir/test_dsrir_model.py."""
import pytest
import torch
from basicsr.models import build_model

from mclir_basicsr.checks.options import check_options
from tests.helpers import batch, dcpt_opt, dsrir_opt, labelled_batch, make_opt


@pytest.mark.e2e  # slow (trains every model class): outside the fast unit tier
def test_progressive_crops_and_subsamples_in_every_model_class(tmp_path):
    schedule = {'progressive': {'milestones': [1], 'patch_sizes': [16, 32], 'batch_sizes': [3, 2]}}
    mclir = make_opt(tmp_path / 'm', extra_train=schedule)
    mclir['datasets'] = {'train': {'gt_size': 32, 'batch_size_per_gpu': 4}}
    cases = [(dsrir_opt(tmp_path / 'd', extra_train=schedule), batch(n=4, lq=32, scale=1), (3, 16)),
             (mclir, batch(n=4, lq=16, scale=2), (3, 8)),
             (dict(dcpt_opt(tmp_path / 'c'), train=dict(dcpt_opt(tmp_path / 'c')['train'], **schedule)),
              dict(labelled_batch(n=4), gt=torch.rand(4, 3, 32, 32), lq=torch.rand(4, 3, 32, 32)), (3, 16))]
    for opt, data, (n, size) in cases:
        check_options(opt)
        model = build_model(opt)
        model.feed_data(data)
        model.optimize_parameters(1)
        assert model.lq.shape[0] == n and model.lq.shape[-1] == size, opt['model_type']
        if hasattr(model, 'label'):
            assert model.label.shape[0] == n
        model.save_training_state(0, 1)  # the crop generator travels in the training state
        state = torch.load(f'{opt["path"]["training_states"]}/1.state', weights_only=True)
        assert torch.is_tensor(state[model.state_key]['progressive']['generator'])
        model.feed_data(data)
        model.optimize_parameters(2)
        assert model.lq.shape[0] == 2, opt['model_type']
