"""IRConStyle's dataset types (mclir_basicsr/methods/constyle/irconstyle_dataset.py) return what their
``data/image_datasets.py`` returns: keys, shapes, PAD(f) (factor, phases, reflect mode), RGB order, sorted-position
pairing, Gaussian noise (training: torch.randn * sigma / 255 after crop and flips; validation/test: NumPy seeded 0 per
image, HWC RGB, NumPy's global generator untouched), disk and lmdb; and the pre-flight checks accept their data and
refuse, in one line naming the key, a missing folder, an unreadable image, folders of unequal length and bad options.

Each expected value is computed here from their rule, on tiny generated images."""
import copy
import os
import os.path as osp
import random

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import numpy as np
import pytest
import torch
from basicsr.utils.registry import DATASET_REGISTRY

from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.checks.preflight import check_inputs
from tests.helpers import TINY_EDSR, image_pairs, pair_lmdbs, random_image

PAIRED = ('Dataset_Paired', 'Dataset_Derain', 'Dataset_Derain_Maxim', 'Dataset_Dehaze', 'Dataset_Maxim',
          'Dataset_Maxim_Dehaze')
GAUSSIAN = ('Dataset_GaussianDenoising', 'Dataset_Maxim_GaussianDenoising')
# their PAD(f): the factor, and the phases it applies in
PAD = {'Dataset_Paired': (8, {'test'}), 'Dataset_Derain': (8, {'test'}), 'Dataset_Dehaze': (8, {'test'}),
       'Dataset_Derain_Maxim': (64, {'test'}), 'Dataset_Maxim': (64, {'train', 'val', 'test'}),
       'Dataset_Maxim_Dehaze': (64, {'train', 'val', 'test'}), 'Dataset_GaussianDenoising': (8, {'val', 'test'}),
       'Dataset_Maxim_GaussianDenoising': (64, {'train', 'val', 'test'})}
SHAPE = (37, 45, 3)  # neither side a multiple of 8; pads to 64 stay below the size (reflect needs it)


# ---- helpers
def _block(kind, gt, lq, phase, io='disk', **kw):
    ds = {'name': 'the_name', 'type': kind, 'dataroot_gt': gt, 'dataroot_lq': lq, 'io_backend': {'type': io},
          'phase': phase, 'filename_tmpl': '{}'}
    if phase == 'train':
        ds.update(gt_size=32, use_hflip=True, use_rot=True, scale=1)
    if kind in GAUSSIAN:
        ds.update(dataroot_lq='none', in_ch=3)
        ds.update({'sigma_type': 'constant', 'sigma_range': 25} if phase == 'train' else {'sigma_test': 25})
    ds.update(kw)
    return ds


def _build(ds):
    return DATASET_REGISTRY.get(ds['type'])(copy.deepcopy(ds))


def _rgb(path):
    """HWC float32 RGB in [0, 1], as their datasets decode."""
    return cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.


