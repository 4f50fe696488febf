"""Every typed block is built before anything is written (mclir_basicsr.checks.blocks, run by the entry check):
one line naming the key path, the type and the constructor's own words; numbers YAML reads as text; suggestions only
for misspellings; messages that say what the value must be."""
import copy
import os.path as osp
import warnings

import pytest
import torch
import yaml

from mclir_basicsr.checks.blocks import check_typed_blocks, numbers_from_text
from mclir_basicsr.checks.options import OptionError, close_spelling
from mclir_basicsr.training.progressive import check_progressive
from mclir_basicsr.runtime.option_checks import check_parsed
from tests.helpers import ROOT

CONSTYLE = 'all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml'
DSRIR = 'all_in_one/demo/train_DSRIR_AIO3_demo.yml'
DCPT = 'dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml'
MCLIR = 'demo/train_MCLIR_EDSR_SRx2_demo.yml'


def _demo(rel, **changes):
    """A shipped demo training file with ``changes`` (dotted key -> value) and no datasets (checked elsewhere)."""
    with open(osp.join(ROOT, 'options', 'train', rel)) as f:
        opt = yaml.safe_load(f)
    opt.update(is_train=True, num_gpu=0, datasets={})
    for key, value in changes.items():
        *parents, leaf = key.split('.')
        target = opt
        for p in parents:
            target = target[p]
        target[leaf] = value
    return opt


def _refused(opt):
    with pytest.raises(OptionError) as err:
        check_parsed(opt)
    return str(err.value)


@pytest.mark.parametrize('rel, key, value, words', [
    (CONSTYLE, 'network_g.constyle.queue_size', 0, 'queue_size >= 1'),
    (CONSTYLE, 'network_g.constyle.temperature', 0, 'temperature > 0'),
    (CONSTYLE, 'network_g.constyle.momentum', 1.5, '0 <= momentum < 1'),
    (CONSTYLE, 'network_g.constyle.enqueue', 'keys', 'enqueue must be one of query, key'),
    (CONSTYLE, 'network_g.dim', -16, 'negative dimension'),
    (DSRIR, 'network_g.widths', [16, 16], 'widths needs 3 entries'),
    (DSRIR, 'network_g.reduction', 0, 'reduction must be an integer >= 1'),
    (DCPT, 'network_dc.num_res_blocks', 'two', 'num_res_blocks must be an integer >= 0'),
    (DCPT, 'network_dc.num_res_blocks', -1, 'num_res_blocks must be an integer >= 0'),
    (DCPT, 'network_dc.num_classes', '3', 'num_classes must be an integer'),
])
def test_a_network_that_cannot_be_built_is_named_with_its_constructors_words(rel, key, value, words):
    msg = _refused(_demo(rel, **{key: value}))
    block = key.split('.')[0]
    assert msg.startswith(f'{block}: ') and words in msg and f'Change the arguments of {block}' in msg
    assert '\n' not in msg


@pytest.mark.parametrize('rel, key, value, start, words', [
    (DCPT, 'train.classify_opt.gamma', -1, 'train.classify_opt: ClassFocalLoss', 'gamma must be a number >= 0'),
    (DSRIR, 'train.pixel_opt.stage_weights', [1.0, 0.5], 'train.pixel_opt.stage_weights has 2 entries',
     'returns 3 stages'),
    (DCPT, 'train.optim_g.lr', -1.0, 'train.optim_g: AdamW', 'Invalid learning rate'),
    (DCPT, 'train.optim_g.betas', [0.9], 'train.optim_g: AdamW', 'IndexError'),
    (CONSTYLE, 'train.scheduler.T_max', 'abc', 'train.scheduler: TrueCosineAnnealingLR', 'TypeError'),
    (DCPT, 'network_g.type', 'NAFSSR', "network_g.type 'NAFSSR' is not a registered network", 'Import'),
    (DCPT, 'train.pixel_opt.type', 'SSIMLoss', "train.pixel_opt.type 'SSIMLoss' is not a registered loss", 'Import'),
    (MCLIR, 'train.spn_opt.loss_weight', 'autoo', 'train.spn_opt.loss_weight must be a number or auto', "'autoo'"),
    (MCLIR, 'train.spn_opt.loss_weight', 'AUTO', 'train.spn_opt.loss_weight must be a number or auto', "'AUTO'"),
    (MCLIR, 'train.spn_opt.target_ratio', float('inf'), 'train.spn_opt.target_ratio must be a finite number', 'inf'),
])
def test_bad_blocks_are_refused_in_one_line(rel, key, value, start, words):
    msg = _refused(_demo(rel, **{key: value}))
    assert msg.startswith(start) and words in msg, msg
    assert 'Did you mean' not in msg  # NAFSSR (stereo SR) is not NAFNet, SSIMLoss is not SPNLoss


