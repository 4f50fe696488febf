"""DCPT's dataset types return what theirs (hoatong2411/dcpt edd4c7a; MultiDegradation: the fork's HEAD) returns:
keys, shapes, ranges, channel order (Mosaic's LQ reversed), crop + augment, center_crop, the degradations (noise seeded
by index in training, 0 outside), Dehaze's GT names, ``_HR_`` pairing, the concatenation; NumPy's global generator
untouched; the pre-flight accepts their data, refuses bad data in one line naming the key. Expected: by their rules."""
import copy
import os
import os.path as osp
import random

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import numpy as np
import pytest
from basicsr.utils.registry import DATASET_REGISTRY

from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.checks.preflight import check_inputs
from tests.helpers import TINY_EDSR, image_pairs, pair_lmdbs, random_image

GT_ONLY = {'PairedImageDenoiseDataset': {'sigma_type': 'constant', 'sigma_range': 25},
           'PairedImageJPEGCARDataset': {'q_type': 'constant', 'q_range': 20},
           'PairedImageMosaicDataset': {}, 'PairedImageInpaintingDataset': {}}
SHAPE = (40, 52, 3)
PATCH = 32


def _block(kind, gt, lq=None, phase='train', **kw):
    ds = dict({'name': 'the_name', 'type': kind, 'dataroot_gt': gt, 'io_backend': {'type': 'disk'}, 'phase': phase,
               'scale': 1}, **copy.deepcopy(GT_ONLY.get(kind, {})), **({'dataroot_lq': lq} if lq is not None else {}))
    ds.update(dict(gt_size=PATCH, use_hflip=True, use_rot=True) if phase == 'train' else {})
    return dict(ds, **kw)


def _build(ds):
    return DATASET_REGISTRY.get(ds['type'])(copy.deepcopy(ds))


def _item(ds, index, seed):
    random.seed(seed)  # crops, flips, levels and lines come from Python's random
    return {k: v.numpy() if hasattr(v, 'numpy') else v for k, v in ds[index].items()}


def _bgr(path):
    return cv2.imread(path, cv2.IMREAD_COLOR).astype(np.float32) / 255.


def _chw(img, bgr=False):
    return (img[..., ::-1] if bgr else img).transpose(2, 0, 1)


def _their_crop_augment(imgs, size, seed):
    """Their paired_random_crop (scale 1) then augment, drawing Python's random in their order (left to go on)."""
    random.seed(seed)
    h, w = imgs[0].shape[:2]
    top, left = random.randint(0, h - size), random.randint(0, w - size)
    flip_ran, rot_ran = random.randint(0, 2), random.randint(0, 3)
    crops = [img[top:top + size, left:left + size].copy() for img in imgs]
    crops = [cv2.flip(c, 1) if flip_ran == 0 else cv2.flip(c, 0) if flip_ran == 1 else c for c in crops]
    return [c.transpose(1, 0, 2) if rot_ran != 0 else c for c in crops]


def _their_center_crop(img, size):
    h, w = img.shape[:2]
    return img[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2]


def _their_noise(shape, sigma, seed):
    """np.random.seed(seed); np.random.normal(0, sigma / 255, shape) -- on the global generator, restored after."""
    state = np.random.get_state()
    np.random.seed(seed)
    noise = np.random.normal(0, sigma / 255.0, shape)
    np.random.set_state(state)
    return noise


def _same(item, gt, lq):
    np.testing.assert_array_equal(item['gt'], gt)
    np.testing.assert_array_equal(item['lq'], lq)


def test_their_names_are_registered_and_basicsrs_paired_type_is_kept():
    for name in list(GT_ONLY) + ['PairedImageDehazeDataset', 'DCPTPairedImageDataset', 'MultiDegradationDataset']:
        assert DATASET_REGISTRY.get(name).__module__ == 'mclir_basicsr.methods.dcpt.dcpt_dataset'
    assert DATASET_REGISTRY.get('PairedImageDataset').__module__ == 'basicsr.data.paired_image_dataset'


