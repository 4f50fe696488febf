"""End to end through our entry points and BasicSR's train/test pipelines, in subprocesses, on lmdb data."""
import json
import os.path as osp

import pytest
import torch
import yaml

from tests.helpers import ROOT, run_module, write_options

pytestmark = pytest.mark.e2e


def _copy(state_path, index):
    """One history copy's tensors from a training state."""
    history = torch.load(state_path, weights_only=True)['mclir']['history']
    return {k: v for k, v in history.items() if k.startswith(f'copies.{index}.')}


def _logged_scalars(tb_dir):
    """Tags of the scalars written to tensorboard under ``tb_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = set()
    for events in tb_dir.glob('events.out.tfevents.*'):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()['scalars'])
    return tags


def test_train_validate_save_resume_and_test(tmp_path, tiny_data):
    opt_file = write_options(tmp_path / 'train.yml', tiny_data)
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'pipe'
    assert (exp / 'models' / 'net_g_6.pth').exists() and (exp / 'training_states' / '6.state').exists()
    assert _logged_scalars(tmp_path / 'tb_logger' / 'pipe') >= {'losses/l_pix', 'losses/l_spn',
                                                                'metrics/demo_sr_x2_val/psnr'}
    first = _copy(exp / 'training_states' / '6.state', 1)

    # --auto_resume relative to the experiment root (run from the same root) continues to 9 on CPU
    write_options(opt_file, tiny_data, total_iter=9)
    res = run_module('tests.instrumented', ['--report', 'resume', '--', '-opt', str(opt_file), '--auto_resume'],
                     cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert json.load(open(tmp_path / 'resume.rank0.json'))['iter'] == 6
    assert not list((tmp_path / 'experiments').glob('pipe_archived_*'))  # resumed, not restarted
    resumed = _copy(exp / 'training_states' / '9.state', 1)
    # copy 1 (period 3) was refreshed at 9 from restored values: it differs from the one saved at 6
    assert any(not torch.equal(first[k], resumed[k]) for k in first)

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
    (states / '6.state').write_bytes((states / '6.state').read_bytes()[:200])  # a torn write
    write_options(opt_file, tiny_data, total_iter=4)
    res = run_module('tests.instrumented', ['--report', 'resume', '--', '-opt', str(opt_file), '--auto_resume'],
                     cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'skipping' in res.stderr and '6.state' in res.stderr  # the warning names the file it skipped
    assert json.load(open(tmp_path / 'resume.rank0.json'))['iter'] == 3
    assert (states / '6.state').exists()  # nothing is deleted


def test_cuda_prefetch_falls_back_on_cpu(tmp_path, tiny_data):
    opt_file = write_options(tmp_path / 'train.yml', tiny_data, total_iter=2,
                             extra={'datasets.train.prefetch_mode': 'cuda', 'datasets.train.pin_memory': True})
    res = run_module('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'using the CPU prefetcher' in res.stderr
