"""Shared fixtures. ``import mclir_basicsr`` comes first: it makes basicsr importable on current torchvision."""
import copy
import os
import os.path as osp
import socket
import subprocess
import sys

import mclir_basicsr  # noqa: F401  (must precede basicsr)
import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Nothing in the suite may download: any attempt fails the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f'network access attempted: {args[:1]}')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


TINY_EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 2,
             'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}

SPN_RANDOM = {'type': 'SPNLoss', 'loss_weight': 0.01, 'vgg_type': 'vgg11', 'layer_weights': {'relu1_1': 0.5,
                                                                                             'relu2_1': 0.5},
              'vgg_weights': 'random'}


def make_opt(tmp_path, model_type='MCLIRModel', network=None, history=None, spn=None, extra_train=None, **top):
    """An in-process BasicSR option dict for a tiny model on CPU."""
    opt = {
        'name': 'unit', 'model_type': model_type, 'scale': 2, 'num_gpu': 0, 'manual_seed': 0, 'is_train': True,
        'dist': False, 'rank': 0, 'world_size': 1,
        'network_g': copy.deepcopy(network or TINY_EDSR),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                 'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'training_states'),
                 'experiments_root': str(tmp_path), 'visualization': str(tmp_path / 'vis')},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'total_iter': 10,
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2}}},
    }
    if model_type.startswith('MCLIR'):
        opt['train']['history'] = copy.deepcopy(history or {'init_decay': 0.1, 'copies': [
            {'period': 2, 'decay': 0.5}, {'period': 3, 'decay': 0.25}]})
        opt['train']['spn_opt'] = copy.deepcopy(spn or SPN_RANDOM)
    opt['train'].update(copy.deepcopy(extra_train or {}))
    opt.update(top)
    os.makedirs(opt['path']['models'], exist_ok=True)
    os.makedirs(opt['path']['training_states'], exist_ok=True)
    return opt


def batch(seed=0, n=2, lq=16, scale=2):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(n, 3, lq * scale, lq * scale, generator=g)
    return {'lq': torch.nn.functional.avg_pool2d(gt, scale) if scale > 1 else gt.clone(), 'gt': gt}


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A tiny paired x2 dataset from a real photo, as image folders and lmdb (made with our lmdb tool)."""
    import cv2
    from basicsr.utils.matlab_functions import imresize
    from skimage import data as skdata

    from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
    root = tmp_path_factory.mktemp('tiny_data')
    photo = skdata.astronaut()[:, :, ::-1]  # RGB -> BGR as cv2 writes
    for split, count, size in (('train', 6, 48), ('val', 2, 32)):
        for sub in ('gt', 'lq'):
            os.makedirs(root / split / sub)
        for i in range(count):
            y, x = 40 + 60 * i, 100 + 30 * i
            gt = np.ascontiguousarray(photo[y:y + size, x:x + size])
            lq = np.clip(np.round(imresize(gt.astype(np.float32) / 255., 0.5) * 255), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / split / 'gt' / f'{split}{i:02d}.png'), gt)
            cv2.imwrite(str(root / split / 'lq' / f'{split}{i:02d}.png'), lq)
        folders_to_lmdb(str(root / split / 'gt'), str(root / split / 'lq'), str(root / f'{split}_gt.lmdb'),
                        str(root / f'{split}_lq.lmdb'), quiet=True)
    return root


@pytest.fixture(scope='session')
def aio_data(tmp_path_factory):
    """The all-in-one demo data (5 kinds, 40 training images each, 128 px), built once per session."""
    from mclir_basicsr.data.demo_data import build_demo_data
    root = tmp_path_factory.mktemp('aio')
    build_demo_data(root=str(root), tasks=('all_in_one', ), quiet=True)
    return root / 'all_in_one'


def run_module(module, args, cwd, timeout=600, env_extra=None):
    """Run ``python -m module args`` in ``cwd``; returns CompletedProcess (text)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '2')
    env.update(env_extra or {})
    return subprocess.run([sys.executable, '-m', module] + list(args), cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=timeout)


def aio_demo_options(demo, data, name, total_iter):
    """An all-in-one demo training option file (``demo``) made small for a test: its training set only, on the
    ``aio_data`` folders, 32 px patches, batch 3, a checkpoint every 4 iterations, no validation."""
    import yaml
    with open(demo) as f:
        opt = yaml.safe_load(f)
    opt.update(name=name, num_gpu=0)
    train = opt['datasets']['train']
    train.update(gt_size=32, batch_size_per_gpu=3)
    for task in train['tasks']:
        task['dataroot_gt' if task['kind'] == 'denoise' else 'dataroot'] = str(data / 'train' / task['kind'])
    opt['datasets'] = {'train': train}
    opt.pop('val', None)
    opt['train']['total_iter'] = total_iter
    opt['logger'].update(save_checkpoint_freq=4, print_freq=1, use_tb_logger=False)
    return opt
