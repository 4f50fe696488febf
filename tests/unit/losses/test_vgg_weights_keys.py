"""``vgg_weights`` is acted on wherever a VGG loss block takes it (SPNLoss, PositiveContrastLoss, BasicSR's
PerceptualLoss, the MCLIR authors' ``perceptual_opt``), and every missing-VGG message says how to get the file
(``mclir-fetch-vgg``) and that ``vgg_weights: random`` exists for smoke runs. Weights are small fakes: random VGG
features saved under torchvision's file names, never the real ImageNet file."""
import copy
import os.path as osp

import mclir_basicsr  # noqa: F401  (before basicsr)

import pytest
import torch
import yaml
from basicsr.losses import build_loss
from basicsr.models import build_model

from mclir_basicsr import train as mclir_train
from mclir_basicsr.checks.blocks import check_typed_blocks
from mclir_basicsr.checks.options import OptionError, check_options
from mclir_basicsr.checks.preflight import check_inputs
from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features
from tests.helpers import ROOT, assert_nothing_written, assert_refused, image_pairs, make_opt

AUTHORS_FILE = osp.join(ROOT, 'tests', 'data', 'authors_FFANet_RESIDE_IN_fromScratch.yml')
PERCEPTUAL = {'type': 'PerceptualLoss', 'layer_weights': {'relu1_1': 0.4, 'relu2_1': 0.6}, 'vgg_type': 'vgg11',
              'perceptual_weight': 0.01, 'style_weight': 0, 'criterion': 'l1'}
SMOKE_RUN_PARTS = ('mclir-fetch-vgg', 'vgg_weights: random')


def _fake_vgg(path, vgg_type='vgg11', seed=5):
    """Random features of ``vgg_type`` saved as torchvision's state dict; returns the features."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        feats = build_torchvision_vgg_features(vgg_type)
    torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, path)
    return feats


@pytest.fixture
def no_vgg_anywhere(tmp_path, monkeypatch):
    """A working directory and TORCH_HOME without any VGG file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    return tmp_path


def _authors_opt(tmp_path, **perceptual):
    return make_opt(tmp_path, model_type='SRNegModel_Multi', extra_train={
        'perceptual_opt': dict(copy.deepcopy(PERCEPTUAL), **perceptual), 'neg_iter': [2, 3], 'neg_decay': [0.1, 0.1]})


def _message(err):
    return str(err.value)


def _names_key_and_ways_out(msg, key):
    assert msg.startswith(key), msg
    assert f'{key}: random' in msg, msg
    for part in SMOKE_RUN_PARTS:
        assert part in msg, (part, msg)
    assert '\n' not in msg, msg


# ---------------------------------------------------------------- BasicSR's PerceptualLoss takes vgg_weights
def test_perceptual_loss_loads_the_named_file(no_vgg_anywhere):
    feats = _fake_vgg(no_vgg_anywhere / 'mine.pth')
    loss = build_loss(dict(PERCEPTUAL, vgg_weights=str(no_vgg_anywhere / 'mine.pth')))
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, feats[0].weight)
    state = torch.get_rng_state()
    first = build_loss(dict(PERCEPTUAL, vgg_weights='random'))
    second = build_loss(dict(PERCEPTUAL, vgg_weights='random'))
    assert torch.equal(torch.get_rng_state(), state)  # random features leave the global stream alone
    assert torch.equal(first.vgg.vgg_net.conv1_1.weight, second.vgg.vgg_net.conv1_1.weight)
    with pytest.raises(FileNotFoundError) as err:
        build_loss(dict(PERCEPTUAL, vgg_weights=str(no_vgg_anywhere / 'nope.pth')))
    _names_key_and_ways_out(_message(err), 'PerceptualLoss.vgg_weights')


