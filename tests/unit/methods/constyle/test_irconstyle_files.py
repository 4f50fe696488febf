"""IRConStyle's files in process: how a file is recognised and its names read (NAFNet is theirs only in their files),
``ConStyle`` / ``Origin`` saving at validations that set a new best, Origin's warning for the keys it does not read,
mixup of training batches, and the checks of what their train.py needs."""
import copy
import logging
import random

import pytest
import torch
from basicsr.models import build_model

from mclir_basicsr.checks.options import OptionError, check_options
from mclir_basicsr.checks.repository_names import use_repository_names
from mclir_basicsr.methods.constyle.irconstyle_files import IRCONSTYLE
from mclir_basicsr.methods.constyle.mixing import MixingAugment, parse_mixing
from tests.helpers import CONSTYLE_TINY, constyle_opt, make_opt

THEIRS = {'model_type': 'Origin', 'network_g': {'type': 'NAFNet'},
          'datasets': {'train': {'type': 'Datasets_Paired'}}, 'path': {}, 'save_img': True, 'val': {}}


def test_their_files_read_nafnet_as_theirs_and_other_files_keep_megvii_s():
    theirs = copy.deepcopy(THEIRS)
    assert use_repository_names(theirs, (IRCONSTYLE, )) is IRCONSTYLE
    assert theirs['network_g']['type'] == 'IRConStyleNAFNet'
    assert theirs['datasets']['train']['type'] == 'Dataset_Paired'
    assert theirs['path']['param_key_g'] == 'params_ema' and theirs['val']['save_img'] is True
    assert 'save_img' not in theirs
    megvii = {'model_type': 'ImageRestorationModel', 'network_g': {'type': 'NAFNet'}, 'path': {}}
    assert use_repository_names(megvii, (IRCONSTYLE, )) is None and megvii['network_g']['type'] == 'NAFNet'
    by_dataset = {'model_type': 'SRModel', 'network_g': {'type': 'NAFNet'},
                  'datasets': {'val': {'type': 'Dataset_GaussianDenoising'}}, 'path': {'param_key_g': 'params'}}
    use_repository_names(by_dataset, (IRCONSTYLE, ))
    assert by_dataset['network_g']['type'] == 'IRConStyleNAFNet' and by_dataset['path']['param_key_g'] == 'params'


def test_top_level_save_img_that_contradicts_val_is_refused():
    theirs = dict(copy.deepcopy(THEIRS), val={'save_img': False})
    with pytest.raises(OptionError, match='save_img'):
        use_repository_names(theirs, (IRCONSTYLE, ))


def _origin(tmp_path, **train):
    opt = make_opt(tmp_path, model_type='Origin', network=dict(CONSTYLE_TINY), scale=1, extra_train=train)
    opt['datasets'] = {'val': {'name': 'v', 'type': 'PairedImageDataset'}}
    opt['val'] = {'val_freq': 2, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}}
    opt['logger'] = {'save_checkpoint_freq': 2}
    return opt


@pytest.mark.parametrize('change, message', [
    (lambda o: o['logger'].update(save_checkpoint_freq=3), r'logger.save_checkpoint_freq \(3\) must divide'),
    (lambda o: o.pop('datasets'), 'needs validation'),
    (lambda o: o.update(gpu_id=-1), 'gpu_id'),
    (lambda o: o.update(suffix='x'), 'suffix: IRConStyle'),
    (lambda o: o.update(test='yes'), 'test must be true or false'),
    (lambda o: o['train'].update(mixing_augs={'mixup': True, 'mixup_beta': -1}), 'mixup_beta'),
])
def test_what_their_train_script_needs_is_checked(tmp_path, change, message):
    opt = _origin(tmp_path)
    change(opt)
    with pytest.raises(OptionError, match=message):
        check_options(opt)


class _Validating:
    """A stand-in for BasicSR's validation: each call records one metric value."""

    def __init__(self, model, values):
        self.model, self.values = model, iter(values)

    def __call__(self, dataloader, current_iter, tb_logger, save_img):
        model = self.model
        model._initialize_best_metric_results('v')
        model._update_best_metric_result('v', 'psnr', next(self.values), current_iter)


def test_checkpoints_are_written_at_validations_that_set_a_new_best_only(tmp_path, monkeypatch):
    opt = _origin(tmp_path)
    check_options(opt)
    model = build_model(opt)
    monkeypatch.setattr(model, 'nondist_validation', _Validating(model, [20.0, 19.0, 20.0]))
    for it in (2, 4, 6):
        model.save(0, it)  # BasicSR's periodic call: nothing written by itself
        assert not (tmp_path / 'models' / f'net_g_{it}.pth').exists()
        model.validation(None, it, None)
    written = sorted(p.name for p in (tmp_path / 'models').iterdir())
    assert written == ['net_g_2.pth', 'net_g_6.pth']  # 19 < 20 saved nothing; a tie (20) counts, as theirs
    assert sorted(p.name for p in (tmp_path / 'training_states').iterdir()) == ['2.state', '6.state']
    assert set(torch.load(tmp_path / 'models' / 'net_g_6.pth', weights_only=True)) == {'params'}


def test_origin_names_the_constyle_keys_it_does_not_read(tmp_path, caplog):
    opt = _origin(tmp_path, ConStyle_iter=5, content_opt={'type': 'ContentLoss'})
    check_options(opt)
    with caplog.at_level(logging.WARNING, logger='basicsr'):
        build_model(opt)
    assert 'train.ConStyle_iter, train.content_opt: not read by model_type Origin' in caplog.text


def test_their_constyle_model_trains_with_mixup_on_training_batches_only(tmp_path):
    opt = constyle_opt(tmp_path, model_type='ConStyle')
    opt['train']['mixing_augs'] = {'mixup': True, 'mixup_beta': 1.2, 'use_identity': False}
    opt['datasets'] = {'val': {'name': 'v', 'type': 'PairedImageDataset'}}
    opt['val'] = {'val_freq': 2, 'metrics': {}}
    opt['logger'] = {'save_checkpoint_freq': 2}
    check_options(opt)
    torch.manual_seed(0)
    model = build_model(opt)
    gt, lq = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    model.feed_data({'lq': lq, 'gt': gt})
    assert torch.equal(model.lq, lq)  # feed_data (also validation's) leaves the batch alone
    model.optimize_parameters(1)
    assert not torch.equal(model.lq, lq) and set(model.log_dict) >= {'l_pix', 'l_CrossEntropy'}


def test_mixup_mixes_gt_and_lq_alike_or_leaves_them_half_the_time():
    gt, lq = torch.rand(6, 3, 4, 4), torch.rand(6, 3, 4, 4)
    torch.manual_seed(1)
    mixed_gt, mixed_lq = MixingAugment(parse_mixing({'mixup': True}))(gt, lq)
    torch.manual_seed(1)
    lam = torch.distributions.Beta(torch.tensor([1.2]), torch.tensor([1.2])).rsample((1, 1)).item()
    perm = torch.randperm(6)
    torch.testing.assert_close(mixed_gt, lam * gt + (1 - lam) * gt[perm])
    torch.testing.assert_close(mixed_lq, lam * lq + (1 - lam) * lq[perm])
    identity = MixingAugment(parse_mixing({'mixup': True, 'use_identity': True}))
    random.seed(0)
    kept = sum(torch.equal(identity(gt, lq)[0], gt) for _ in range(200))
    assert 70 < kept < 130
