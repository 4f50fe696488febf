"""DSRIRModel and MCLIRDSRIRModel in process: the multi-output step and its losses, test-time padding, SPN on a
stage network, train.progressive in every model class, and the option errors of the new keys."""

import pytest
import torch
from basicsr.models import build_model

from mclir_basicsr.methods.dsrir.dsrir_model import MCLIRDSRIRModel
from mclir_basicsr.checks.options import OptionError, check_options
from tests.helpers import DSRIR_LOSSES, batch, dsrir_opt, make_opt


def test_one_step_trains_every_stage_with_the_three_losses(tmp_path):
    model = build_model(dsrir_opt(tmp_path))
    model.feed_data(batch(n=2, lq=16, scale=1))
    before = {n: p.detach().clone() for n, p in model.net_g.named_parameters()}
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_pix', 'l_ul', 'l_pocl'}
    assert model.log_dict['l_pix'] < 0  # a negative PSNR
    moved = {n for n, p in model.net_g.named_parameters() if not torch.equal(before[n], p)}
    # the earlier stages' image heads and every log-variance head learn only from the stage losses
    assert {f'usau.{i}.image_out.weight' for i in (0, 1)} | {f'usau.{i}.log_var.0.weight' for i in (0, 1, 2)} <= moved
    assert not moved & {'usau.2.attention.0.weight', 'usau.2.feature_proj.weight'}  # frozen: the last gate
    assert len(moved) > 0.8 * len(before)


def test_test_time_output_has_the_input_size(tmp_path):
    model = build_model(dsrir_opt(tmp_path))
    model.feed_data({'lq': torch.rand(1, 3, 19, 27)})
    model.test()
    assert model.output.shape == (1, 3, 19, 27)


def test_spn_on_a_stage_network_through_base_model_type(tmp_path):
    opt = dsrir_opt(tmp_path, model_type='MCLIRModel', base_model_type='DSRIRModel')
    check_options(opt)
    model = build_model(opt)
    assert type(model) is MCLIRDSRIRModel
    model.feed_data(batch(n=2, lq=16, scale=1))
    model.optimize_parameters(1)
    assert {'l_pix', 'l_ul', 'l_pocl', 'l_spn'} <= set(model.log_dict)
    negatives = model.history.negatives(model.lq)
    assert len(negatives) == 2 and all(n.shape == model.lq.shape for n in negatives)  # final images


@pytest.mark.parametrize('change, message', [
    (dict(network_g={'type': 'NAFNet', 'width': 8}), 'model_type DSRIRModel trains a network that returns its stage'),
    (dict(train={'pixel_opt': None}), 'train.pixel_opt is required'),
    (dict(train={'stage_uncertainty_opt': {'type': 'DSRIRUncertainty'}}), 'DSRIRUncertaintyLoss'),
    (dict(train={'pocl_opt': {'type': 'PositiveContrastLoss', 'vgg_weights': 'random', 'eps': -1}}),
     r'train.pocl_opt.eps must be in \(0, inf\)'),
    (dict(train={'pocl_opt': 'PositiveContrastLoss'}), 'train.pocl_opt must be a mapping with a type'),
    (dict(train={'progressive': {'milestones': [], 'patch_sizes': [64], 'batch_sizes': [4]}}),
     r'datasets.train.gt_size \(32\) is smaller'),
])
def test_bad_dsrir_options_name_the_key(tmp_path, change, message):
    opt = dsrir_opt(tmp_path)
    for key, value in change.items():
        if key == 'train':
            opt['train'].update(value)
        else:
            opt[key] = value
    with pytest.raises(OptionError, match=message):
        check_options(opt)


def test_automatic_spn_weight_is_refused_with_the_negative_psnr_loss(tmp_path):
    opt = dsrir_opt(tmp_path, model_type='MCLIRDSRIRModel')
    opt['train']['spn_opt'] = dict(opt['train']['spn_opt'], loss_weight='auto')
    with pytest.raises(OptionError, match='DSRIRPSNRLoss .* is a log and is negative'):
        check_options(opt)
    opt['train']['pixel_opt'] = {'type': 'L1Loss'}
    check_options(opt)  # L1 on the final image: positive, auto allowed


def test_dsrir_keys_on_another_model_are_refused(tmp_path):
    opt = make_opt(tmp_path, model_type='SRModel', extra_train={'pocl_opt': DSRIR_LOSSES['pocl_opt']})
    with pytest.raises(OptionError, match='train.pocl_opt set, but model_type SRModel does not use it'):
        check_options(opt)


def test_missing_imagenet_vgg19_for_the_contrast_term_fails_before_training(tmp_path, monkeypatch):
    from mclir_basicsr.checks.preflight.vgg import check_vgg_weights
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    opt = dsrir_opt(tmp_path)
    check_vgg_weights(opt)  # vgg_weights: random
    opt['train']['pocl_opt'].pop('vgg_weights')
    with pytest.raises(OptionError, match=r'train.pocl_opt.vgg_weights: .*vgg19-dcbb9e9d.pth'):
        check_vgg_weights(opt)
