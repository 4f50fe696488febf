"""``python -m benchmarks.reproduce`` end to end on CPU with --tiny settings, every row, on generated data in the
public data sets' layouts (RESIDE as downloaded, prepared by --prepare-reside; DF2K sub-image lmdbs and the
benchmark sets' GTmod12 / LRbicx4 folders)."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from basicsr.utils.matlab_functions import imresize
from skimage import data as skdata

from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
from tests.helpers import ROOT


def _crops(count, size, seed):
    photo = skdata.astronaut()[:, :, ::-1]
    rng = np.random.default_rng(seed)
    for _ in range(count):
        y, x = rng.integers(0, photo.shape[0] - size, 2)
        yield np.ascontiguousarray(photo[y:y + size, x:x + size])


def _down4(img):
    return np.clip(np.round(imresize(img.astype(np.float32) / 255., 0.25) * 255), 0, 255).astype(np.uint8)


def _haze(img, beta):
    return np.clip(img * np.exp(-beta) + 230 * (1 - np.exp(-beta)), 0, 255).astype(np.uint8)


def make_public_layouts(root):
    """RESIDE ITS and SOTS-indoor as downloaded; DF2K's sub-image lmdbs; Set5, Urban100 and Manga109 x4."""
    raw = root / 'raw'
    for split, folder_gt, count, name in (('ITS', 'clear', 4, '{i}_{k}_0.{k}5.png'),
                                          ('SOTS_indoor', 'gt', 2, '{i}_{k}.png')):
        for sub in ('hazy', folder_gt):
            os.makedirs(raw / split / sub)
        for i, clear in enumerate(_crops(count, 48, seed=len(split)), 1):
            cv2.imwrite(str(raw / split / folder_gt / f'{i}.png'), clear)
            for k in (1, 2):
                cv2.imwrite(str(raw / split / 'hazy' / name.format(i=i, k=k)), _haze(clear, 0.4 * k))
    data = root / 'datasets'
    for folder, count, seed in (('DF2K_sub', 6, 1), ('Set5', 2, 2), ('Urban100', 2, 3), ('Manga109', 2, 4)):
        for sub in ('GTmod12', 'LRbicx4'):
            os.makedirs(data / folder / sub)
        for i, gt in enumerate(_crops(count, 64, seed)):
            cv2.imwrite(str(data / folder / 'GTmod12' / f'img{i:03d}.png'), gt)
            cv2.imwrite(str(data / folder / 'LRbicx4' / f'img{i:03d}.png'), _down4(gt))
    os.makedirs(data / 'DF2K')
    df2k = data / 'DF2K'
    folders_to_lmdb(str(data / 'DF2K_sub' / 'GTmod12'), str(data / 'DF2K_sub' / 'LRbicx4'),
                    str(df2k / 'DF2K_train_HR_sub.lmdb'), str(df2k / 'DF2K_train_LR_bicubic_X4_sub.lmdb'), quiet=True)
    return raw, data


@pytest.mark.e2e
def test_every_row_trains_and_tests_both_arms_and_prints_the_paper_beside(tmp_path):
    raw, data = make_public_layouts(tmp_path)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='2')
    run = subprocess.run([sys.executable, '-m', 'benchmarks.reproduce', '--row', 'all', '--tiny', '--data-root',
                          str(data), '--workdir', str(tmp_path / 'work'), '--threads', '2', '--prepare-reside',
                          str(raw / 'ITS'), str(raw / 'SOTS_indoor')], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    sots = sorted(os.listdir(data / 'RESIDE' / 'SOTS_indoor_paired' / 'hazy'))
    assert sots == ['1_1.png', '1_2.png', '2_1.png', '2_2.png']
    rows = (('ffanet-sots-indoor', 'SOTS_indoor', '36.39'), ('edsr-urban100', 'Urban100', '26.04'),
            ('swinir-light-manga109-x4', 'Manga109', '30.92'))
    for row, test_set, paper in rows:
        lines = [line for line in run.stdout.splitlines() if line.startswith(f'| {row} |')]
        assert len(lines) == 3 and f'| {test_set} |' in lines[0] and lines[0].endswith(f'| {paper} |'), lines
        result = json.load(open(tmp_path / 'work' / f'{row}.json'))
        assert result['tiny'] and set(result['results']) == {'l1', 'spn'}
        assert all(5 < r['psnr'] < 60 and 0 < r['ssim'] <= 1 for r in result['results'].values())
        logs = tmp_path / 'work' / 'logs'
        spn_log, l1_log = (open(logs / f'train_reproduce_{row}_{arm}.log').read() for arm in ('spn', 'l1'))
        assert 'l_spn' in spn_log and 'l_spn' not in l1_log
