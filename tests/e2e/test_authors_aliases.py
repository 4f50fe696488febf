"""The MCLIR authors' own option file (tests/data) through the train entry point on CPU, with only its data paths,
num_gpu and sizes changed: it trains, validates, saves its history copies and resumes. Their class names and keys in
process: unit/methods/mclir/test_authors_aliases.py."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml

from tests.helpers import ROOT, run_module

AUTHORS_FILE = osp.join(ROOT, 'tests', 'data', 'authors_FFANet_RESIDE_IN_fromScratch.yml')


def _dehaze_pairs(root, n=4, size=48):
    rng = np.random.default_rng(0)
    for sub in ('gt', 'lq'):
        os.makedirs(root / sub)
    for i in range(n):
        gt = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(root / 'gt' / f'{i:04d}.png'), gt)
        cv2.imwrite(str(root / 'lq' / f'{i:04d}.png'), (0.6 * gt + 90).astype(np.uint8))  # a flat 'haze'
    return root


@pytest.mark.e2e
def test_the_authors_option_file_trains_saves_copies_and_resumes_on_cpu(vgg_home):
    """Their file with only the data paths, num_gpu and sizes changed: trains, validates, saves the copies, and
    auto-resumes on CPU."""
    data = _dehaze_pairs(vgg_home / 'data')
    opt = yaml.safe_load(open(AUTHORS_FILE))
    opt['num_gpu'] = 0
    for phase in ('train', 'val'):
        opt['datasets'][phase].update(dataroot_gt=str(data / 'gt'), dataroot_lq=str(data / 'lq'))
    opt['datasets']['train'].update(gt_size=32, batch_size_per_gpu=2)  # sizes for a CPU test
    opt['network_g']['blocks'] = 1
    opt['train']['total_iter'] = 4
    opt['logger'].update(save_checkpoint_freq=2, print_freq=1)
    yaml.safe_dump(opt, open(vgg_home / 'authors.yml', 'w'))
    res = run_module('mclir_basicsr.train', ['-opt', 'authors.yml'], cwd=vgg_home)
    assert res.returncode == 0, res.stderr[-3000:]
    exp = vgg_home / 'experiments' / opt['name']
    state = torch.load(exp / 'training_states' / '4.state', weights_only=True)
    assert len({k.split('.')[1] for k in state['mclir']['history']}) == 4  # the four copies are saved
    opt['train']['total_iter'] = 6
    yaml.safe_dump(opt, open(vgg_home / 'authors.yml', 'w'))
    res = run_module('tests.instrumented', ['--report', 'resume', '--', '-opt', 'authors.yml', '--auto_resume'],
                     cwd=vgg_home)
    assert res.returncode == 0, res.stderr[-3000:]
    report = yaml.safe_load(open(vgg_home / 'resume.rank0.json'))
    assert report['iter'] == 4 and len(report['digests']) == 4
    assert (exp / 'training_states' / '6.state').exists()
