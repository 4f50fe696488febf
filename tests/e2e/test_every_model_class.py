"""Every registered model class of the plugin (aliases included) and every shipped demo training file, through the
train entry point as a user runs it: two iterations, a validation, and a log file with loss lines and a validation
metric line. Demo files run as written except the iterations, logging and validation frequency, batch size and the
validation sets (the first one only); a class no demo file uses runs from a demo file with the keys it needs.

The runs share one working directory holding the demo data (``datasets/demo``, as the files name it) and random
ImageNet-named VGG weights (``experiments/pretrained_models``): a file that starts from another run's checkpoint
(``*_from_DCPT``, ``path.pretrain_constyle``) gets it from that run, as a user's second command would.
"""
import copy
import glob
import os
import os.path as osp
import re

import pytest
import torch
import yaml

from basicsr.utils.registry import MODEL_REGISTRY
from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features
from tests.helpers import ROOT, run_entry_point

pytestmark = pytest.mark.e2e

DEMO_FILES = sorted(glob.glob(osp.join(ROOT, 'options', 'train', '**', 'demo', '*.yml'), recursive=True))
LOSS_LINE = re.compile(r'iter:\s*\d+.*\bl_\w+: [-+\d.e]+')
METRIC_LINE = re.compile(r'# (psnr|ssim): [\d.]+|Degradation classification on \S+, accuracy')
SWINIR = {'type': 'SwinIR', 'upscale': 2, 'in_chans': 3, 'img_size': 16, 'window_size': 8, 'img_range': 1.,
          'depths': [1], 'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffledirect',
          'resi_connection': '1conv'}
AUTHORS_PERCEPTUAL = {'type': 'PerceptualLoss', 'layer_weights': {'relu1_2': 0.2, 'relu2_2': 0.3, 'relu3_3': 0.5},
                      'vgg_type': 'vgg16', 'use_input_norm': True, 'range_norm': False, 'perceptual_weight': 0.001,
                      'style_weight': 0, 'criterion': 'l1'}
AUTHORS_FFA_FILE = osp.join(ROOT, 'tests', 'data', 'authors_FFANet_RESIDE_IN_fromScratch.yml')


def _demo(rel):
    with open(osp.join(ROOT, 'options', 'train', rel)) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope='session')
def workspace(tmp_path_factory):
    """The demo data where the demo files look for it, and VGG16 weights under torchvision's file name."""
    from mclir_basicsr.data.demo_data import ALL_TASKS, build_demo_data
    root = tmp_path_factory.mktemp('workspace')
    build_demo_data(root=str(root / 'datasets' / 'demo'), tasks=ALL_TASKS, quiet=True)
    weights = root / 'experiments' / 'pretrained_models'
    weights.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        feats = build_torchvision_vgg_features('vgg16')
    torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, weights / 'vgg16-397923af.pth')
    return root


def _shorten(opt, name):
    """Two iterations, a log line and a checkpoint each, one validation after the second, the first val set."""
    opt = copy.deepcopy(opt)
    opt.update(name=name, num_gpu=0)
    first_val = next((k for k in opt['datasets'] if k.startswith('val')), None)
    opt['datasets'] = {k: v for k, v in opt['datasets'].items() if k in ('train', first_val)}
    opt['train']['total_iter'] = 2
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


def _train(workspace, opt):
    """Run ``mclir-train`` on ``opt`` in the workspace; returns the experiment folder after checking its log."""
    path = workspace / f'{opt["name"]}.yml'
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    res = run_entry_point('mclir_basicsr.train', ['-opt', path.name], cwd=workspace)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = workspace / 'experiments' / opt['name']
    logs = glob.glob(str(exp / f'train_{opt["name"]}_*.log'))
    assert len(logs) == 1, f'no log file in {exp}: {os.listdir(exp)}'
    text = open(logs[0]).read()
    assert LOSS_LINE.search(text), f'no loss line in {logs[0]}:\n{text[-2000:]}'
    assert METRIC_LINE.search(text), f'no validation metric line in {logs[0]}:\n{text[-2000:]}'
    assert (exp / 'models' / 'net_g_latest.pth').is_file()
    return exp


