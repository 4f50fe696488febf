"""The DCPT repositories' own option files (verbatim under tests/data/dcpt: hoatong2411/dcpt at edd4c7a, the
authors' commit, and MILab-PKU/dcpt at 0889ede) with only what a user changes: data paths, ``num_gpu``, iteration
counts, crop and batch sizes (``gt_size``, ``center_crop``, the ``dataloader`` batch), loader workers, validation and
checkpoint frequencies, pretrained paths.

All 31 files pass the whole entry check (parsed as ``mclir-train`` / ``mclir-test`` parse them, read as DCPT's, every
block built at full size, every image read). Pre-training, fine-tuning from it, testing, and the two transfer kinds
run through the entry points at full network size on generated 64-pixel images."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network

from tests.helpers import (TEST_DATA, KeptWeights, changed_option_keys, key_allowed, kept_weights_folder,
                           run_entry_point)

pytestmark = pytest.mark.e2e

FILES = sorted(osp.relpath(p, osp.join(TEST_DATA, 'dcpt'))
               for p in glob.glob(osp.join(TEST_DATA, 'dcpt', '*', 'options', '**', '*.yml'), recursive=True))
SIZE, CROP = 64, 32
ALLOWED = ('num_gpu', 'datasets.*.dataroot_gt', 'datasets.*.dataroot_lq', 'datasets.*.num_worker_per_gpu',
           'datasets.*.gt_size', 'datasets.*.center_crop', 'datasets.*.batch_size_per_gpu',
           'dataloader.batch_size_per_gpu',
           'dataloader.num_worker_per_gpu', 'dataloader_val.num_worker_per_gpu', 'train.total_iter', 'val.val_freq',
           'logger.save_checkpoint_freq', 'logger.print_freq', 'path.pretrain_network_g', 'path.pretrain_network_dc')
GT_ONLY = ('PairedImageDenoiseDataset', 'PairedImageJPEGCARDataset', 'PairedImageMosaicDataset',
           'PairedImageInpaintingDataset')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Paired folders (same names), clean images alone, and dehazing pairs named as theirs (``0001_<beta>.png`` with
    GT ``0001.jpg`` for training, ``0001.png`` where a set says ``suffix: .png``)."""
    root = tmp_path_factory.mktemp('dcpt_data')
    rng = np.random.default_rng(0)
    out = {}
    for phase, count in (('train', 4), ('val', 2)):
        folders = {k: root / phase / k for k in ('gt', 'lq', 'clean', 'haze_gt_jpg', 'haze_gt_png', 'haze')}
        for folder in folders.values():
            folder.mkdir(parents=True)
        for i in range(count):
            gt = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), (5, 5), 2)
            lq = cv2.GaussianBlur(gt, (5, 5), 2)
            for folder, image in (('gt', gt), ('lq', lq), ('clean', gt), ('haze_gt_png', gt)):
                cv2.imwrite(str(folders[folder] / f'{i:04d}.png'), image)
            cv2.imwrite(str(folders['haze_gt_jpg'] / f'{i:04d}.jpg'), gt)
            cv2.imwrite(str(folders['haze'] / f'{i:04d}_0.8.png'), lq)
        out[phase] = {k: str(v) for k, v in folders.items()}
    return out


def _read(rel):
    with open(osp.join(TEST_DATA, 'dcpt', rel)) as f:
        return yaml.safe_load(f)


def adapted(rel, data, folder, iters=2, pretrain_g=None, pretrain_dc=None):
    """Their file with the allowed changes, written to ``folder``; the changed keys are asserted allowed."""
    original = _read(rel)
    opt = yaml.safe_load(yaml.safe_dump(original))
    opt['num_gpu'] = 0
    for key, ds in opt['datasets'].items():
        source = data['train' if key.startswith('train') else 'val']
        if ds['type'] in GT_ONLY:
            ds['dataroot_gt'] = source['clean']
        elif ds['type'] == 'PairedImageDehazeDataset':
            ds.update(dataroot_gt=source['haze_gt_png' if ds.get('suffix') == '.png' else 'haze_gt_jpg'],
                      dataroot_lq=source['haze'])
        else:
            ds.update(dataroot_gt=source['gt'], dataroot_lq=source['lq'])
        for k, v in (('gt_size', CROP), ('center_crop', CROP), ('num_worker_per_gpu', 0)):
            if k in ds:
                ds[k] = v
        if key == 'train':
            ds['batch_size_per_gpu'] = 2
    for block in ('dataloader', 'dataloader_val'):
        if block in opt:
            opt[block]['num_worker_per_gpu'] = 0
    if 'dataloader' in opt:
        opt['dataloader']['batch_size_per_gpu'] = 2
    if 'train' in opt:
        opt['train']['total_iter'] = iters
        opt['val']['val_freq'] = iters
        opt['logger'].update(save_checkpoint_freq=iters, print_freq=1)
    opt['path']['pretrain_network_g'] = pretrain_g
    if 'pretrain_network_dc' in opt['path']:
        opt['path']['pretrain_network_dc'] = pretrain_dc
    assert [k for k in changed_option_keys(original, opt) if not key_allowed(k, ALLOWED)] == []
    path = osp.join(str(folder), osp.basename(rel))
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path, opt


def _train(rel, data, folder, **kw):
    path, opt = adapted(rel, data, folder, **kw)
    run = run_entry_point('mclir_basicsr.train', ['-opt', path], cwd=folder)
    assert run.returncode == 0, run.stderr[-3000:]
    experiment = folder / 'experiments' / opt['name']
    (log, ) = glob.glob(str(experiment / 'train_*.log'))
    return experiment, open(log).read()


