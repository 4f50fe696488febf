"""Tests of the all-in-one demo data (mclir_basicsr.data.demo_all_in_one, built through demo_data)."""
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
from tests.helpers import dark_channel, files_by_path, grad_energy, luminance

TINY = dict(tasks=['all_in_one'], train_photos=('astronaut', ), max_crops_per_photo=6, quiet=True)


def _img(seed=0, size=48):
    """A smooth-ish colour test image with edges (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(30, 220, (6, 6, 3)).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(img, (3, 3), 0.7)


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
    assert (rainy >= gt).all() and (luminance(rainy) > 200).sum() > (luminance(gt) > 200).sum()
    diff = rainy.astype(int) - gt
    assert (diff[..., 0] == diff[..., 1]).mean() > 0.95  # white (the same on every channel) unless clipped


def test_depth_proxy_and_haze():
    gt = _img(2, 64)
    d = aio.depth_proxy(gt)
    assert d.shape == gt.shape[:2] and d.min() == 0 and abs(d.max() - 1) < 1e-6
    assert d[:8].mean() > d[-8:].mean()  # the top reads far
    np.testing.assert_array_equal(aio.add_haze(gt, 0.9, 0.), gt)  # beta 0: clear air
    hazy = aio.add_haze(gt, 0.9, 1.2)
    assert grad_energy(hazy) < 0.7 * grad_energy(gt)  # local contrast: the global std may rise with the airlight
    assert dark_channel(hazy) > dark_channel(gt) + 20
    assert dark_channel(aio.add_haze(gt, 0.9, 2.0)) > dark_channel(hazy)  # thicker haze, brighter dark channel


def test_motion_blur_lowers_gradient_energy():
    gt = _img(3)
    blur, prm = aio.motion_blur(gt, np.random.default_rng(0))
    assert 7 <= prm['length'] <= 17 and 0 <= prm['angle_deg'] <= 180
    assert grad_energy(blur) < 0.7 * grad_energy(gt)
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


def test_rebuilds_when_changed_partial_or_forced(tmp_path):
    root = str(tmp_path)
    p = demo_data.build_demo_data(root, **TINY)['all_in_one']
    first = files_by_path(p['root'])
    assert len(os.listdir(p['train_deblur_gt'])) == 6 and len(os.listdir(p['train_dehaze_lq'])) == 24
    reseeded = files_by_path(demo_data.build_demo_data(root, seed=1, **TINY)['all_in_one']['root'])
    assert reseeded.keys() != first.keys() or reseeded != first  # settings changed -> rebuilt
    os.remove(osp.join(p['val_derain_lq'], 'rain-2.png'))  # as if interrupted or damaged
    demo_data.build_demo_data(root, seed=1, **TINY)
    assert files_by_path(p['root']) == reseeded
    stamp = os.stat(p['manifest']).st_mtime_ns
    demo_data.build_demo_data(root, seed=1, force=True, **TINY)
    assert os.stat(p['manifest']).st_mtime_ns != stamp and files_by_path(p['root']) == reseeded
    assert sorted(os.listdir(root)) == ['all_in_one']  # no temporary folders left
    (tmp_path / 'all_in_one' / 'mine.txt').write_text('user file')
    with pytest.raises(FileExistsError, match='did not make'):
        demo_data.build_demo_data(root, seed=2, **TINY)
    shutil.rmtree(p['root'])
