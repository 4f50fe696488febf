"""Tests of the all-in-one demo data (mclir_basicsr.data.demo_all_in_one, built through demo_data)."""
import json
import os
import os.path as osp
import re
import shutil

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import numpy as np
import pytest

from mclir_basicsr.data import demo_all_in_one as aio
from mclir_basicsr.data import demo_data

TINY = dict(tasks=['all_in_one'], train_photos=('astronaut', ), max_crops_per_photo=6, quiet=True)


def _img(seed=0, size=48):
    """A smooth-ish colour test image with edges (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(30, 220, (6, 6, 3)).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(img, (3, 3), 0.7)


def _lum(img):
    return img.astype(np.float64) @ [0.299, 0.587, 0.114]


def _grad_energy(img):
    g = _lum(img)
    return float((cv2.Sobel(g, -1, 1, 0) ** 2 + cv2.Sobel(g, -1, 0, 1) ** 2).mean())


def _dark_channel(img):
    return float(cv2.erode(img.min(-1), np.ones((15, 15), np.uint8)).mean())


def _files(root):
    return {osp.relpath(osp.join(d, f), root): open(osp.join(d, f), 'rb').read()
            for d, _, fs in os.walk(root) for f in fs}


# ------------------------------------------------------------------------------- degradations (fast unit tests)
@pytest.mark.parametrize('length, angle', [(7, 0), (9, 90), (12, 37.5), (1, 10)])
def test_line_kernel(length, angle):
    k = aio.line_kernel(length, angle)
    assert k.shape[0] == k.shape[1] == length // 2 * 2 + 1 and abs(k.sum() - 1) < 1e-5 and k.min() >= 0
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-6)  # symmetric about the centre
    if angle == 0:
        assert k[length // 2].sum() > 0.99  # horizontal: the middle row
    if angle == 90:
        assert k[:, length // 2].sum() > 0.99  # vertical: the middle column


def test_add_rain_adds_bright_streaks_deterministically():
    gt = _img()
    rainy, prm = aio.add_rain(gt, np.random.default_rng(1))
    again, prm2 = aio.add_rain(gt, np.random.default_rng(1))
    np.testing.assert_array_equal(rainy, again)
    assert prm == prm2 and rainy.dtype == np.uint8 and rainy.shape == gt.shape
    p = aio.PARAMS['derain']
    assert p['length'][0] <= prm['length'] <= p['length'][1] and abs(prm['tilt_deg']) <= 25
    assert (rainy >= gt).all() and (_lum(rainy) > 200).sum() > (_lum(gt) > 200).sum()
    diff = rainy.astype(int) - gt
    assert (diff[..., 0] == diff[..., 1]).mean() > 0.95  # white (the same on every channel) unless clipped


def test_depth_proxy_and_haze():
    gt = _img(2, 64)
    d = aio.depth_proxy(gt)
    assert d.shape == gt.shape[:2] and d.min() == 0 and abs(d.max() - 1) < 1e-6
    assert d[:8].mean() > d[-8:].mean()  # the top reads far
    np.testing.assert_array_equal(aio.add_haze(gt, 0.9, 0.), gt)  # beta 0: clear air
    hazy = aio.add_haze(gt, 0.9, 1.2)
    assert _grad_energy(hazy) < 0.7 * _grad_energy(gt)  # local contrast: the global std may rise with the airlight
    assert _dark_channel(hazy) > _dark_channel(gt) + 20
    assert _dark_channel(aio.add_haze(gt, 0.9, 2.0)) > _dark_channel(hazy)  # thicker haze, brighter dark channel


def test_motion_blur_lowers_gradient_energy():
    gt = _img(3)
    blur, prm = aio.motion_blur(gt, np.random.default_rng(0))
    assert 7 <= prm['length'] <= 17 and 0 <= prm['angle_deg'] <= 180
    assert _grad_energy(blur) < 0.7 * _grad_energy(gt)
    flat = np.full((20, 20, 3), 77, np.uint8)
    np.testing.assert_array_equal(aio.motion_blur(flat, np.random.default_rng(0))[0], flat)


def test_darken_lowers_the_mean():
    gt = _img(4)
    low, prm = aio.darken(gt, np.random.default_rng(0))
    assert 1.5 <= prm['gamma'] <= 2.5 and 0.1 <= prm['k'] <= 0.3 and prm['noise_sigma'] <= 0.012
    assert low.dtype == np.uint8 and low.mean() < 0.3 * gt.mean()


def test_make_pairs_names_and_select():
    items = [(f'p_s{i:03d}', _img(i, 32)) for i in range(3)]
    rain = aio.make_pairs('derain', 'train', items, 0)
    assert [sorted(f) for _, f in rain] == [[f'train/derain/gt/norain-{i}.png', f'train/derain/rainy/rain-{i}.png']
                                            for i in (1, 2, 3)]
    haze = aio.make_pairs('dehaze', 'train', items, 0)
    for i, (entry, files) in enumerate(haze, 1):
        assert entry['gt'] == f'train/dehaze/original/{i:04d}.jpg' and len(entry['lq']) == aio.HAZE_VARIANTS
        assert len({tuple(v) for v in entry['A_beta']}) == aio.HAZE_VARIANTS and len(files) == 5
        for f, (a, b) in zip(entry['lq'], entry['A_beta']):
            assert f == f'train/dehaze/synthetic/part1/{i:04d}_{a:g}_{b:g}.jpg'
    val = aio.make_pairs('dehaze', 'val', items[:1], 0)[0][0]
    assert re.fullmatch(r'val/dehaze/hazy/0001_[01](\.\d+)?_\d(\.\d+)?\.png', val['lq'][0])
    assert val['gt'] == 'val/dehaze/gt/0001.png'
    for task, lq, gt in (('deblur', 'blur', 'sharp'), ('lowlight', 'low', 'high')):
        e = aio.make_pairs(task, 'val', items[:1], 0)[0][0]
        assert (e['lq'], e['gt']) == (f'val/{task}/{lq}/p_s000.png', f'val/{task}/{gt}/p_s000.png')
    denoise = aio.make_pairs('denoise', 'train', items[:1], 0)[0][0]
    assert denoise == {'source': 'p_s000', 'gt': 'train/denoise/p_s000.png'}
    pool = [(f'x{i}', None) for i in range(100)]
    picks = aio.select(pool, 'deblur', 0)
    assert len(picks) == aio.N_TRAIN == len({n for n, _ in picks}) and picks == aio.select(pool, 'deblur', 0)
    assert picks != aio.select(pool, 'derain', 0) and len(aio.select(pool, 'dehaze', 0)) == 10
    assert len(aio.select(pool[:5], 'deblur', 0)) == 5


def test_not_built_by_default():
    assert demo_data.TASKS == ('sr_x2', 'dn_s25') and 'all_in_one' in demo_data.ALL_TASKS
    with pytest.raises(ValueError, match='non-empty subset'):
        demo_data.build_demo_data('unused', tasks=['all-in-one'])


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
                        assert (lq >= gt).all() and (_lum(lq) > 200).sum() > (_lum(gt) > 200).sum(), e
                    elif task == 'dehaze':  # local contrast down, dark channel up
                        assert _grad_energy(lq) < _grad_energy(gt) and _dark_channel(lq) > _dark_channel(gt) + 10, e
                        if split == 'val':
                            assert _lum(lq).std() < _lum(gt).std(), e
                    elif task == 'deblur':
                        assert _grad_energy(lq) < 0.7 * _grad_energy(gt), e
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
    assert _files(other['root']) == _files(p['root'])  # same seed -> same bytes (PNG, JPEG and manifest)


def test_rebuilds_when_changed_partial_or_forced(tmp_path):
    root = str(tmp_path)
    p = demo_data.build_demo_data(root, **TINY)['all_in_one']
    first = _files(p['root'])
    assert len(os.listdir(p['train_deblur_gt'])) == 6 and len(os.listdir(p['train_dehaze_lq'])) == 24
    reseeded = _files(demo_data.build_demo_data(root, seed=1, **TINY)['all_in_one']['root'])
    assert reseeded.keys() != first.keys() or reseeded != first  # settings changed -> rebuilt
    os.remove(osp.join(p['val_derain_lq'], 'rain-2.png'))  # as if interrupted or damaged
    demo_data.build_demo_data(root, seed=1, **TINY)
    assert _files(p['root']) == reseeded
    stamp = os.stat(p['manifest']).st_mtime_ns
    demo_data.build_demo_data(root, seed=1, force=True, **TINY)
    assert os.stat(p['manifest']).st_mtime_ns != stamp and _files(p['root']) == reseeded
    assert sorted(os.listdir(root)) == ['all_in_one']  # no temporary folders left
    (tmp_path / 'all_in_one' / 'mine.txt').write_text('user file')
    with pytest.raises(FileExistsError, match='did not make'):
        demo_data.build_demo_data(root, seed=2, **TINY)
    shutil.rmtree(p['root'])
