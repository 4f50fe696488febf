"""Dongqi-Fan/IRConStyle's own option files (verbatim under tests/data/irconstyle/options, commit b3e193d) with only
what a user changes: data paths, ``num_gpu``, iteration counts, crop and batch sizes, loader workers, validation and
checkpoint frequencies, pretrained paths.

All 78 files pass the whole entry check (parsed as ``mclir-train`` / ``mclir-test`` parse them, every block built at
full size, the data read, nothing written). Then every training file trains through ``mclir-train`` (two iterations
at full network size on 64-pixel crops: trains, validates, saves at the new best, writes its log) and every test file
restores through ``mclir-test`` with weights one of their training files wrote here; one resumes, one takes SPN.
The entry points run in processes forked from a warm server (``run_entry_point``): 78 runs stay affordable."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml

from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
from tests.helpers import (TEST_DATA, KeptWeights, changed_option_keys, key_allowed, kept_weights_folder,
                           run_entry_point)

pytestmark = pytest.mark.e2e

OPTIONS = osp.join(TEST_DATA, 'irconstyle', 'options')
TRAIN_FILES = sorted(osp.relpath(p, OPTIONS) for p in glob.glob(osp.join(OPTIONS, 'train', '*', '*.yml')))
TEST_FILES = sorted(osp.relpath(p, OPTIONS) for p in glob.glob(osp.join(OPTIONS, 'test', '*', '*.yml')))
SIZE = 64  # Maxim needs multiples of 64
ALLOWED = ('num_gpu', 'datasets.*.dataroot_gt', 'datasets.*.dataroot_lq', 'datasets.*.num_worker_per_gpu',
           'datasets.train.gt_size', 'datasets.train.batch_size_per_gpu', 'train.total_iter', 'val.val_freq',
           'logger.save_checkpoint_freq', 'logger.print_freq', 'path.pretrain_network_g')


def _read(rel):
    with open(osp.join(OPTIONS, rel)) as f:
        return yaml.safe_load(f)


def _kind(rel):
    opt = _read(rel)
    types = {ds['type'].replace('Datasets_', 'Dataset_') for ds in opt['datasets'].values()}  # their typo
    return opt['model_type'], opt['network_g']['type'], types


def network_of(rel):
    """What decides whether weights fit: the model type and the network block."""
    opt = _read(rel)
    return opt['model_type'], yaml.safe_dump(opt['network_g'])


TRAINED = KeptWeights()  # network_of(training file) -> the weights it wrote (training tests run before test-file tests)

_kept_weights_folder = kept_weights_folder(TRAINED, 'irconstyle_weights')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Paired folders (same names) and their lmdbs, for training and validation; the GT side alone for denoising."""
    root = tmp_path_factory.mktemp('irconstyle_data')
    rng = np.random.default_rng(0)
    out = {}
    for phase, count in (('train', 4), ('val', 2)):
        folders = {side: root / phase / side for side in ('gt', 'lq')}
        for folder in folders.values():
            folder.mkdir(parents=True)
        for i in range(count):
            gt = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), (5, 5), 2)
            cv2.imwrite(str(folders['gt'] / f'{i:03d}.png'), gt)
            cv2.imwrite(str(folders['lq'] / f'{i:03d}.png'), cv2.GaussianBlur(gt, (5, 5), 2))
        lmdbs = {side: str(root / phase / f'{side}.lmdb') for side in ('gt', 'lq')}
        folders_to_lmdb(str(folders['gt']), str(folders['lq']), lmdbs['gt'], lmdbs['lq'], quiet=True)
        out[phase] = {'disk': {s: str(f) for s, f in folders.items()}, 'lmdb': lmdbs}
    return out


KEEP = object()


def adapted(rel, data, folder, pretrain=KEEP, iters=2):
    """Their file with the allowed changes, written to ``folder``; the changed keys are asserted allowed."""
    original = _read(rel)
    opt = yaml.safe_load(yaml.safe_dump(original))
    opt['num_gpu'] = 0
    for name, ds in opt['datasets'].items():
        source = data['train' if name == 'train' else 'val'][ds['io_backend']['type']]
        ds['dataroot_gt'] = source['gt']
        if ds.get('dataroot_lq') != 'none':  # their Gaussian denoising sets carry the string 'none'
            ds['dataroot_lq'] = source['lq']
        if name == 'train':
            ds.update(gt_size=SIZE, batch_size_per_gpu=2, num_worker_per_gpu=0)
    if 'train' in opt:
        opt['train']['total_iter'] = iters
        opt['val']['val_freq'] = 2
        opt['logger'].update(save_checkpoint_freq=2, print_freq=1)
    if pretrain is not KEEP:
        opt['path']['pretrain_network_g'] = pretrain
    assert [k for k in changed_option_keys(original, opt) if not key_allowed(k, ALLOWED)] == []
    path = osp.join(str(folder), osp.basename(rel))
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path, opt