def test_numbers_yaml_reads_as_text_are_the_numbers_they_spell():
    opt = _demo(DCPT, **{'train.optim_g.lr': '1e-3', 'train.optim_g.betas': ['9e-1', 0.99], 'val.val_freq': '5e1',
                         'name': '1e3'})
    numbers_from_text(opt)
    assert opt['train']['optim_g']['lr'] == 1e-3 and opt['train']['optim_g']['betas'] == [0.9, 0.99]
    assert opt['val']['val_freq'] == 50.0 and opt['name'] == '1e3'  # a name stays a name
    check_parsed(_demo(DCPT, **{'train.optim_g.lr': '1e-3'}))


def test_building_the_blocks_leaves_the_random_state_alone():
    opt = _demo(CONSTYLE)
    before = torch.get_rng_state()
    check_typed_blocks(copy.deepcopy(opt))
    assert torch.equal(before, torch.get_rng_state())


def test_a_network_that_needs_real_values_to_be_built_is_built_on_the_cpu():
    """SwinIR calls .item() while building (not possible on the meta device): it is built on the CPU instead."""
    swinir = {'type': 'SwinIR', 'upscale': 2, 'in_chans': 3, 'img_size': 16, 'window_size': 8, 'depths': [1],
              'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffledirect'}
    check_typed_blocks({'network_g': swinir, 'is_train': False})
    with pytest.raises(OptionError, match='network_g: SwinIR cannot be built'):
        check_typed_blocks({'network_g': dict(swinir, embed_dim=-12), 'is_train': False})


@pytest.mark.parametrize('name, suggestion', [
    ('NAFNett', 'NAFNet'), ('nafnet', 'NAFNet'), ('DSRIRUncertainty', 'DSRIRUncertaintyLoss'),
    ('MCLIRModle', 'MCLIRModel'), ('NAFNetLocal', None), ('PSNRLoss', None), ('Restormer', None)])
def test_did_you_mean_only_for_a_misspelling(name, suggestion):
    names = ['NAFNet', 'SPNLoss', 'DSRIRPSNRLoss', 'DSRIRUncertaintyLoss', 'MCLIRModel', 'MCLIRSwinIRModel',
             'PromptIR']
    assert close_spelling(name, names) == suggestion


def test_a_progressive_milestone_after_the_last_iteration_warns():
    opt = _demo(DSRIR, **{'train.total_iter': 100, 'datasets': {'train': {'gt_size': 64, 'batch_size_per_gpu': 8}},
                          'train.progressive': {'milestones': [50, 100], 'patch_sizes': [32, 48, 64],
                                                'batch_sizes': [8, 8, 8]}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        check_progressive(opt)
    assert any('train.progressive.milestones: [100] are at or after train.total_iter (100)' in str(w.message)
               for w in caught)


@pytest.mark.parametrize('metric, words', [
    ({'type': 'calculate_psnrr', 'crop_border': 0}, "val.metrics.psnr.type 'calculate_psnrr' is not a registered"),
    ({'type': 'calculate_psnr'}, 'val.metrics.psnr needs crop_border for calculate_psnr'),
])
def test_a_metric_validation_would_fail_on_is_refused_before_training(metric, words):
    """BasicSR calls the metric at the first validation, thousands of iterations in."""
    msg = _refused(_demo(MCLIR, **{'val.metrics': {'psnr': metric}}))
    assert msg.startswith(words), msg


def test_a_metric_with_better_is_accepted():
    check_typed_blocks(_demo(MCLIR, **{'val.metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2,
                                                                'better': 'higher'}}}))


@pytest.mark.parametrize('key, value, words', [
    ('train.total_iter', 'abc', "train.total_iter must be an integer, got 'abc'"),
    ('train.total_iter', 2.5, 'train.total_iter must be an integer, got 2.5'),
    ('logger.save_checkpoint_freq', 0, 'logger.save_checkpoint_freq must be >= 1, got 0'),
    ('val.val_freq', 'often', "val.val_freq must be an integer, got 'often'"),
])
def test_basicsr_counts_are_integers_before_the_loop_reads_them(key, value, words):
    assert _refused(_demo(MCLIR, **{key: value})).startswith(words)


def test_basicsr_counts_written_as_floats_are_accepted():
    check_parsed(_demo(MCLIR, **{'val.val_freq': 5000.0, 'logger.save_checkpoint_freq': 5e3}))


def test_the_authors_adaptive_threshold_is_checked_before_anything_is_written():
    with open(osp.join(ROOT, 'tests', 'data', 'authors_FFANet_RESIDE_IN_fromScratch.yml')) as f:
        opt = yaml.safe_load(f)
    opt.update(is_train=True, num_gpu=0, datasets={},
               model_type='ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP')
    opt['train']['neg_t'] = 'high'
    assert _refused(opt).startswith("train.neg_t must be a number, got 'high'")


@pytest.mark.parametrize('model_type, path_key, words', [
    ('IRConStyleModel', 'pretrain_constyel',
     'unknown key path.pretrain_constyel. Did you mean path.pretrain_constyle?'),
    ('ConStyleModel', 'pretrain_constyle', 'path.pretrain_constyle set, but model_type ConStyleModel does not use it'),
])
def test_path_keys_of_ours_are_checked_like_the_others(model_type, path_key, words):
    opt = _demo(CONSTYLE, model_type=model_type)
    opt['path'][path_key] = 'prompter.pth'
    assert _refused(opt).startswith(words)
