"""``mclir-restore`` as installed (the console script): from a model trained here through ``mclir-train`` (latest,
best from BasicSR's own log, EMA), exit codes, and refusals that leave nothing behind."""
import glob
import os
import re

import cv2
import pytest
import torch

from tests.helpers import console, run_entry_point, write_options

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_data):
    """The demo's EDSR file made tiny, 6 iterations: validations at 3 and 6, checkpoints at 3 and 6."""
    root = tmp_path_factory.mktemp('restore_trained')
    path = write_options(root / 'train.yml', tiny_data, name='restore_src', total_iter=6)
    run = run_entry_point('mclir_basicsr.train', ['-opt', str(path)], cwd=root)
    assert run.returncode == 0, run.stderr[-2000:]
    return root


def test_latest_and_best_of_a_run_trained_here(trained, tiny_data):
    photos = str(tiny_data / 'val' / 'lq')
    latest = console('mclir-restore', ['-opt', 'train.yml', '-i', photos, '-o', 'latest', '--quiet'], trained)
    assert latest.returncode == 0, latest.stderr
    assert 'net_g_latest.pth (params,' in latest.stdout and '; x2, cpu)' in latest.stdout
    (log, ) = glob.glob(str(trained / 'experiments' / 'restore_src' / 'train_*.log'))
    best_iter = int(re.findall(r'# psnr: \S+\tBest: \S+ @ (\d+) iter', open(log).read())[-1])
    best = console('mclir-restore', ['-opt', 'train.yml', '--which', 'best', '-i', photos, '-o', 'best', '--quiet'],
                   trained)
    assert best.returncode == 0, best.stderr
    # the end-of-training validation (counted past total_iter: 6) scores the latest weights
    assert f'net_g_{best_iter if best_iter <= 6 else "latest"}.pth (params,' in best.stdout
    for name in os.listdir(photos):
        lq = cv2.imread(os.path.join(photos, name))
        assert cv2.imread(str(trained / 'latest' / name)).shape == (lq.shape[0] * 2, lq.shape[1] * 2, 3)
    ema = console('mclir-restore', ['-opt', 'train.yml', '--which', 'ema', '-i', photos, '-o', 'ema'], trained)
    assert ema.returncode == 1 and 'no state dict under "params_ema"' in ema.stderr  # trained with ema_decay 0
    assert ema.stderr.count('\n') == 1 and not (trained / 'ema').exists()


def test_an_unreadable_image_exits_1_after_writing_the_others(trained, tiny_data, tmp_path):
    photos = tmp_path / 'photos'
    photos.mkdir()
    for name in os.listdir(tiny_data / 'val' / 'lq'):
        (photos / name).write_bytes((tiny_data / 'val' / 'lq' / name).read_bytes())
    (photos / 'zz_broken.png').write_bytes(b'\x89PNG broken')
    run = console('mclir-restore', ['-opt', 'train.yml', '-i', str(photos), '-o', str(tmp_path / 'out'), '--quiet'],
                  trained)
    assert run.returncode == 1
    assert run.stderr.startswith('skipped: ') and 'zz_broken.png' in run.stderr and run.stderr.count('\n') == 1
    assert sorted(os.listdir(tmp_path / 'out')) == sorted(os.listdir(tiny_data / 'val' / 'lq'))
    assert f'2 written to {tmp_path / "out"}, 1 failed' in run.stdout


def test_weights_that_do_not_fit_are_refused_before_any_image(trained, tiny_data, tmp_path):
    weights = str(trained / 'experiments' / 'restore_src' / 'models' / 'net_g_latest.pth')
    run = console('mclir-restore', ['-i', str(tiny_data / 'val' / 'lq'), '-o', 'out', '--network', 'EDSR',
                                    '--network-args', '{num_in_ch: 3, num_out_ch: 3, num_feat: 8, num_block: 2, '
                                    'upscale: 2}', '--weights', weights], tmp_path)
    assert run.returncode == 1 and run.stderr.count('\n') == 1
    assert 'do not fit EDSR' in run.stderr and 'missing, first [body.1.' in run.stderr
    assert os.listdir(tmp_path) == []
    assert torch.load(weights, weights_only=True)['params']  # the file is untouched


def test_the_demo_ends_with_one_photo_side_by_side(tmp_path, monkeypatch):
    """make demo's last step: its test files' weights restore one validation photo through mclir-restore."""
    import sys

    import numpy as np
    import yaml

    from mclir_basicsr.cli import demo
    from mclir_basicsr.inference.restorer import build_network
    from tests.helpers import ROOT
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'options').symlink_to(os.path.join(ROOT, 'options'))
    cfg = demo.TASKS['sr_x2']
    for _, name in cfg['arms']:
        with open(demo._option_file('test', name)) as f:
            opt = yaml.safe_load(f)
        weights = tmp_path / opt['path']['pretrain_network_g']
        weights.parent.mkdir(parents=True)
        torch.save({'params': build_network(opt['network_g'], name).state_dict()}, weights)
    lq = tmp_path / next(iter(opt['datasets'].values()))['dataroot_lq']
    lq.mkdir(parents=True)
    cv2.imwrite(str(lq / '0801.png'), np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    path = demo.side_by_side('sr_x2', cfg, cfg['arms'], sys.executable)
    picture = cv2.imread(path)
    assert path == os.path.join('results', 'demo_side_by_side_sr_x2.png')
    assert picture.shape == (40 + 22, 3 * 60, 3)  # input (bicubic) | baseline | SPN, each under its label
    assert os.path.isfile(tmp_path / 'results' / 'demo_restore' / cfg['arms'][1][1] / '0801.png')