@pytest.mark.parametrize('rel', TRAIN_FILES + TEST_FILES)
def test_every_file_passes_the_entry_check(rel, data, tmp_path, monkeypatch):
    from basicsr.test import parse_options as parse_test
    from basicsr.train import parse_options as parse_train
    # their test files name weights nobody here has ('path for best pth'): the check runs without them; the covering
    # files below test with real ones
    path, opt = adapted(rel, data, tmp_path, pretrain=None if rel.startswith('test') else KEEP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr('sys.argv', ['mclir-train', '-opt', path])
    parse = parse_train if rel.startswith('train') else parse_test
    parsed, _ = parse(str(tmp_path), is_train=rel.startswith('train'))
    assert parsed['model_type'] in ('ConStyle', 'Origin')
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()


def train(rel, data, folder):
    """Two iterations of their training file through ``mclir-train``: trains, validates, saves, writes its log."""
    path, opt = adapted(rel, data, folder)
    run = run_entry_point('mclir_basicsr.train', ['-opt', path], cwd=folder)
    assert run.returncode == 0, run.stderr[-3000:]
    experiment = folder / 'experiments' / opt['name']
    (log_file, ) = glob.glob(str(experiment / 'train_*.log'))
    log = open(log_file).read()
    assert f'Model [{opt["model_type"]}] is created.' in log
    assert 'This is a new best record. Saving model and training state.' in log  # the first validation always is
    assert (experiment / 'models' / 'net_g_2.pth').is_file() and (experiment / 'training_states' / '2.state').is_file()
    TRAINED[network_of(rel)] = str(experiment / 'models' / 'net_g_2.pth')


@pytest.mark.parametrize('rel', TRAIN_FILES)
def test_every_training_file_trains(rel, data, tmp_path):
    train(rel, data, tmp_path)


@pytest.mark.parametrize('rel', TEST_FILES)
def test_every_test_file_restores_with_weights_trained_here(rel, data, tmp_path):
    if network_of(rel) not in TRAINED:  # run alone (-k): train their training file with this network first
        (tmp_path / 'training').mkdir()
        train(next(r for r in TRAIN_FILES if network_of(r) == network_of(rel)), data, tmp_path / 'training')
    path, opt = adapted(rel, data, tmp_path, pretrain=TRAINED[network_of(rel)])
    run = run_entry_point('mclir_basicsr.test', ['-opt', path], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / 'results' / opt['name'] / 'metrics.json') as f:
        metrics = json.load(f)
    for ds in opt['datasets'].values():
        assert set(metrics[ds['name']]) == set(opt['val']['metrics'])


def test_a_run_resumed_from_its_newest_best_equals_the_uninterrupted_run(data, tmp_path):
    """Checkpoints come only at new bests, and a resume from the newest one continues exactly (ConStyle, joint
    phase, queue and all)."""
    rel = 'train/NAFNet/train_ConStyleNAFNet_ColorDenoise.yml'
    finals = []
    for name, steps in (('straight', [4]), ('resumed', [2, 4])):
        folder = tmp_path / name
        folder.mkdir()
        for i, iters in enumerate(steps):
            path, opt = adapted(rel, data, folder, iters=iters)
            run = run_entry_point('mclir_basicsr.train', ['-opt', path] + (['--auto_resume'] if i else []), cwd=folder)
            assert run.returncode == 0, run.stderr[-3000:]
        finals.append(torch.load(folder / 'experiments' / opt['name'] / 'models' / 'net_g_latest.pth',
                                 weights_only=True)['params'])
    log = sorted(glob.glob(str(tmp_path / 'resumed' / 'experiments' / opt['name'] / 'train_*.log')))[-1]
    assert 'Resuming training from epoch' in open(log).read()
    assert finals[0].keys() == finals[1].keys()
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


def test_spn_goes_on_top_of_their_file(data, tmp_path):
    """The README's keys on one of their files: MCLIRModel on their Origin, their datasets and network kept."""
    path, opt = adapted('train/Restormer/train_Restormer_Dehaze.yml', data, tmp_path)
    opt.update(name='spn_on_irconstyle', model_type='MCLIRModel', base_model_type='Origin')
    opt['train'].update(spn_opt={'type': 'SPNLoss', 'loss_weight': 0.001, 'vgg_weights': 'random'},
                        history={'copies': [{'period': 1, 'decay': 0.5}]})
    spn_path = tmp_path / 'spn.yml'
    spn_path.write_text(yaml.safe_dump(opt))
    run = run_entry_point('mclir_basicsr.train', ['-opt', str(spn_path)], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    (log_file, ) = glob.glob(str(tmp_path / 'experiments' / 'spn_on_irconstyle' / 'train_*.log'))
    log = open(log_file).read()
    assert 'Model [MCLIROrigin] is created.' in log and 'l_spn' in log
    assert 'This is a new best record.' in log  # their checkpoints, with SPN on top