def weights_key(network):
    """What decides whether weights fit: their ``NAFNetBaseline`` is their NAFNet without test-time local statistics
    (same weights) and ``window_size`` is that statistics' window."""
    network = dict(network)
    network.pop('window_size', None)
    network['type'] = {'NAFNetBaseline': 'NAFNet'}.get(network['type'], network['type'])
    return yaml.safe_dump(network)


PRETRAINING = [f for f in FILES if '/pretrain/' in f]
TRAINING = [f for f in FILES if '/train/' in f or '/transfer/' in f]
TESTING = [f for f in FILES if '/test/' in f]
WEIGHTS = KeptWeights()  # weights_key(network) -> the newest weights written here (the tests below run in this order)

_kept_weights_folder = kept_weights_folder(WEIGHTS, 'dcpt_weights')


def weights_for(block, network, files, run, data, folder):
    """Weights written here for ``network``; run alone (-k), the first of ``files`` whose ``block`` is it runs first."""
    if weights_key(network) not in WEIGHTS:
        folder.mkdir(exist_ok=True)
        run(next(f for f in files if weights_key(_read(f)[block]) == weights_key(network)), data, folder)
    return WEIGHTS[weights_key(network)]


@pytest.mark.parametrize('rel', FILES)
def test_every_file_passes_the_entry_check(rel, data, tmp_path, monkeypatch):
    from basicsr.test import parse_options as parse_test
    from basicsr.train import parse_options as parse_train
    classifier = None
    if 'network_dc' in _read(rel) and 'pretrain_network_dc' in _read(rel).get('path', {}):
        classifier = str(tmp_path / 'net_dc.pth')  # a pre-training's classifier, as their file names one
        with torch.device('meta'):
            shapes = {k: v.shape for k, v in build_network(dict(_read(rel)['network_dc'])).state_dict().items()}
        torch.save({'params': {k: torch.zeros(s) for k, s in shapes.items()}}, classifier)
    path, _ = adapted(rel, data, tmp_path, pretrain_dc=classifier)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr('sys.argv', ['mclir-train', '-opt', path])
    training = '/test/' not in rel
    parsed, _ = (parse_train if training else parse_test)(str(tmp_path), is_train=training)
    assert parsed['model_type'] in ('DCPTModel', 'DCPTSRModel', 'DCPTTransferModel')
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()


@pytest.mark.parametrize('rel', PRETRAINING)
def test_every_pretraining_file_pretrains(rel, data, tmp_path):
    """DCPT pre-training: their tasks as one labelled set, classification validated, net_g and net_dc saved."""
    experiment, log = _train(rel, data, tmp_path)
    assert 'Model [DCPTModel] is created.' in log and 'l_cls' in log and 'Degradation classification on' in log
    opt = _read(rel)
    for block, name in (('network_g', 'net_g_2.pth'), ('network_dc', 'net_dc_2.pth')):
        assert (experiment / 'models' / name).is_file()
        WEIGHTS[weights_key(opt[block])] = str(experiment / 'models' / name)


def pretrain(rel, data, folder):
    test_every_pretraining_file_pretrains(rel, data, folder)


@pytest.mark.parametrize('rel', TRAINING)
def test_every_training_file_trains(rel, data, tmp_path):
    """Fine-tuning from their pre-training's net_g (all_in_one/train); the transfers start from the released
    Restormer weights, which nobody here has (None), and the classifier-guided ones from a pre-training's net_dc."""
    opt = _read(rel)
    pretrain_g = pretrain_dc = None
    pretraining = tmp_path / 'pretraining'
    if '/all_in_one/' in rel:
        pretrain_g = weights_for('network_g', opt['network_g'], PRETRAINING, pretrain, data, pretraining)
    if 'network_dc' in opt:
        pretrain_dc = weights_for('network_dc', opt['network_dc'], PRETRAINING, pretrain, data, pretraining)
    experiment, log = _train(rel, data, tmp_path, pretrain_g=pretrain_g, pretrain_dc=pretrain_dc)
    if opt['model_type'] == 'DCDistModel':
        assert 'Model [DCPTTransferModel] is created.' in log and 'l_cls' in log
    else:
        assert 'Model [DCPTSRModel] is created.' in log
        assert ('grad_norm' in log) == ('grad_clip' in opt)  # their top-level grad_clip
    assert (experiment / 'models' / 'net_g_2.pth').is_file() and (experiment / 'training_states' / '2.state').is_file()
    WEIGHTS[weights_key(opt['network_g'])] = str(experiment / 'models' / 'net_g_2.pth')


@pytest.mark.parametrize('rel', TESTING)
def test_every_test_file_restores_with_weights_trained_here(rel, data, tmp_path):
    """Their test files (one row per test set and the average) with the weights of their fine-tuning."""
    weights = weights_for('network_g', _read(rel)['network_g'], [f for f in TRAINING if '/all_in_one/' in f],
                          test_every_training_file_trains, data, tmp_path / 'training')
    path, opt = adapted(rel, data, tmp_path, pretrain_g=weights)
    run = run_entry_point('mclir_basicsr.test', ['-opt', path], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / 'results' / opt['name'] / 'metrics.json') as f:
        metrics = json.load(f)
    assert {ds['name'] for ds in opt['datasets'].values()} | {'average'} == set(metrics)