def test_perceptual_opt_vgg_weights_is_checked_before_anything_is_built(no_vgg_anywhere):
    opt = make_opt(no_vgg_anywhere, model_type='SRModel',
                   extra_train={'perceptual_opt': dict(PERCEPTUAL, vgg_weights=str(no_vgg_anywhere / 'nope.pth'))})
    check_typed_blocks(opt)  # the key is known; the file is checked with the inputs
    with pytest.raises(OptionError) as err:
        check_inputs(opt)
    _names_key_and_ways_out(_message(err), 'train.perceptual_opt.vgg_weights')
    _fake_vgg(no_vgg_anywhere / 'vgg13.pth', 'vgg13')
    opt['train']['perceptual_opt']['vgg_weights'] = str(no_vgg_anywhere / 'vgg13.pth')
    with pytest.raises(OptionError, match=r"train.perceptual_opt.vgg_weights: .*does not match vgg_type 'vgg11'"):
        check_inputs(opt)
    opt['train']['perceptual_opt']['vgg_weights'] = 'random'
    check_inputs(opt)


# ---------------------------------------------------------------- the MCLIR authors' perceptual_opt (the negative term)
def test_authors_perceptual_opt_vgg_weights_is_the_file_spn_loads(vgg_home):
    """vgg_home holds other weights at the standard place: the named file must win."""
    feats = _fake_vgg(vgg_home / 'mine.pth', seed=5)
    standard = torch.load(vgg_home / 'experiments' / 'pretrained_models' / 'vgg11-8a719046.pth')
    assert not torch.equal(standard['features.0.weight'], feats[0].weight)
    model = build_model(_authors_opt(vgg_home, vgg_weights=str(vgg_home / 'mine.pth')))
    assert torch.equal(model.cri_spn.vgg.vgg_net.conv1_1.weight, feats[0].weight)
    unnamed = build_model(_authors_opt(vgg_home))
    assert torch.equal(unnamed.cri_spn.vgg.vgg_net.conv1_1.weight, standard['features.0.weight'])


def test_authors_perceptual_opt_vgg_weights_random_needs_no_file(no_vgg_anywhere):
    model = build_model(_authors_opt(no_vgg_anywhere, vgg_weights='random'))
    assert model.cri_spn is not None


@pytest.mark.parametrize('weights, parts', [
    ('nope.pth', ['train.perceptual_opt.vgg_weights: ', 'nope.pth does not exist']),
    (None, ['train.perceptual_opt: ', 'vgg11-8a719046.pth']),
])
def test_authors_missing_vgg_is_refused_naming_their_key(no_vgg_anywhere, weights, parts):
    extra = {} if weights is None else {'vgg_weights': str(no_vgg_anywhere / weights)}
    opt = _authors_opt(no_vgg_anywhere, **extra)
    check_options(opt)
    with pytest.raises(OptionError) as err:
        check_inputs(opt)
    msg = _message(err)
    for part in parts + list(SMOKE_RUN_PARTS):
        assert part in msg, (part, msg)
    assert 'train.perceptual_opt.vgg_weights: random' in msg and 'spn_opt' not in msg
    with pytest.raises(FileNotFoundError) as err:  # in process, without the checks: the same key
        build_model(opt)
    _names_key_and_ways_out(_message(err), 'train.perceptual_opt.vgg_weights')


def test_authors_vgg_weights_of_the_wrong_type_is_refused_naming_their_key(tmp_path):
    with pytest.raises(OptionError, match=r'^train.perceptual_opt.vgg_weights must be a file path or "random", '
                                          r'got 5.$'):
        check_options(_authors_opt(tmp_path, vgg_weights=5))