_trained = {}


def _trained_demo(workspace, rel):
    """The experiment folder of demo file ``rel`` (trained once per session)."""
    if rel not in _trained:
        opt = _demo(rel)
        _trained[rel] = _train(workspace, _shorten(opt, opt['name']))
    return _trained[rel]


@pytest.mark.parametrize('path', DEMO_FILES, ids=[osp.relpath(p, osp.join(ROOT, 'options', 'train'))
                                                  for p in DEMO_FILES])
def test_every_demo_training_file_trains_through_the_entry_point(workspace, path):
    rel = osp.relpath(path, osp.join(ROOT, 'options', 'train'))
    opt = _demo(rel)
    pretrained = (opt.get('path') or {}).get('pretrain_network_g')
    if pretrained:  # another demo's result: train that demo first, as the file's comment says
        source = re.match(r'experiments/([^/]+)/', pretrained).group(1)
        _trained_demo(workspace, next(osp.relpath(p, osp.join(ROOT, 'options', 'train')) for p in DEMO_FILES
                                      if _demo(osp.relpath(p, osp.join(ROOT, 'options', 'train')))['name'] == source))
    _trained_demo(workspace, rel)


def _with_spn(opt, loss_weight=None):
    """``opt`` plus the MCLIR NAFNet demo's history copies and SPN loss (its weight ``loss_weight`` if given)."""
    mclir = _demo('all_in_one/demo/train_MCLIR_NAFNet_AIO3_demo.yml')['train']
    opt['train'].update(history=mclir['history'], spn_opt=mclir['spn_opt'])
    if loss_weight is not None:
        opt['train']['spn_opt']['loss_weight'] = loss_weight
    return opt


def _without_spn(opt):
    for key in ('history', 'spn_opt'):
        opt['train'].pop(key)
    return opt


def _authors(opt, model_type, **train):
    """``opt`` (an MCLIR demo) in the authors' spelling: their class name, PerceptualLoss as the negative term."""
    opt['model_type'] = model_type
    for key in ('history', 'spn_opt'):
        opt['train'].pop(key)
    opt['train'].update(perceptual_opt=dict(AUTHORS_PERCEPTUAL), neg_iter=[1, 2], neg_decay=[0.1, 0.1], **train)
    return opt


def _swinir(opt):
    opt['network_g'] = dict(SWINIR)
    opt['datasets']['train']['gt_size'] = 32
    return opt


def _authors_ffanet(model_type):
    """The authors' FFA-Net file on the demo denoising pairs (scale 1, as their dehazing pairs)."""
    with open(AUTHORS_FFA_FILE) as f:
        opt = yaml.safe_load(f)
    opt['model_type'] = model_type
    for phase in ('train', 'val'):
        split = phase
        opt['datasets'][phase].update(dataroot_gt=f'datasets/demo/dn_s25/{split}_gt.lmdb',
                                      dataroot_lq=f'datasets/demo/dn_s25/{split}_lq.lmdb', io_backend={'type': 'lmdb'})
    opt['datasets']['train'].update(gt_size=32, num_worker_per_gpu=0)
    opt['network_g']['blocks'] = 1
    opt['train']['neg_iter'] = [1, 1, 2, 2]
    return opt


def _ir_constyle(workspace, opt):
    """The ConStyle demo with a frozen prompter pre-trained by the ConStyle demo run."""
    exp = _trained_demo(workspace, 'all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml')
    for key in ('CrossEntropy_opt', 'content_opt', 'style_opt', 'ConStyle_iter'):
        opt['train'].pop(key, None)
    opt['path'].update(pretrain_constyle=str(exp / 'models' / 'net_g_latest.pth'), param_key_constyle='params')
    return opt


