"""The all-in-one demo data built in full (mclir_basicsr.data.demo_all_in_one through demo_data): layout and names,
the degradations on the data, the manifest, determinism and idempotence. The degradations on small images:
unit/data/test_demo_all_in_one.py."""
import json
import os
import os.path as osp
import re

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import pytest

from mclir_basicsr.data import demo_all_in_one as aio
from mclir_basicsr.data import demo_data
from tests.helpers import dark_channel, files_by_path, grad_energy, luminance


# ----------------------------------------------------------------------------------------- full builds (e2e)
@pytest.fixture(scope='module')
def full(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('aio'))
    return root, demo_data.build_demo_data(root, tasks=['all_in_one'], quiet=True)['all_in_one']


@pytest.mark.e2e
def test_layout_and_names(full):
    _, p = full
    ls = (lambda key: sorted(os.listdir(p[key])))
    n = aio.N_TRAIN
    assert sorted(os.listdir(p['root'])) == ['manifest.json', 'train', 'val']
    for split in ('train', 'val'):
        assert sorted(os.listdir(osp.join(p['root'], split))) == sorted(aio.AIO_TASKS)
    assert len(ls('train_denoise_gt')) == n and ls('val_denoise_gt') == ['chelsea.png', 'coffee.png']
    for split, k in (('train', n), ('val', 2)):
        assert ls(f'{split}_derain_lq') == sorted(f'rain-{i}.png' for i in range(1, k + 1))
        assert ls(f'{split}_derain_gt') == sorted(f'norain-{i}.png' for i in range(1, k + 1))
        for task in ('deblur', 'lowlight'):
            assert ls(f'{split}_{task}_lq') == ls(f'{split}_{task}_gt') and len(ls(f'{split}_{task}_gt')) == k
    assert p['train_dehaze_lq'].endswith('train/dehaze/synthetic/part1')
    assert p['val_dehaze_lq'].endswith('val/dehaze/hazy')
    assert ls('train_dehaze_gt') == [f'{i:04d}.jpg' for i in range(1, n // aio.HAZE_VARIANTS + 1)]
    assert ls('val_dehaze_gt') == ['0001.png', '0002.png']
    for split, ext, per_gt in (('train', 'jpg', aio.HAZE_VARIANTS), ('val', 'png', 1)):
        hazy = ls(f'{split}_dehaze_lq')
        assert all(re.fullmatch(rf'\d{{4}}_[01](\.\d+)?_\d(\.\d+)?\.{ext}', f) for f in hazy)
        assert sorted({f.split('_')[0] for f in hazy}) == [f[:4] for f in ls(f'{split}_dehaze_gt')]
        assert len(hazy) == per_gt * len(ls(f'{split}_dehaze_gt'))
    for f in ls('train_dehaze_lq')[:3] + ls('train_dehaze_gt')[:3]:
        key = 'train_dehaze_lq' if f.count('_') else 'train_dehaze_gt'
        assert open(osp.join(p[key], f), 'rb').read(2) == b'\xff\xd8'  # really JPEG
    assert cv2.imread(osp.join(p['val_lowlight_gt'], 'chelsea.png')).shape == (192, 192, 3)
    assert cv2.imread(osp.join(p['train_deblur_gt'], ls('train_deblur_gt')[0])).shape == (128, 128, 3)


@pytest.mark.e2e
def test_degradations_on_the_data(full):
    root, p = full
    man = json.load(open(p['manifest']))
    for task in ('derain', 'dehaze', 'deblur', 'lowlight'):
        for split in ('train', 'val'):
            for e in man['tasks'][task]['images'][split]:
                gt = cv2.imread(osp.join(p['root'], e['gt']))
                for lq in e['lq'] if task == 'dehaze' else [e['lq']]:
                    lq = cv2.imread(osp.join(p['root'], lq))
                    assert lq.shape == gt.shape, e
                    if task == 'derain':
                        assert (lq >= gt).all() and (luminance(lq) > 200).sum() > (luminance(gt) > 200).sum(), e
                    elif task == 'dehaze':  # local contrast down, dark channel up
                        assert grad_energy(lq) < grad_energy(gt) and dark_channel(lq) > dark_channel(gt) + 10, e
                        if split == 'val':
                            assert luminance(lq).std() < luminance(gt).std(), e
                    elif task == 'deblur':
                        assert grad_energy(lq) < 0.7 * grad_energy(gt), e
                    else:
                        assert lq.mean() < 0.5 * gt.mean(), e


@pytest.mark.e2e
def test_manifest(full):
    _, p = full
    man = json.load(open(p['manifest']))
    assert man['task'] == 'all_in_one' and man['seed'] == 0 and set(man['tasks']) == set(aio.AIO_TASKS)
    assert man['config']['all_in_one']['n_train'] == 40
    assert man['config']['train_photos'] == list(demo_data.TRAIN_PHOTOS)
    assert set(man['versions']) == {'scikit-image', 'numpy', 'opencv'}
    counts = {t: man['tasks'][t]['counts'] for t in aio.AIO_TASKS}
    assert counts['denoise'] == {'train': {'gt': 40, 'lq': 0}, 'val': {'gt': 2, 'lq': 0}}
    assert counts['dehaze'] == {'train': {'gt': 10, 'lq': 40}, 'val': {'gt': 2, 'lq': 2}}
    assert all(counts[t] == {'train': {'gt': 40, 'lq': 40}, 'val': {'gt': 2, 'lq': 2}}
               for t in ('derain', 'deblur', 'lowlight'))
    assert all('recipe' in man['tasks'][t] for t in aio.AIO_TASKS)
    rain = man['tasks']['derain']['images']['val']
    assert [e['source'] for e in rain] == ['chelsea', 'coffee'] and {'density', 'length', 'tilt_deg'} <= set(rain[0])
    assert not any(e['source'].startswith(('chelsea', 'coffee')) for e in man['tasks']['deblur']['images']['train'])


@pytest.mark.e2e
def test_deterministic_and_idempotent(full, tmp_path, capsys):
    root, p = full
    stamp = os.stat(p['manifest']).st_mtime_ns
    assert demo_data.main(['--root', root, '--tasks', 'all_in_one']) == 0  # complete: nothing rewritten
    assert 'already built' in capsys.readouterr().out and os.stat(p['manifest']).st_mtime_ns == stamp
    other = demo_data.build_demo_data(str(tmp_path), tasks=['all_in_one'], quiet=True)['all_in_one']
    assert files_by_path(other['root']) == files_by_path(p['root'])  # same seed -> same bytes (PNG, JPEG and manifest)
