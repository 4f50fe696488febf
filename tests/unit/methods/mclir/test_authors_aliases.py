"""The MCLIR authors' class names with their semantics: perceptual_opt is the negative term and
their keys mean what they mean in their code. Their own option file through the entry point:
e2e/test_authors_aliases.py."""
import copy

import pytest
import torch
from basicsr.losses import build_loss
from basicsr.models import build_model

from mclir_basicsr.methods.mclir.mclir_authors_model import (FFA_MEAN, FFA_STD,
                                                             ImageRestorationModel_FFANet_Neg_Multi, SRNegModel,
                                                             SRNegModel_Multi)
from mclir_basicsr.checks.options import OptionError, check_options
from tests.helpers import batch, make_opt


PERCEPTUAL = {'type': 'PerceptualLoss', 'layer_weights': {'relu1_1': 0.4, 'relu2_1': 0.6}, 'vgg_type': 'vgg11',
              'use_input_norm': True, 'range_norm': False, 'perceptual_weight': 0.01, 'style_weight': 0,
              'criterion': 'l1'}


def _authors_opt(tmp_path, model_type='SRNegModel_Multi', **train):
    opt = make_opt(tmp_path, model_type=model_type, extra_train=dict(
        {'perceptual_opt': copy.deepcopy(PERCEPTUAL), 'neg_iter': [2, 3], 'neg_decay': [0.1, 0.4]}, **train))
    return opt


def test_keys_translate_to_ours_with_the_authors_pairing_and_defaults(tmp_path):
    ours = SRNegModel_Multi.ours(_authors_opt(tmp_path), warn=False)['train']
    # copy i: neg_iter[N-1-i] with neg_decay[i], as their refresh loop pairs them
    assert ours['history'] == {'init_decay': 0.01, 'copies': [{'period': 3, 'decay': 0.1}, {'period': 2, 'decay': 0.4}]}
    assert ours['spn_opt'] == {'type': 'SPNLoss', 'form': 'subtract', 'loss_weight': 0.01, 'vgg_type': 'vgg11',
                               'use_input_norm': True, 'range_norm': False, 'criterion': 'l1',
                               'layer_weights': {'relu1_1': 0.4, 'relu2_1': 0.6}}
    assert 'perceptual_opt' not in ours and not any(k.startswith('neg_') for k in ours)
    single = SRNegModel.ours(_authors_opt(tmp_path, 'SRNegModel', neg_iter=5, neg_decay=0.2), warn=False)['train']
    assert single['history'] == {'init_decay': 0.999, 'copies': [{'period': 5, 'decay': 0.2}]}
    pos = SRNegModel_Multi.ours(_authors_opt(tmp_path, perceptual_pos_opt=copy.deepcopy(PERCEPTUAL)), warn=False)
    assert pos['train']['perceptual_opt'] == PERCEPTUAL  # the FFA-Net classes' positive term stays BasicSR's


def test_the_negative_term_equals_minus_the_mean_perceptual_distance_to_the_copies(vgg_home):
    model = build_model(_authors_opt(vgg_home))
    assert model.cri_perceptual is None and [c.period for c in model.history.copies] == [3, 2]
    perceptual = build_loss(copy.deepcopy(PERCEPTUAL))
    model.feed_data(batch())
    out = model.net_g(model.lq)
    negs = model.history.negatives(model.lq)
    expected = -sum(perceptual(out, n)[0] for n in negs) / len(negs)
    torch.testing.assert_close(model.cri_spn(out, negs), expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize('change, message', [
    (lambda o: o.update(path_neg={'pretrain_network_g': 'x.pth'}), 'path_neg: initialising the history copies'),
    (lambda o: o.update(complie=True), 'complie is not supported'),
    (lambda o: o['train'].update(contrastive_opt={'type': 'L1Loss'}), 'train.contrastive_opt is not supported'),
    (lambda o: o['train'].pop('perceptual_opt'), 'train.perceptual_opt is required by SRNegModel_Multi'),
    (lambda o: o['train'].update(neg_decay=[0.1, 0.2, 0.3]), 'train.neg_decay has 3 entries but train.neg_iter has 2'),
    (lambda o: o.update(base_model_type='SwinIRModel'), 'base_model_type does not apply to model_type'),
])
def test_keys_that_would_be_ignored_are_refused(tmp_path, change, message):
    opt = _authors_opt(tmp_path)
    change(opt)
    with pytest.raises(OptionError, match=message):
        check_options(opt)


def test_unread_keys_are_dropped_and_grad_clip_takes_a_number(vgg_home):
    opt = _authors_opt(vgg_home, use_grad_norm=0.05, use_grad_clip=0.2)
    model = build_model(opt)
    assert model.guard.clip.max_norm == 0.2  # their models pass the value as the max norm
    assert 'use_grad_norm' not in model.opt['train']


def test_ffanet_classes_normalise_the_input_as_the_authors_do(vgg_home):
    opt = _authors_opt(vgg_home, 'ImageRestorationModel_FFANet_Neg_Multi')
    opt.update(scale=1, network_g={'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1,
                                   'upscale': 1, 'res_scale': 1, 'img_range': 1., 'rgb_mean': [0.5, 0.5, 0.5]})
    model = build_model(opt)
    assert isinstance(model, ImageRestorationModel_FFANet_Neg_Multi)
    data = batch(scale=1)
    model.feed_data(data)
    mean, std = torch.tensor(FFA_MEAN).view(1, 3, 1, 1), torch.tensor(FFA_STD).view(1, 3, 1, 1)
    assert torch.allclose(model.lq, (data['lq'] - mean) / std) and torch.equal(model.gt, data['gt'])


def test_adaptive_refresh_round_robin_on_a_large_residual_and_resumed(vgg_home):
    opt = _authors_opt(vgg_home, 'ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP', neg_t=0.0,
                       neg_iter=[1, 1, 1], neg_decay=0.1)
    model = build_model(opt)
    before = model.history.digests()
    model.feed_data(batch())
    model.optimize_parameters(1)
    after = model.history.digests()
    assert model.adaptive_refreshes == 1 and after[0] != before[0] and after[1:] == before[1:]
    model.optimize_parameters(2)
    assert model.adaptive_refreshes == 2 and model.history.digests()[1] != before[1]
    model.save_training_state(epoch=0, current_iter=2)
    state = torch.load(vgg_home / 'training_states' / '2.state', weights_only=True)
    resumed = build_model(opt)
    resumed.resume_training(state)
    assert resumed.adaptive_refreshes == 2 and resumed.history.digests() == model.history.digests()
    quiet = build_model(_authors_opt(vgg_home, 'ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP', neg_t=1e9,
                                     neg_iter=[1], neg_decay=0.1))
    quiet.feed_data(batch())
    digests = quiet.history.digests()
    quiet.optimize_parameters(1)  # neg_iter 1 would refresh every step periodically: the adaptive class does not
    assert quiet.adaptive_refreshes == 0 and quiet.history.digests() == digests
