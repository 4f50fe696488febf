"""End to end through our entry points and BasicSR's train/test pipelines, in subprocesses, on lmdb data."""
import json
import os.path as osp

import pytest
import torch
import yaml

from tests.conftest import ROOT, run_module

pytestmark = pytest.mark.pipeline


def write_options(path, data_root, name='pipe', total_iter=6, extra=None):
    opt = yaml.safe_load(open(osp.join(ROOT, 'options', 'train', 'demo', 'train_MCLIR_EDSR_SRx2_demo.yml')))
    opt['name'] = name
    opt['num_gpu'] = 0
    train_set, val_set = opt['datasets']['train'], opt['datasets']['val']
    train_set.update(dataroot_gt=str(data_root / 'train_gt.lmdb'), dataroot_lq=str(data_root / 'train_lq.lmdb'),
                     gt_size=32, batch_size_per_gpu=2, dataset_enlarge_ratio=4)
    val_set.update(dataroot_gt=str(data_root / 'val_gt.lmdb'), dataroot_lq=str(data_root / 'val_lq.lmdb'))
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['train']['total_iter'] = total_iter
    opt['train']['history']['copies'] = [{'period': 2, 'decay': 0.5}, {'period': 3, 'decay': 0.1}]
    opt['train']['spn_opt'].update(vgg_type='vgg11', layer_weights={'relu1_1': 1.0})
    opt['val']['val_freq'] = 3
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3, use_tb_logger=True)
    for key, value in (extra or {}).items():
        target = opt
        *parents, leaf = key.split('.')
        for p in parents:
            target = target[p]
        target[leaf] = value
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path


def _copies(state_path):
    return torch.load(state_path, weights_only=True)['mclir']['history']['copies']


def test_train_validate_save_resume_and_test(tmp_path, tiny_data):
    opt_file = write_options(tmp_path / 'train.yml', tiny_data)
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'pipe'
    log = open(next(exp.glob('train_pipe_*.log'))).read()
    assert 'l_pix:' in log and 'l_spn:' in log and '# psnr:' in log and '# ssim:' in log
    assert 'History copies from train.history: 2' in log
    assert (exp / 'models' / 'net_g_6.pth').exists() and (exp / 'training_states' / '6.state').exists()
    assert list((tmp_path / 'tb_logger' / 'pipe').glob('events.out.tfevents.*'))
    first = _copies(exp / 'training_states' / '6.state')

    # --auto_resume relative to the experiment root (run from the same root) continues to 9 on CPU
    write_options(opt_file, tiny_data, total_iter=9)
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file), '--auto_resume'], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    logs = sorted(exp.glob('train_pipe_*.log'))
    log = open(logs[-1]).read() if len(logs) > 1 else open(logs[0]).read()
    assert 'Restored 2 history copies' in log and 'Resuming training from epoch: ' in log
    assert not list((tmp_path / 'experiments').glob('pipe_archived_*'))  # resumed, not restarted
    resumed = _copies(exp / 'training_states' / '9.state')
    # copy 1 (period 3) was refreshed at 9 from restored values: it differs from the one saved at 6
    assert any(not torch.equal(first[1][k], resumed[1][k]) for k in first[1])

    # test through BasicSR's test pipeline, metrics.json written
    test_opt = yaml.safe_load(open(osp.join(ROOT, 'options', 'test', 'demo', 'test_MCLIR_EDSR_SRx2_demo.yml')))
    test_opt.update(name='pipe_test', num_gpu=0)
    test_opt['network_g'].update(num_feat=8, num_block=1)
    test_opt['datasets']['test_1'].update(dataroot_gt=str(tiny_data / 'val' / 'gt'),
                                          dataroot_lq=str(tiny_data / 'val' / 'lq'))
    test_opt['path']['pretrain_network_g'] = str(exp / 'models' / 'net_g_latest.pth')
    with open(tmp_path / 'test.yml', 'w') as f:
        yaml.safe_dump(test_opt, f)
    res = run_module('mclir_basicsr.test', ['-opt', str(tmp_path / 'test.yml')], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    metrics = json.load(open(tmp_path / 'results' / 'pipe_test' / 'metrics.json'))
    assert 5 < metrics['demo_sr_x2_val']['psnr'] < 60 and 0 < metrics['demo_sr_x2_val']['ssim'] <= 1
    assert len(list((tmp_path / 'results' / 'pipe_test' / 'visualization' / 'demo_sr_x2_val').glob('*.png'))) == 2


def test_option_typo_fails_before_anything_is_written(tmp_path, tiny_data):
    opt_file = write_options(tmp_path / 'train.yml', tiny_data)
    text = open(opt_file).read().replace('history:', 'histroy:')
    open(opt_file, 'w').write(text)
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=tmp_path)
    assert res.returncode != 0
    assert 'unknown key train.histroy. Did you mean train.history?' in res.stderr
    assert 'Traceback' not in res.stderr
    assert not (tmp_path / 'experiments').exists()


def test_resume_state_pointing_nowhere(tmp_path, tiny_data):
    opt_file = write_options(tmp_path / 'train.yml', tiny_data,
                             extra={'path.resume_state': str(tmp_path / 'missing' / '100.state')})
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=tmp_path)
    assert res.returncode != 0
    assert 'path.resume_state points to' in res.stderr and '100.state' in res.stderr
    assert not (tmp_path / 'experiments').exists()


def test_auto_resume_skips_corrupt_latest_state(tmp_path, tiny_data):
    opt_file = write_options(tmp_path / 'train.yml', tiny_data)
    assert run_module('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=tmp_path).returncode == 0
    states = tmp_path / 'experiments' / 'pipe' / 'training_states'
    good = _copies(states / '3.state')
    (states / '6.state').write_bytes((states / '6.state').read_bytes()[:200])  # a torn write
    write_options(opt_file, tiny_data, total_iter=4)
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file), '--auto_resume'], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'skipping' in res.stderr and '6.state' in res.stderr
    log = open(sorted((tmp_path / 'experiments' / 'pipe').glob('train_pipe_*.log'))[-1]).read()
    assert 'Resuming training from epoch: 0, iter: 3.' in log
    assert (states / '6.state').exists()  # nothing is deleted
    del good


def test_cuda_prefetch_falls_back_on_cpu(tmp_path, tiny_data):
    opt_file = write_options(tmp_path / 'train.yml', tiny_data, total_iter=2,
                             extra={'datasets.train.prefetch_mode': 'cuda', 'datasets.train.pin_memory': True})
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'using the CPU prefetcher' in res.stderr
