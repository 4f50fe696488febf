"""megvii-research/NAFNet's own option files (verbatim under tests/data/nafnet/options, commit 2b4af71) run through
``mclir-train`` and ``mclir-test`` with only what a user changes: data paths, ``num_gpu``, iteration counts, crop and
batch sizes, validation/checkpoint frequencies, pretrained paths. Each training file trains, validates, saves and
writes its log; each test file then restores and measures with the weights of its training file; one file resumes;
SPN goes on top of one. Networks are their full size (up to 194 M parameters), on 32-pixel crops."""
import glob
import json
import os.path as osp

import pytest
import yaml

from tests.helpers import TEST_DATA, changed_option_keys, key_allowed, pair_lmdbs, run_entry_point

pytestmark = pytest.mark.e2e

OPTIONS = osp.join(TEST_DATA, 'nafnet', 'options')
TRAIN_FILES = sorted(osp.relpath(p, osp.join(OPTIONS, 'train'))
                     for p in glob.glob(osp.join(OPTIONS, 'train', '*', '*')))
ALLOWED = ('num_gpu', 'datasets.*.dataroot_gt', 'datasets.*.dataroot_lq', 'datasets.*.num_worker_per_gpu',
           'datasets.train.gt_size', 'datasets.train.batch_size_per_gpu', 'train.total_iter', 'train.scheduler.T_max',
           'val.val_freq', 'logger.save_checkpoint_freq', 'logger.print_freq', 'path.pretrain_network_g')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('nafnet_data')
    return {'train': pair_lmdbs(root / 'train', n=4, gt=(48, 48, 3), lq=(48, 48, 3)),
            'val': pair_lmdbs(root / 'val', n=2, gt=(40, 36, 3), lq=(40, 36, 3))}


def adapted(rel, phase, data, folder, iters, checkpoint_every, pretrain=None):
    """Their file with the allowed changes, written to ``folder``; the changed keys are asserted allowed."""
    with open(osp.join(OPTIONS, phase, rel)) as f:
        original = yaml.safe_load(f)
    opt = yaml.safe_load(yaml.safe_dump(original))
    opt['num_gpu'] = 0
    for name, ds in opt['datasets'].items():
        source = data['train'] if name == 'train' else data['val']
        ds.update(dataroot_gt=source[0], dataroot_lq=source[1])
        if name == 'train':
            ds.update(gt_size=32, batch_size_per_gpu=2, num_worker_per_gpu=0)
    if phase == 'train':
        opt['train'].update(total_iter=iters)
        opt['train']['scheduler']['T_max'] = iters
        opt['val']['val_freq'] = iters
        opt['logger'].update(save_checkpoint_freq=checkpoint_every, print_freq=1)
    if pretrain is not None:
        opt['path']['pretrain_network_g'] = pretrain
    assert [k for k in changed_option_keys(original, opt) if not key_allowed(k, ALLOWED)] == []
    path = osp.join(str(folder), f'{phase}_{rel.replace("/", "_")}')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path, opt


def log_text(experiment, prefix):
    """The newest log of the experiment (a resumed run writes its own)."""
    logs = sorted(glob.glob(osp.join(experiment, f'{prefix}_*.log')))
    assert logs, f'no {prefix} log in {experiment}'
    with open(logs[-1]) as f:
        return f.read()


@pytest.mark.parametrize('rel', TRAIN_FILES)
def test_their_training_file_trains_then_their_test_file_restores_with_its_weights(rel, data, tmp_path):
    wide = 'width64' in rel  # 68-194 M parameters: one step, and only the final weights are saved
    iters, every = (1, 1000) if wide else (2, 2)
    path, opt = adapted(rel, 'train', data, tmp_path, iters, every)
    run = run_entry_point('mclir_basicsr.train', ['-opt', path], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    experiment = tmp_path / 'experiments' / opt['name']
    log = log_text(experiment, 'train')
    assert 'Model [ImageRestorationModel] is created.' in log and f'Validation {opt["datasets"]["val"]["name"]}' in log
    assert 'l_pix: -' in log and 'grad_norm' in log  # PSNRLoss is negative; NAFNet clips by default
    assert (experiment / 'models' / 'net_g_latest.pth').is_file()
    if not wide:
        assert (experiment / 'models' / 'net_g_2.pth').is_file()
        assert (experiment / 'training_states' / '2.state').is_file()

    test_path, test_opt = adapted(rel, 'test', data, tmp_path, iters, every,
                                  pretrain=str(experiment / 'models' / 'net_g_latest.pth'))
    run = run_entry_point('mclir_basicsr.test', ['-opt', test_path], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / 'results' / test_opt['name']
    (test_set, ) = test_opt['datasets'].values()  # phase test (GoPro, REDS) or val (SIDD)
    with open(results / 'metrics.json') as f:
        metrics = json.load(f)[test_set['name']]
    assert set(metrics) == {'psnr', 'ssim'} and 0 < metrics['psnr'] < 100
    images = sorted(p.name for p in (results / 'visualization' / test_set['name']).iterdir())
    assert images == ['img0.png', 'img0_gt.png', 'img1.png', 'img1_gt.png']  # their save_img: result and GT


def test_their_file_resumes_and_takes_spn_on_top(data, tmp_path):
    rel = 'SIDD/NAFNet-width32.yml'
    path, opt = adapted(rel, 'train', data, tmp_path, 2, 2)
    assert run_entry_point('mclir_basicsr.train', ['-opt', path], cwd=tmp_path).returncode == 0
    longer, _ = adapted(rel, 'train', data, tmp_path, 4, 2)
    run = run_entry_point('mclir_basicsr.train', ['-opt', longer, '--auto_resume'], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    log = log_text(tmp_path / 'experiments' / opt['name'], 'train')
    assert 'Resuming training from epoch' in log
    assert (tmp_path / 'experiments' / opt['name'] / 'models' / 'net_g_4.pth').is_file()

    spn = dict(opt, name='spn_on_nafnet', model_type='MCLIRModel', base_model_type='ImageRestorationModel')
    spn['train'] = dict(opt['train'], spn_opt={'type': 'SPNLoss', 'loss_weight': 0.001, 'vgg_weights': 'random'},
                        history={'copies': [{'period': 1, 'decay': 0.5}]})
    spn_path = tmp_path / 'spn.yml'
    spn_path.write_text(yaml.safe_dump(spn))
    run = run_entry_point('mclir_basicsr.train', ['-opt', str(spn_path)], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    log = log_text(tmp_path / 'experiments' / 'spn_on_nafnet', 'train')
    assert 'Model [MCLIRImageRestorationModel] is created.' in log and 'l_spn' in log and 'l_pix: -' in log