@pytest.mark.parametrize('kind', list(GT_ONLY))
@pytest.mark.parametrize('phase', ['train', 'val'])
def test_gt_only_items_and_numpys_global_generator(tmp_path, kind, phase):
    gt_dir = image_pairs(tmp_path, gt=SHAPE, lq=SHAPE)[0]
    side = PATCH if phase == 'train' else 24
    ds = _build(_block(kind, gt_dir, phase=phase, **({'center_crop': side} if phase == 'val' else {})))
    expected_draw = np.random.RandomState(123).random_sample()
    np.random.seed(123)
    item = _item(ds, 1, seed=5)
    assert np.random.random() == expected_draw  # their np.random.seed is not copied onto the global generator
    assert set(item) == {'lq', 'gt', 'lq_path', 'gt_path'}
    assert item['lq_path'] == item['gt_path'] == osp.join(gt_dir, 'img1.png')
    assert item['gt'].shape == item['lq'].shape == (3, side, side) and item['lq'].dtype == np.float32
    assert 0 <= item['gt'].min() and item['gt'].max() <= 1
    if kind != 'PairedImageDenoiseDataset':  # noise is never clipped
        assert 0 <= item['lq'].min() and item['lq'].max() <= 1


@pytest.mark.parametrize('sigma_type, sigma_range', [('constant', 25), ('choice', [5, 50])])
def test_training_noise_is_seeded_by_index_after_crop_augment_and_rgb(tmp_path, sigma_type, sigma_range):
    gt_dir = image_pairs(tmp_path, n=3, gt=SHAPE, lq=SHAPE)[0]
    ds = _build(_block('PairedImageDenoiseDataset', gt_dir, sigma_type=sigma_type, sigma_range=sigma_range))
    for index, seed in ((2, 0), (2, 1), (0, 7)):
        item = _item(ds, index, seed)
        crop, _ = _their_crop_augment([_bgr(osp.join(gt_dir, f'img{index}.png'))] * 2, PATCH, seed)
        sigma = sigma_range if sigma_type == 'constant' else random.choice(sigma_range)
        lq = crop[..., ::-1] + _their_noise(crop.shape, sigma, index)  # their noise lands on the RGB array
        _same(item, _chw(crop, bgr=True), _chw(lq.astype(np.float32)))
    assert item['lq'].min() < 0 or item['lq'].max() > 1  # not clipped


@pytest.mark.parametrize('gray_lmdb', [False, True])
def test_validation_noise_is_seed_zero_for_every_image_also_grayscale_from_lmdb(tmp_path, gray_lmdb):
    gt_db, _ = pair_lmdbs(tmp_path, n=2, gt=SHAPE, lq=SHAPE)  # also leaves the folder tmp_path/gt
    gt_dir = osp.join(str(tmp_path), 'gt')
    extra = {'io_backend': {'type': 'lmdb'}, 'color': 'y'} if gray_lmdb else {}
    ds = _build(_block('PairedImageDenoiseDataset', gt_db if gray_lmdb else gt_dir, phase='val', center_crop=24,
                       **extra))
    assert len(ds) == 2 and (ds.paths == ['img0', 'img1'] or not gray_lmdb)  # lmdb keys in meta_info.txt order
    noise = _their_noise((24, 24, 1 if gray_lmdb else 3), 25, 0)
    for index in (0, 1):
        item, path = _item(ds, index, seed=index), osp.join(gt_dir, f'img{index}.png')
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)[..., None] if gray_lmdb else cv2.imread(path)[..., ::-1]
        gt = _their_center_crop(img.astype(np.float32) / 255., 24)
        _same(item, _chw(gt), _chw((gt + noise).astype(np.float32)))