def test_authors_file_with_a_wrong_vgg_weights_is_refused_by_the_entry_point(no_vgg_anywhere, capsys):
    """Their option file, data paths and sizes changed, plus vgg_weights: refused in one line naming their key."""
    gt, lq = image_pairs(no_vgg_anywhere / 'data', gt=(16, 16, 3), lq=(16, 16, 3))
    opt = yaml.safe_load(open(AUTHORS_FILE))
    opt['num_gpu'] = 0
    for phase in ('train', 'val'):
        opt['datasets'][phase].update(dataroot_gt=gt, dataroot_lq=lq)
    opt['datasets']['train'].update(gt_size=16, batch_size_per_gpu=2, num_worker_per_gpu=0)
    opt['train']['perceptual_opt']['vgg_weights'] = 'missing/vgg16-397923af.pth'
    yaml.safe_dump(opt, open(no_vgg_anywhere / 'authors.yml', 'w'))
    code = mclir_train.main(['-opt', str(no_vgg_anywhere / 'authors.yml')])
    assert_refused(code, capsys.readouterr().err, ['train.perceptual_opt.vgg_weights: missing/vgg16-397923af.pth '
                                                   'does not exist', 'Run mclir-fetch-vgg',
                                                   'train.perceptual_opt.vgg_weights: random'])
    assert_nothing_written(no_vgg_anywhere)


# ---------------------------------------------------------------- every missing-VGG message
@pytest.mark.parametrize('build, key', [
    (lambda: build_loss({'type': 'SPNLoss', 'vgg_type': 'vgg11', 'layer_weights': {'relu1_1': 1.0}}),
     'train.spn_opt.vgg_weights'),
    (lambda: build_loss({'type': 'PositiveContrastLoss'}), 'PositiveContrastLoss.vgg_weights'),
    (lambda: build_loss(dict(PERCEPTUAL, vgg_weights='nope.pth')), 'PerceptualLoss.vgg_weights'),
    (lambda: build_loss(PERCEPTUAL), 'vgg_weights'),  # BasicSR's own lookup: the block is not known there
])
def test_every_missing_vgg_message_of_the_losses_names_the_ways_out(no_vgg_anywhere, build, key):
    with pytest.raises(FileNotFoundError) as err:
        build()
    _names_key_and_ways_out(_message(err), key)


@pytest.mark.parametrize('option_key, block, key', [
    ('spn_opt', {'type': 'SPNLoss', 'vgg_type': 'vgg11', 'layer_weights': {'relu1_1': 1.0}},
     'train.spn_opt.vgg_weights'),
    ('spn_opt', {'type': 'SPNLoss', 'vgg_weights': 'nope.pth'}, 'train.spn_opt.vgg_weights'),
    ('pocl_opt', {'type': 'PositiveContrastLoss'}, 'train.pocl_opt.vgg_weights'),
    ('perceptual_opt', PERCEPTUAL, 'train.perceptual_opt'),
    ('perceptual_pos_opt', PERCEPTUAL, 'train.perceptual_pos_opt'),  # the FFA-Net classes' positive term
])
def test_every_missing_vgg_message_of_the_checks_names_the_ways_out(no_vgg_anywhere, option_key, block, key):
    opt = make_opt(no_vgg_anywhere, model_type='SRModel', extra_train={option_key: copy.deepcopy(block)})
    with pytest.raises(OptionError) as err:
        check_inputs(opt)
    msg = _message(err)
    assert msg.startswith(key) and '\n' not in msg, msg
    for part in SMOKE_RUN_PARTS:
        assert part in msg, (part, msg)


def test_the_way_to_get_the_file_depends_on_the_vgg_type(no_vgg_anywhere):
    """mclir-fetch-vgg writes vgg16 only: for another type the message says so instead of sending the user there."""
    with pytest.raises(FileNotFoundError) as err:
        build_loss({'type': 'SPNLoss'})  # vgg16
    assert 'Run mclir-fetch-vgg to write experiments/pretrained_models/vgg16-397923af.pth' in _message(err)
    with pytest.raises(FileNotFoundError) as err:
        build_loss({'type': 'PositiveContrastLoss'})  # vgg19
    assert "Copy torchvision's vgg19-dcbb9e9d.pth" in _message(err)
    assert 'mclir-fetch-vgg writes vgg16 only' in _message(err)
