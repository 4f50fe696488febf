"""``bad_input_sweep``'s inputs: the entry points' modules in this checkout, the demo option files made short, and
the images and lmdbs the data cases break."""
import copy
import importlib
import os
import os.path as osp

import cv2
import numpy as np
import yaml

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
from mclir_basicsr.data.lmdb_tools import folders_to_lmdb  # noqa: E402

from benchmarks.common import ROOT


def first_module(*names):
    """The first of ``names`` that exists in this checkout (the package's layout before and after its split into
    ``cli``, ``losses`` and ``methods``)."""
    for name in names:  # looked up as files: an installed editable copy elsewhere must not answer
        base = osp.join(ROOT, *name.split('.'))
        if osp.isfile(base + '.py') or osp.isfile(osp.join(base, '__init__.py')):
            return name
    raise ImportError(f'none of {names} in {ROOT}')


build_probe_network = importlib.import_module(first_module(
    'mclir_basicsr.methods.dcpt.probe_features', 'mclir_basicsr.probe_features')).build_probe_network
build_torchvision_vgg_features = importlib.import_module(first_module(
    'mclir_basicsr.losses.vgg_weights', 'mclir_basicsr.vgg_weights')).build_torchvision_vgg_features

TRAIN = 'options/train'
CONSTYLE = 'all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml'
DSRIR = 'all_in_one/demo/train_DSRIR_AIO3_demo.yml'
DCPT = 'dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml'
MCLIR = 'demo/train_MCLIR_EDSR_SRx2_demo.yml'
MCLIR_DN = 'demo/train_MCLIR_EDSR_DNs25_demo.yml'
AUTHORS_FFA = osp.join(ROOT, 'tests', 'data', 'authors_FFANet_RESIDE_IN_fromScratch.yml')
VGG16_FILE = 'vgg16-397923af.pth'
# console script -> the module ``python -m`` runs (the first that exists in this checkout)
ENTRY = {'mclir-train': first_module('mclir_basicsr.train'),
         'mclir-probe-degradation': first_module('mclir_basicsr.cli.probe', 'mclir_basicsr.probe'),
         'mclir-fetch-vgg': first_module('mclir_basicsr.cli.fetch_vgg', 'mclir_basicsr.fetch_vgg'),
         'mclir-make-lmdb': first_module('mclir_basicsr.data.lmdb_tools')}
AUTHORS_PERCEPTUAL = {'type': 'PerceptualLoss', 'layer_weights': {'relu1_2': 0.2, 'relu2_2': 0.3, 'relu3_3': 0.5},
                      'vgg_type': 'vgg16', 'use_input_norm': True, 'range_norm': False, 'perceptual_weight': 0.001,
                      'style_weight': 0, 'criterion': 'l1'}
TINY_EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 2,
             'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}


# ------------------------------------------------------------------------------------------------ option files
def demo(rel):
    with open(osp.join(ROOT, TRAIN, rel)) as f:
        return yaml.safe_load(f)


def shorten(opt, name=None):
    """Two iterations on the CPU, a log line each, a checkpoint and a validation after the second, the first
    validation set only, no tensorboard."""
    opt = copy.deepcopy(opt)
    opt['num_gpu'] = 0
    if name:
        opt['name'] = name
    first_val = next((k for k in opt['datasets'] if k.startswith('val')), None)
    opt['datasets'] = {k: v for k, v in opt['datasets'].items() if k in ('train', first_val)}
    opt['train']['total_iter'] = 2
    if 'val' in opt:
        opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


def set_key(opt, dotted, value):
    *parents, leaf = dotted.split('.')
    target = opt
    for p in parents:
        target = target[p]
    target[leaf] = value
    return opt


def write_yaml(path, opt, replace=None):
    """``opt`` as YAML at ``path``; ``replace``: (placeholder, text) pairs substituted in the written text."""
    text = yaml.safe_dump(opt, sort_keys=False)
    for old, new in (replace or ()):
        assert old in text, old
        text = text.replace(old, new)
    with open(path, 'w') as f:
        f.write(text)
    return osp.basename(path)


def authors_ffanet(model_type):
    """The authors' FFA-Net file on the demo denoising lmdbs (scale 1), as tests/e2e/test_every_model_class.py
    runs it."""
    with open(AUTHORS_FFA) as f:
        opt = yaml.safe_load(f)
    opt['model_type'] = model_type
    for phase in ('train', 'val'):
        opt['datasets'][phase].update(dataroot_gt=f'datasets/demo/dn_s25/{phase}_gt.lmdb',
                                      dataroot_lq=f'datasets/demo/dn_s25/{phase}_lq.lmdb', io_backend={'type': 'lmdb'})
    opt['datasets']['train'].update(gt_size=32, num_worker_per_gpu=0)
    opt['network_g']['blocks'] = 1
    opt['train']['neg_iter'] = [1, 1, 2, 2]
    return opt


# ------------------------------------------------------------------------ images and lmdbs (as the tests make them)
def write_img(path, shape, seed=0):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


def pairs(root, n=6, gt=(32, 32, 3), lq=(16, 16, 3), ext='.png'):
    gt_dir, lq_dir = osp.join(root, 'data', 'gt'), osp.join(root, 'data', 'lq')
    for i in range(n):
        write_img(osp.join(gt_dir, f'img{i}{ext}'), gt, i)
        write_img(osp.join(lq_dir, f'img{i}{ext}'), lq, 100 + i)
    return gt_dir, lq_dir


def lmdbs(root, **kw):
    gt_dir, lq_dir = pairs(root, **kw)
    gt_db, lq_db = osp.join(root, 'data', 'gt.lmdb'), osp.join(root, 'data', 'lq.lmdb')
    folders_to_lmdb(gt_dir, lq_dir, gt_db, lq_db, quiet=True)
    return gt_db, lq_db


def truncate(path, keep=0.5):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def dead_end(root):
    """A path under a regular file: no folder can be created there."""
    with open(osp.join(root, 'plain_file'), 'w') as f:
        f.write('x\n')
    return 'plain_file/sub'


def paired_train_file(root, backend='disk', scale=2, gt_size=16, **paths):
    """The MCLIR EDSR demo (x2, or the x1 denoising one) made tiny, training on ``data/`` of the case folder."""
    opt = shorten(demo(MCLIR if scale == 2 else MCLIR_DN))
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['train']['spn_opt'].update(vgg_type='vgg11', layer_weights={'relu1_1': 1.0})
    opt['datasets']['train'].update(gt_size=gt_size, batch_size_per_gpu=2, dataset_enlarge_ratio=4,
                                    io_backend={'type': backend}, **paths)
    return write_yaml(osp.join(root, 'case.yml'), opt)