def _their_pad(img, factor):
    """PAD(f) as their code writes it, on an HWC array: reflect to ((h + f) // f) * f where h % f != 0."""
    h, w = img.shape[:2]
    pad_h = ((h + factor) // factor) * factor - h if h % factor != 0 else 0
    pad_w = ((w + factor) // factor) * factor - w if w % factor != 0 else 0
    return np.pad(img, ((0, pad_h), (0, pad_w), (0, 0)), mode='reflect')


def _their_crop_and_flips(imgs, size):
    """paired_random_crop + augment at scale 1, drawing Python's random as they do (top, left, hflip, vflip, rot)."""
    h, w = imgs[0].shape[:2]
    top, left = random.randint(0, h - size), random.randint(0, w - size)
    hflip, vflip, rot = (random.random() < 0.5 for _ in range(3))
    out = []
    for img in imgs:
        img = img[top:top + size, left:left + size]
        img = img[:, ::-1] if hflip else img
        img = img[::-1] if vflip else img
        out.append(img.transpose(1, 0, 2) if rot else img)
    return out


def _hwc(t):
    return t.permute(1, 2, 0).numpy()


def _folders(root, gt_names, lq_names, shape=SHAPE):
    gt_dir, lq_dir = osp.join(str(root), 'gt'), osp.join(str(root), 'lq')
    for folder, names, seed in ((gt_dir, gt_names, 0), (lq_dir, lq_names, 100)):
        os.makedirs(folder, exist_ok=True)
        for i, n in enumerate(names):
            assert cv2.imwrite(osp.join(folder, n), random_image(shape, seed + i))
    return gt_dir, lq_dir


# ---- what each type returns
def test_their_names_are_registered_and_the_typo_is_not():
    for name in PAIRED + GAUSSIAN:
        assert DATASET_REGISTRY.get(name).__name__ == name
    assert 'Datasets_Paired' not in DATASET_REGISTRY


@pytest.mark.parametrize('kind', PAIRED)
@pytest.mark.parametrize('phase', ['val', 'test'])
def test_paired_types_read_rgb_and_pad_as_theirs(tmp_path, kind, phase):
    gt, lq = image_pairs(tmp_path, n=2, gt=SHAPE, lq=SHAPE)
    item = _build(_block(kind, gt, lq, phase))[1]
    assert set(item) == {'lq', 'gt', 'lq_path', 'gt_path'}
    name = osp.basename(item['gt_path'])  # BasicSR lists GT names in os.scandir order: either image
    assert (item['gt_path'], item['lq_path']) == (osp.join(gt, name), osp.join(lq, name))
    factor, phases = PAD[kind]
    for side, path in (('gt', item['gt_path']), ('lq', item['lq_path'])):
        want = _rgb(path)
        want = _their_pad(want, factor) if phase in phases else want
        assert item[side].dtype == torch.float32
        np.testing.assert_array_equal(_hwc(item[side]), want)


@pytest.mark.parametrize('kind', ['Dataset_Paired', 'Dataset_Maxim'])
def test_training_crops_flips_then_pads_as_theirs(tmp_path, kind):
    gt, lq = image_pairs(tmp_path, n=1, gt=SHAPE, lq=SHAPE)
    ds = _build(_block(kind, gt, lq, 'train', gt_size=36))
    random.seed(3)
    item = ds[0]
    random.seed(3)
    want = _their_crop_and_flips([_rgb(osp.join(gt, 'img0.png')), _rgb(osp.join(lq, 'img0.png'))], 36)
    factor, phases = PAD[kind]
    for side, img in zip(('gt', 'lq'), want):
        np.testing.assert_array_equal(_hwc(item[side]), _their_pad(img, factor) if 'train' in phases else img)
    assert item['gt'].shape[-1] == (64 if kind == 'Dataset_Maxim' else 36)


@pytest.mark.parametrize('kind', ['Dataset_Derain', 'Dataset_Derain_Maxim', 'Dataset_Dehaze', 'Dataset_Maxim_Dehaze'])
def test_folders_pair_by_sorted_position_not_by_name(tmp_path, kind):
    gt, lq = _folders(tmp_path, ['norain-1.png', 'norain-2.png', 'norain-3.png'], ['z.png', 'rain-2.png', 'a.png'])
    ds = _build(_block(kind, gt, lq, 'val'))
    got = [(osp.basename(ds[i]['lq_path']), osp.basename(ds[i]['gt_path'])) for i in range(len(ds))]
    assert got == [('a.png', 'norain-1.png'), ('rain-2.png', 'norain-2.png'), ('z.png', 'norain-3.png')]
    np.testing.assert_array_equal(_hwc(ds[0]['lq'])[:SHAPE[0], :SHAPE[1]], _rgb(osp.join(lq, 'a.png')))


def test_derain_pairs_lmdb_by_key_and_paired_by_name(tmp_path):
    gt_db, lq_db = pair_lmdbs(tmp_path, n=3, gt=SHAPE, lq=SHAPE)
    for kind in ('Dataset_Derain', 'Dataset_Paired', 'Dataset_Maxim'):
        ds = _build(_block(kind, gt_db, lq_db, 'test', io='lmdb'))
        item = ds[2]
        assert (item['gt_path'], item['lq_path']) == ('img2', 'img2')  # lmdb keys
        want = _their_pad(_rgb(osp.join(str(tmp_path), 'lq', 'img2.png')), PAD[kind][0])
        np.testing.assert_array_equal(_hwc(item['lq']), want)


def test_meta_info_files_list_by_name(tmp_path):
    gt, lq = image_pairs(tmp_path, n=3, gt=(64, 64, 3), lq=(64, 64, 3))
    meta = osp.join(str(tmp_path), 'meta.txt')
    open(meta, 'w').write('img2.png (64,64,3)\nimg0.png (64,64,3)\n')
    derain = _block('Dataset_Derain', gt, lq, 'val', meta_info_file=meta)  # BasicSR's listing: by name
    assert [osp.basename(p['lq_path']) for p in _build(derain).paths] == ['img2.png', 'img0.png']
    noisy = _block('Dataset_GaussianDenoising', gt, 'none', 'val', meta_info_file=meta)  # what their code meant
    assert _build(noisy).paths == [osp.join(gt, 'img2.png'), osp.join(gt, 'img0.png')]
    check_inputs(_opt({'val': derain, 'val_2': noisy}))
    open(meta, 'a').write('img7.png (64,64,3)\n')
    _refused({'val': noisy}, 'datasets.val.meta_info_file: ', 'names 1 image(s) missing', 'img7.png')


@pytest.mark.parametrize('kind', GAUSSIAN)
@pytest.mark.parametrize('phase', ['val', 'test'])
def test_validation_noise_is_numpy_seeded_zero_per_image_in_hwc_rgb(tmp_path, kind, phase):
    gt, _ = image_pairs(tmp_path, n=2, gt=SHAPE, lq=SHAPE)
    ds = _build(_block(kind, gt, 'none', phase, sigma_test=15))
    np.random.seed(123)
    before = np.random.get_state()
    items = [ds[1], ds[0]]
    after = np.random.get_state()
    assert np.array_equal(after[1], before[1]) and after[2:] == before[2:]  # NumPy's global generator untouched
    factor = PAD[kind][0]
    for item, name in zip(items, ('img1.png', 'img0.png')):
        assert set(item) == {'lq', 'gt', 'lq_path', 'gt_path'}
        assert item['lq_path'] == item['gt_path'] == osp.join(gt, name)
        clean = _rgb(item['gt_path'])
        noisy = clean.copy()
        noisy += np.random.RandomState(0).normal(0, 15 / 255., clean.shape)  # their np.random.seed(0) per image
        np.testing.assert_array_equal(_hwc(item['gt']), _their_pad(clean, factor))
        np.testing.assert_array_equal(_hwc(item['lq']), _their_pad(noisy, factor))
    noise = [it['lq'] - it['gt'] for it in items]  # the same noise for images of one size (float32 rounding aside)
    assert torch.allclose(noise[0], noise[1], atol=1e-6) and float(noise[0].std()) * 255 > 10


@pytest.mark.parametrize('kind', GAUSSIAN)
@pytest.mark.parametrize('sigma', [('constant', 50), ('random', [0, 50]), ('choice', [15, 25, 50])])
def test_training_noise_is_torch_randn_times_sigma(tmp_path, kind, sigma):
    gt, _ = image_pairs(tmp_path, n=1, gt=(64, 70, 3), lq=(64, 70, 3))
    ds = _build(_block(kind, gt, 'none', 'train', gt_size=64, sigma_type=sigma[0], sigma_range=sigma[1]))
    random.seed(5), torch.manual_seed(5)
    item = ds[0]
    random.seed(5), torch.manual_seed(5)
    clean = _their_crop_and_flips([_rgb(osp.join(gt, 'img0.png'))], 64)[0]
    draw = {'constant': lambda s: s, 'random': lambda s: random.uniform(*s), 'choice': random.choice}[sigma[0]]
    level = draw(sigma[1])  # after the crop and flip draws, as theirs
    noise = torch.randn(3, 64, 64) * (torch.tensor([level], dtype=torch.float32) / 255.)
    np.testing.assert_array_equal(_hwc(item['gt']), clean)
    assert torch.equal(item['lq'], item['gt'] + noise)
    assert item['lq'].min() < 0 or item['lq'].max() > 1 or level == 0  # never clipped
    if sigma[0] == 'constant':
        assert abs(float((item['lq'] - item['gt']).std()) * 255 / 50 - 1) < 0.05


def test_gaussian_reads_lmdb_keys_in_meta_info_order_and_grayscale(tmp_path):
    gt_db, _ = pair_lmdbs(tmp_path, n=3, gt=(40, 48, 3), lq=(40, 48, 3))
    ds = _build(_block('Dataset_GaussianDenoising', gt_db, 'none', 'test', io='lmdb', in_ch=1))
    assert len(ds) == 3 and ds[4]['gt_path'] == 'img1'  # index modulo the length, as theirs
    gray = cv2.imread(osp.join(str(tmp_path), 'gt', 'img1.png'), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.
    assert ds[1]['gt'].shape == (1, 40, 48)
    np.testing.assert_array_equal(ds[1]['gt'][0].numpy(), gray)


# ---- pre-flight
def _opt(datasets):
    return {'name': 'irc', 'is_train': True, 'auto_resume': False, 'datasets': datasets,
            'network_g': copy.deepcopy(TINY_EDSR), 'train': {},
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}}  # no top-level scale


def _refused(datasets, prefix, *parts):
    with pytest.raises(OptionError) as err:
        check_inputs(_opt(datasets))
    msg = str(err.value)
    assert msg.startswith(prefix) and '\n' not in msg and 'the_name' not in msg, msg
    for part in parts:
        assert part in msg, f'{part!r} not in {msg}'


def test_preflight_accepts_their_data_on_disk_and_lmdb(tmp_path):
    gt, lq = image_pairs(tmp_path / 'named', n=2, gt=(64, 64, 3), lq=(64, 64, 3))
    pos_gt, pos_lq = _folders(tmp_path / 'pos', ['norain-1.png', 'norain-2.png'], ['rain-1.png', 'rain-2.png'],
                              shape=(64, 64, 3))
    gt_db, lq_db = pair_lmdbs(tmp_path / 'db', n=2, gt=(64, 64, 3), lq=(64, 64, 3))
    for kind in PAIRED:
        g, q = (gt, lq) if kind in ('Dataset_Paired', 'Dataset_Maxim') else (pos_gt, pos_lq)  # by name, by position
        check_inputs(_opt({'train': _block(kind, g, q, 'train'), 'val': _block(kind, g, q, 'val')}))
    for kind in ('Dataset_Paired', 'Dataset_Derain', 'Dataset_Derain_Maxim', 'Dataset_Maxim'):
        check_inputs(_opt({'train': _block(kind, gt_db, lq_db, 'train', io='lmdb')}))
    for kind in GAUSSIAN:  # dataroot_lq: none is no path
        check_inputs(_opt({'train': _block(kind, gt, 'none', 'train'), 'val': _block(kind, gt, 'none', 'val'),
                           'test_1': _block(kind, gt_db, 'none', 'test', io='lmdb')}))


def test_preflight_refuses_a_missing_folder(tmp_path):
    gt, lq = image_pairs(tmp_path, n=1, gt=(64, 64, 3), lq=(64, 64, 3))
    _refused({'val': _block('Dataset_Dehaze', gt, str(tmp_path / 'nope'), 'val')}, 'datasets.val.dataroot_lq: ',
             'does not exist')
    _refused({'train': _block('Dataset_GaussianDenoising', str(tmp_path / 'nope'), 'none', 'train')},
             'datasets.train.dataroot_gt: ', 'does not exist')


def test_preflight_refuses_folders_of_unequal_length(tmp_path):
    gt, lq = _folders(tmp_path, ['a.png', 'b.png'], ['c.png'], shape=(64, 64, 3))
    for kind in ('Dataset_Dehaze', 'Dataset_Derain'):
        _refused({'train': _block(kind, gt, lq, 'train')}, 'datasets.train: ', f'{kind} pairs the k-th file',
                 f'{gt} holds 2 and {lq} 1')


def test_preflight_refuses_an_unreadable_image(tmp_path):
    gt, lq = _folders(tmp_path, ['a.png', 'b.png'], ['x.png', 'y.png'], shape=(64, 64, 3))
    open(osp.join(lq, 'y.png'), 'wb').close()
    _refused({'val': _block('Dataset_Derain', gt, lq, 'val')}, 'datasets.val.dataroot_lq: ', 'y.png', 'is empty')
    open(osp.join(gt, 'b.png'), 'w').write('not an image\n')
    _refused({'val': _block('Dataset_GaussianDenoising', gt, 'none', 'val')}, 'datasets.val.dataroot_gt: ',
             'b.png is not an image')


def test_preflight_refuses_small_images_and_a_bad_gt_lmdb(tmp_path):
    gt, _ = image_pairs(tmp_path, n=1, gt=SHAPE, lq=SHAPE)
    _refused({'train': _block('Dataset_GaussianDenoising', gt, 'none', 'train', gt_size=40)},
             'datasets.train.gt_size: ', 'smaller than the LQ training patch 40x40')
    _refused({'val': _block('Dataset_GaussianDenoising', gt, 'none', 'val', io='lmdb')}, 'datasets.val.dataroot_gt: ',
             'must end with ".lmdb"')


@pytest.mark.parametrize('change, prefix', [
    ({'sigma_type': 'fixed'}, 'datasets.train.sigma_type must be one of constant, random, choice'),
    ({'sigma_type': 'random', 'sigma_range': 25}, 'datasets.train.sigma_range must be [low, high]'),
    ({'sigma_type': 'choice', 'sigma_range': [15, -1]}, 'datasets.train.sigma_range[1] must be in [0'),
    ({'in_ch': 2}, 'datasets.train.in_ch must be 3'),
    ({'use_rot': None}, 'datasets.train.use_rot must be true or false'),
])
def test_preflight_refuses_bad_noise_options(tmp_path, change, prefix):
    gt, _ = image_pairs(tmp_path, n=1, gt=(64, 64, 3), lq=(64, 64, 3))
    _refused({'train': _block('Dataset_Maxim_GaussianDenoising', gt, 'none', 'train', **change)}, prefix)


def test_preflight_refuses_missing_sigma_test_and_lmdb_for_dehaze(tmp_path):
    gt, lq = image_pairs(tmp_path, n=1, gt=(64, 64, 3), lq=(64, 64, 3))
    ds = _block('Dataset_GaussianDenoising', gt, 'none', 'val')
    del ds['sigma_test']
    _refused({'val': ds}, 'datasets.val.sigma_test is missing')
    _refused({'val': _block('Dataset_Maxim_Dehaze', gt, lq, 'val', io='lmdb')}, 'datasets.val.io_backend: ',
             'io_backend: {type: disk}')