@pytest.mark.parametrize('q_type, q_range', [('constant', 20), ('choice', [10, 40])])
def test_jpeg_encodes_the_8_bit_bgr_crop(tmp_path, q_type, q_range):
    gt_dir = image_pairs(tmp_path, gt=SHAPE, lq=SHAPE)[0]
    ds = _build(_block('PairedImageJPEGCARDataset', gt_dir, q_type=q_type, q_range=q_range))
    item = _item(ds, 0, seed=3)
    crop, _ = _their_crop_augment([_bgr(osp.join(gt_dir, 'img0.png'))] * 2, PATCH, 3)
    quality = q_range if q_type == 'constant' else random.choice(q_range)
    encoded = cv2.imencode('.jpg', (crop * 255).round().astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    lq = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.
    _same(item, _chw(crop, bgr=True), _chw(lq, bgr=True))


def test_mosaic_is_rggb_demosaiced_with_lq_channels_reversed(tmp_path):
    cv2.imwrite(str(tmp_path / 'flat.png'), np.full((33, 35, 3), (10, 50, 200), np.uint8))  # BGR of RGB (200, 50, 10)
    cv2.imwrite(str(tmp_path / 'rand.png'), random_image((33, 35, 3), seed=4))  # odd sizes work here
    ds = _build(_block('PairedImageMosaicDataset', str(tmp_path), phase='val'))
    flat, rand = _item(ds, 0, seed=0), _item(ds, 1, seed=0)
    rgb_bgr = np.array([[200, 50, 10], [10, 50, 200]]) / 255.  # the GT in RGB, the LQ reversed
    np.testing.assert_allclose([flat['gt'][:, 5, 5], flat['lq'][:, 5, 5]], rgb_bgr, rtol=1e-6)
    rgb = cv2.imread(str(tmp_path / 'rand.png'))[..., ::-1]
    masks = np.zeros(rgb.shape, bool)  # their masks_CFA_Bayer: R (0, 0), G (0, 1) and (1, 0), B (1, 1)
    masks[0::2, 0::2, 0] = masks[0::2, 1::2, 1] = masks[1::2, 0::2, 1] = masks[1::2, 1::2, 2] = True
    cfa = (masks * rgb).sum(2).astype(np.uint8)
    lq = cv2.cvtColor(cfa, cv2.COLOR_BAYER_BG2BGR_EA).astype(np.float32) / 255.
    _same(rand, _chw(rgb.astype(np.float32) / 255.), _chw(lq))


def test_inpainting_draws_their_lines(tmp_path):
    gt_dir = image_pairs(tmp_path, gt=SHAPE, lq=SHAPE)[0]
    ds = _build(_block('PairedImageInpaintingDataset', gt_dir))
    for seed in range(4):
        item = _item(ds, 0, seed)
        rgb = cv2.imread(osp.join(gt_dir, 'img0.png'))[..., ::-1].astype(np.float32) / 255.  # their /255 after crop
        crop = _their_crop_augment([rgb] * 2, PATCH, seed)[0]
        n_lines, thick, colour = random.randint(5, 10), random.randint(5, 10), random.choice(['white', 'black'])
        mask = np.zeros((PATCH, PATCH, 3), np.uint8)
        for _ in range(n_lines):  # x1, y1, x2, y2, each in [0, PATCH] (w == h)
            pts = np.array([[random.randint(0, PATCH) for _ in range(2)] for _ in range(2)], np.int32)
            mask = cv2.polylines(mask, [pts.reshape((-1, 1, 2))], 0, (1, 1, 1), thick)
        lq = np.clip(crop + mask, 0, 1) if colour == 'white' else np.clip(crop - mask, 0, 1)
        _same(item, _chw(crop), _chw(lq))


def _haze(root, suffix='.png'):
    gt_dir, lq_dir = image_pairs(root, n=0)  # empty folders root/gt, root/lq
    for i in range(2):
        cv2.imwrite(osp.join(gt_dir, f'{i:04d}{suffix}'), random_image(SHAPE, seed=i))
        for beta in ('0.8', '0.6'):
            cv2.imwrite(osp.join(lq_dir, f'{i:04d}_{beta}_0.2.jpg'), random_image(SHAPE, seed=10 + i))
    return gt_dir, lq_dir


@pytest.mark.parametrize('suffix', ['.png', '.jpg'])
def test_dehaze_pairs_each_hazy_image_with_its_gt_by_name_and_suffix(tmp_path, suffix):
    gt_dir, lq_dir = _haze(tmp_path, suffix)
    block = _block('PairedImageDehazeDataset', gt_dir, lq_dir, phase='val', center_crop=24,
                   **({'suffix': suffix} if suffix == '.png' else {}))  # else their default .jpg
    ds = _build(block)
    assert len(ds) == 4
    item = _item(ds, 3, seed=0)  # 0001_0.8_0.2.jpg (sorted after 0001_0.6_0.2.jpg)
    gt_path, hazy = osp.join(gt_dir, f'0001{suffix}'), _bgr(osp.join(lq_dir, '0001_0.8_0.2.jpg'))
    assert item['lq_path'] == item['gt_path'] == gt_path
    _same(item, *(_chw(_their_center_crop(img, 24), bgr=True) for img in (_bgr(gt_path), hazy)))
    train = _item(_build(dict(block, phase='train', gt_size=PATCH)), 3, seed=9)
    gt, lq = _their_crop_augment([_bgr(gt_path), hazy], PATCH, 9)
    _same(train, _chw(gt, bgr=True), _chw(lq, bgr=True))


def test_paired_type_pairs_hr_as_lrbi_crops_as_theirs_center_crops_and_crops_gt_to_scale(tmp_path):
    gt_dir, lq_dir = image_pairs(tmp_path, n=2, gt=SHAPE, lq=SHAPE)
    os.rename(osp.join(gt_dir, 'img1.png'), osp.join(gt_dir, 'a_HR_1.png'))
    os.rename(osp.join(lq_dir, 'img1.png'), osp.join(lq_dir, 'a_LRBI_1.png'))
    ds = _build(_block('DCPTPairedImageDataset', gt_dir, lq_dir))
    item = _item(ds, 0, seed=2)
    assert item['lq_path'] == osp.join(lq_dir, 'a_LRBI_1.png') and item['gt_path'] == osp.join(gt_dir, 'a_HR_1.png')
    gt, lq = _their_crop_augment([_bgr(item['gt_path']), _bgr(item['lq_path'])], PATCH, 2)
    _same(item, _chw(gt, bgr=True), _chw(lq, bgr=True))
    val = _item(_build(_block('DCPTPairedImageDataset', gt_dir, lq_dir, phase='val', center_crop=20)), 1, seed=0)
    np.testing.assert_array_equal(val['lq'], _chw(_their_center_crop(_bgr(osp.join(lq_dir, 'img0.png')), 20), bgr=True))
    with pytest.raises(ValueError, match='center_crop 64 is larger than the image'):
        _build(_block('DCPTPairedImageDataset', gt_dir, lq_dir, phase='val', center_crop=64))[0]
    gt_dir, lq_dir = image_pairs(tmp_path / 'sr', n=1, gt=(34, 35, 3), lq=(16, 17, 3))  # GT cropped to LQ x scale
    item = _item(_build(_block('DCPTPairedImageDataset', gt_dir, lq_dir, phase='val', scale=2)), 0, seed=0)
    assert item['gt'].shape == (3, 32, 34) and item['lq'].shape == (3, 16, 17)


def test_multi_degradation_concatenates_with_repeats_and_labels(tmp_path):
    (g0, q0), (g1, q1) = (image_pairs(tmp_path / x, n=n, gt=SHAPE, lq=SHAPE) for x, n in (('a', 2), ('b', 3)))
    ds = _build(_block('MultiDegradationDataset', [g0, g1], [q0, q1], phase='val', degradation_types=['blur', 'rain'],
                       dataset_enlarge_ratio=[2, 1]))
    assert len(ds) == 2 * 2 + 3
    single = _build(_block('DCPTPairedImageDataset', g0, q0, phase='val'))
    for idx, (label, name) in enumerate([(0, 'img0'), (0, 'img1'), (0, 'img0'), (0, 'img1'), (1, 'img0'),
                                         (1, 'img1'), (1, 'img2')]):
        item = _item(ds, idx, seed=0)
        assert item['dataset_idx'] == label and item['gt_path'] == osp.join((g0, g1)[label], f'{name}.png')
    np.testing.assert_array_equal(_item(ds, 3, seed=0)['lq'], _item(single, 1, seed=0)['lq'])


# ---- pre-flight
def _opt(datasets):
    return {'name': 'dcpt', 'is_train': True, 'auto_resume': False, 'datasets': datasets, 'train': {},
            'network_g': copy.deepcopy(TINY_EDSR), 'path': {'pretrain_network_g': None, 'resume_state': None}}


def _refused(datasets, prefix, *parts):
    with pytest.raises(OptionError) as err:
        check_inputs(_opt(datasets))
    msg = str(err.value)
    assert msg.startswith(prefix) and '\n' not in msg and 'the_name' not in msg, msg
    assert all(part in msg for part in parts), msg


def test_preflight_accepts_their_data(tmp_path):
    gt, lq = image_pairs(tmp_path / 'pairs', n=2, gt=SHAPE, lq=SHAPE)
    gt_db, _ = pair_lmdbs(tmp_path / 'db', n=2, gt=SHAPE, lq=SHAPE)
    haze_gt, haze_lq = _haze(tmp_path / 'haze')
    datasets = {f'train_{i}': _block(kind, gt) for i, kind in enumerate(GT_ONLY)}
    datasets.update({f'val_{i}': _block(kind, gt, phase='val', center_crop=24) for i, kind in enumerate(GT_ONLY)})
    datasets.update(train_8=_block('PairedImageDehazeDataset', haze_gt, haze_lq, suffix='.png'),
                    val_8=_block('PairedImageDehazeDataset', haze_gt, haze_lq, phase='val', suffix='.png'),
                    train_9=_block('DCPTPairedImageDataset', gt, lq, hist=False),
                    val_9=_block('PairedImageDenoiseDataset', gt_db, phase='val', io_backend={'type': 'lmdb'}),
                    train=_block('MultiDegradationDataset', [gt, haze_gt], [lq, haze_gt], degradation_types=['a', 'b']))
    check_inputs(_opt(datasets))


def test_preflight_refuses_missing_folders_and_files_naming_the_key(tmp_path):
    gt, lq = image_pairs(tmp_path / 'pairs', n=2, gt=SHAPE, lq=SHAPE)
    haze_gt, haze_lq = _haze(tmp_path / 'haze')
    _refused({'train_1': _block('PairedImageDenoiseDataset', str(tmp_path / 'nope'))}, 'datasets.train_1.dataroot_gt: ',
             'does not exist')
    _refused({'val': _block('PairedImageDehazeDataset', haze_gt, haze_lq, phase='val')},  # default suffix .jpg
             'datasets.val.dataroot_gt: ', '0000.jpg', 'suffix')
    os.remove(osp.join(lq, 'img1.png'))
    cv2.imwrite(osp.join(lq, 'other.png'), random_image(SHAPE))
    _refused({'val': _block('DCPTPairedImageDataset', gt, lq, phase='val')}, 'datasets.val.dataroot_lq: ', 'img1.png')
    _refused({'train': _block('MultiDegradationDataset', [haze_gt, gt], [haze_gt, lq], degradation_types=['a', 'b'])},
             'datasets.train.dataroot_lq[1]: ', 'img1.png')
    open(osp.join(gt, 'img0.png'), 'w').write('not an image\n')
    _refused({'train': _block('PairedImageMosaicDataset', gt)}, 'datasets.train.dataroot_gt: ', 'img0.png')


@pytest.mark.parametrize('kind, change, prefix', [
    ('PairedImageDenoiseDataset', {'sigma_type': 'fixed'}, 'datasets.train.sigma_type must be one of constant'),
    ('PairedImageDenoiseDataset', {'sigma_type': 'random', 'sigma_range': [50, 0]}, 'datasets.train.sigma_range must'),
    ('PairedImageJPEGCARDataset', {'q_type': 'choice', 'q_range': [10, 101]}, 'datasets.train.q_range[1] must be in'),
    ('PairedImageJPEGCARDataset', {'q_range': None}, 'datasets.train.q_range must be a number'),
    ('PairedImageMosaicDataset', {'color': 'y'}, 'datasets.train.color must be absent'),
    ('PairedImageInpaintingDataset', {'use_rot': False}, 'datasets.train.use_rot: '),
    ('PairedImageDenoiseDataset', {'center_crop': 0}, 'datasets.train.center_crop must be >= 1'),
    ('PairedImageDenoiseDataset', {'prctile_norm': True}, 'datasets.train.prctile_norm: only prctile_norm: False'),
    ('PairedImageDenoiseDataset', {'mean': [0.5, 0.5, 0.5]}, 'datasets.train: set both mean and std'),
    ('PairedImageDenoiseDataset', {'gt_size': 48}, 'datasets.train.gt_size: '),
    ('DCPTPairedImageDataset', {'hist': True}, 'datasets.train.hist: '),
    ('DCPTPairedImageDataset', {'filename_tmpl': 'x'}, 'datasets.train.filename_tmpl must be a string containing'),
    ('PairedImageDehazeDataset', {'io_backend': {'type': 'lmdb'}}, 'datasets.train.io_backend: '),
    ('MultiDegradationDataset', {'degradation_types': ['a', 'b']}, 'datasets.train.dataroot_gt must be a list of 2'),
    ('MultiDegradationDataset', {'dataset_enlarge_ratio': [1, 2]}, 'datasets.train.dataset_enlarge_ratio must be'),
])
def test_preflight_refuses_bad_options(tmp_path, kind, change, prefix):
    gt, lq = image_pairs(tmp_path, n=1, gt=SHAPE, lq=SHAPE)
    extra = {'degradation_types': ['a']} if kind == 'MultiDegradationDataset' else {}
    _refused({'train': _block(kind, gt, lq, **dict(extra, **change))}, prefix)
