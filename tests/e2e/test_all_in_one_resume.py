"""The all-in-one demo setting (AllInOneDataset with balanced batches and on-the-fly noise, NAFNet, SPN, AdamW,
cosine) keeps the guarantees: kill -9 then --auto_resume equals the uninterrupted run bit for bit on CPU."""
import os.path as osp

import pytest
import yaml

from tests.helpers import ROOT, equal_files, equal_states, run_straight_then_kill_and_resume


def _options(path, data, total_iter):
    demo = osp.join(ROOT, 'options', 'train', 'all_in_one', 'demo', 'train_MCLIR_NAFNet_AIO3_demo.yml')
    opt = yaml.safe_load(open(demo))
    opt.update(name='aio', num_gpu=0)
    train = opt['datasets']['train']
    train.update(gt_size=32, batch_size_per_gpu=3, balanced=True)
    for task in train['tasks']:
        key = 'dataroot_gt' if task['kind'] == 'denoise' else 'dataroot'
        task[key] = str(data / 'train' / task['kind'])
    for key in [k for k in opt['datasets'] if k.startswith('val')]:
        del opt['datasets'][key]
    del opt['val']
    opt['train'].update(total_iter=total_iter)
    opt['logger'].update(save_checkpoint_freq=4, print_freq=1)
    yaml.safe_dump(opt, open(path, 'w'))


@pytest.mark.e2e
def test_all_in_one_sigkill_then_auto_resume_equals_uninterrupted_run(tmp_path, aio_data):
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir()
        _options(root / 'train.yml', aio_data, 8)
    assert run_straight_then_kill_and_resume(straight, killed, ['--kill-at-iter', '6'])['iter'] == 4
    run = osp.join('experiments', 'aio')
    equal_files(straight / run / 'models' / 'net_g_8.pth', killed / run / 'models' / 'net_g_8.pth')
    equal_states(straight / run / 'training_states' / '8.state', killed / run / 'training_states' / '8.state')