def _dcpt_transfer(workspace, opt):
    exp = _trained_demo(workspace, 'dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml')
    opt['model_type'] = 'DCPTTransferModel'
    opt['train'].pop('optim_dc')
    opt['val']['metrics'] = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}
    opt['path'].update(pretrain_network_g=str(exp / 'models' / 'net_g_latest.pth'),
                       pretrain_network_dc=str(exp / 'models' / 'net_dc_latest.pth'))
    return opt


SR = 'demo/train_MCLIR_EDSR_SRx2_demo.yml'
CONSTYLE = 'all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml'
# model_type -> (workspace, name) -> option dict, for the classes no demo file names
RECIPES = {
    'MCLIRSwinIRModel': lambda ws: _swinir(dict(_demo(SR), model_type='MCLIRSwinIRModel')),
    'SRNegModel': lambda ws: _authors(_demo(SR), 'SRNegModel'),
    'SRNegModel_Multi': lambda ws: _authors(_demo(SR), 'SRNegModel_Multi'),
    'SwinIRNegModel': lambda ws: _swinir(_authors(_demo(SR), 'SwinIRNegModel')),
    'SwinIRNegModel_Multi': lambda ws: _swinir(_authors(_demo(SR), 'SwinIRNegModel_Multi')),
    'ImageRestorationModel_FFANet_Neg_Multi': lambda ws: _authors_ffanet('ImageRestorationModel_FFANet_Neg_Multi'),
    'ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP':
        lambda ws: _authors_ffanet('ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP'),
    'IRConStyleModel': lambda ws: _ir_constyle(ws, dict(_demo(CONSTYLE), model_type='IRConStyleModel')),
    'MCLIRConStyleModel': lambda ws: _with_spn(dict(_demo(CONSTYLE), model_type='MCLIRConStyleModel')),
    # the spelling users write: MCLIRModel on a base class
    'MCLIRIRConStyleModel': lambda ws: _with_spn(_ir_constyle(ws, dict(_demo(CONSTYLE), model_type='MCLIRModel',
                                                                       base_model_type='IRConStyleModel'))),
    # a fixed weight: auto holds l_spn at a fraction of the reconstruction loss, and DSRIR's PSNR loss is negative
    'MCLIRDSRIRModel': lambda ws: _with_spn(dict(_demo('all_in_one/demo/train_DSRIR_AIO3_demo.yml'),
                                                 model_type='MCLIRDSRIRModel'), loss_weight=0.001),
    'DCPTTransferModel': lambda ws: _dcpt_transfer(ws, _demo('dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml')),
    # the methods' repositories' own model types (their files: tests/e2e/test_nafnet_files.py, test_irconstyle_files.py)
    'ImageRestorationModel': lambda ws: _without_spn(dict(_demo('all_in_one/demo/train_MCLIR_NAFNet_AIO3_demo.yml'),
                                                          model_type='ImageRestorationModel')),
    'ConStyle': lambda ws: dict(_demo(CONSTYLE), model_type='ConStyle'),
    'DCPTSRModel': lambda ws: _without_spn(dict(_demo(SR), model_type='DCPTSRModel')),
    'Origin': lambda ws: dict(_demo(CONSTYLE), model_type='Origin'),
}


def _plugin_model_classes():
    return sorted(name for name, cls in MODEL_REGISTRY if cls.__module__.startswith('mclir_basicsr.'))


def _demo_model_classes():
    return {_demo(osp.relpath(p, osp.join(ROOT, 'options', 'train')))['model_type'] for p in DEMO_FILES}


def test_every_plugin_model_class_has_a_demo_file_or_a_recipe():
    """A new model class must be added to a demo file or to RECIPES, or this test (and its log check) fails."""
    missing = set(_plugin_model_classes()) - _demo_model_classes() - set(RECIPES)
    assert not missing, f'model classes run by no test through the entry point: {sorted(missing)}'


@pytest.mark.parametrize('model_type', sorted(RECIPES))
def test_every_model_class_trains_through_the_entry_point_with_a_log(workspace, model_type):
    opt = _shorten(RECIPES[model_type](workspace), f'class_{model_type}')
    _train(workspace, opt)
