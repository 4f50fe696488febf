"""Every shipped ``paper/`` option file (training and test) passes the entry check as a user would run it: read by
BasicSR's ``parse_options`` from the command line, then our whole check (typed blocks built at paper size, keys,
data, checkpoints, VGG weights), with only its data paths replaced by generated data and patch sizes capped at the
generated images' size. The checkpoints a file starts from (``path.pretrain_*``) are made where it names them, from
the network of the run that would have written them; nothing is written by the check itself."""
import glob
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml

from basicsr.archs import build_network
from basicsr.train import parse_options as parse_train_options
from basicsr.test import parse_options as parse_test_options
from mclir_basicsr.cli import command_line
from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

PAPER_FILES = sorted(glob.glob(osp.join(ROOT, 'options', '**', 'paper', '*.yml'), recursive=True))
PAIR_GT_SIZE = 256  # the largest gt_size of the paper files
AIO_SIZE = 128  # the demo all-in-one images


@pytest.fixture(scope='session')
def generated(tmp_path_factory):
    """``{'aio': <all-in-one demo folder>, (scale, backend): (gt, lq)}`` and VGG16/19 under torchvision's names."""
    from mclir_basicsr.data.demo_data import build_demo_data
    root = tmp_path_factory.mktemp('paper_data')
    build_demo_data(root=str(root), tasks=('all_in_one', ), quiet=True)
    data = {'aio': root / 'all_in_one'}
    rng = np.random.default_rng(0)
    for scale in (1, 4):
        folders = [root / f'x{scale}' / sub for sub in ('gt', 'lq')]
        for f in folders:
            f.mkdir(parents=True)
        for i in range(2):
            gt = cv2.GaussianBlur(rng.integers(0, 256, (PAIR_GT_SIZE, PAIR_GT_SIZE, 3), dtype=np.uint8), (9, 9), 3)
            lq = cv2.resize(gt, (PAIR_GT_SIZE // scale, ) * 2, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(folders[0] / f'{i:03d}.png'), gt)
            cv2.imwrite(str(folders[1] / f'{i:03d}.png'), lq)
        data[(scale, 'disk')] = tuple(map(str, folders))
        lmdbs = tuple(str(root / f'x{scale}_{sub}.lmdb') for sub in ('gt', 'lq'))
        folders_to_lmdb(*data[(scale, 'disk')], *lmdbs, quiet=True)
        data[(scale, 'lmdb')] = lmdbs
    weights = root / 'pretrained_models'
    weights.mkdir()
    with torch.random.fork_rng(devices=[]):
        for vgg_type, name in (('vgg16', 'vgg16-397923af.pth'), ('vgg19', 'vgg19-dcbb9e9d.pth')):
            feats = build_torchvision_vgg_features(vgg_type)
            torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, weights / name)
    data['vgg'] = weights
    return data


def _with_generated_data(opt, data):
    scale = int(opt.get('scale') or 1)
    for phase, ds in opt['datasets'].items():
        split = 'train' if phase == 'train' else 'val'
        if ds['type'] == 'AllInOneDataset':
            for task in ds['tasks']:
                key = 'dataroot_gt' if 'dataroot_gt' in task else 'dataroot'
                task[key] = str(data['aio'] / split / task['kind'])
            size_cap = AIO_SIZE
        else:
            backend = ds['io_backend']['type']
            ds['dataroot_gt'], ds['dataroot_lq'] = data[(scale, backend)]
            ds.pop('meta_info_file', None)
            size_cap = PAIR_GT_SIZE
        if ds.get('gt_size'):
            ds['gt_size'] = min(ds['gt_size'], size_cap)
    progressive = opt.get('train', {}).get('progressive')
    if progressive:
        progressive['patch_sizes'] = [min(p, AIO_SIZE) for p in progressive['patch_sizes']]
    return opt


def _network_behind(checkpoint):
    """The ``network_g`` of the shipped training file whose run writes ``checkpoint`` (experiments/<name>/...)."""
    name = checkpoint.split('/')[1]
    for path in glob.glob(osp.join(ROOT, 'options', 'train', '**', '*.yml'), recursive=True):
        with open(path) as f:
            opt = yaml.safe_load(f)
        if opt['name'] == name:
            return opt['network_g']
    raise AssertionError(f'no shipped training file writes {checkpoint}')


def _make_checkpoints(opt, cwd):
    for key, value in (opt.get('path') or {}).items():
        if key.startswith('pretrain_') and value:
            target = cwd / value
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                with torch.random.fork_rng(devices=[]):
                    params = build_network(dict(_network_behind(value))).state_dict()
                torch.save({'params': params, 'params_ema': params}, target)


@pytest.mark.parametrize('path', PAPER_FILES, ids=[osp.relpath(p, osp.join(ROOT, 'options')) for p in PAPER_FILES])
def test_paper_file_passes_the_entry_check(path, generated, tmp_path, monkeypatch):
    with open(path) as f:
        opt = _with_generated_data(yaml.safe_load(f), generated)
    monkeypatch.chdir(tmp_path)
    os.makedirs('experiments')
    os.symlink(generated['vgg'], 'experiments/pretrained_models')
    _make_checkpoints(opt, tmp_path)
    with open('options.yml', 'w') as f:
        yaml.safe_dump(opt, f)
    before = sorted(os.listdir('experiments'))
    is_train = '/train/' in path
    with command_line(['-opt', 'options.yml']):
        checked, _ = (parse_train_options if is_train else parse_test_options)(str(tmp_path), is_train=is_train)
    assert checked['name'] == opt['name']
    assert sorted(os.listdir('experiments')) == before and not osp.exists('tb_logger') and not osp.exists('results')
