"""Data is checked before the first step (mclir_basicsr.checks.preflight): every image of every training and
validation set readable, pair sizes, gt_size, meta_info lines unique and agreeing with the lmdb, for
PairedImageDataset (folders, meta_info_file, lmdb) and AllInOneDataset, and the per-dataset switch ``check_images``.

One test per case; each asserts an OptionError whose message starts with the ``datasets.<phase>.<key>`` path. Tiny
images. Through ``mclir_basicsr.train``, with nothing written: e2e/test_preflight_data.py.
"""
import copy
import os
import os.path as osp

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import pytest

from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.checks.preflight import check_inputs
from tests.helpers import TINY_EDSR, truncate_file
from tests.helpers import image_pairs as _pairs, pair_lmdbs as _lmdbs, paired_dataset as _ds, random_image as _img


# ---- helpers


def _write(path, shape, seed=0, ext_params=()):
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), _img(shape, seed), list(ext_params))


def _opt(datasets, scale=2):
    return {'name': 'bad', 'scale': scale, 'is_train': True, 'auto_resume': False, 'datasets': datasets,
            'network_g': copy.deepcopy(TINY_EDSR), 'train': {},
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}}


def _fails(datasets, prefix, *parts, scale=2):
    """check_inputs raises OptionError starting with ``prefix`` and containing ``parts``; returns the message."""
    with pytest.raises(OptionError) as err:
        check_inputs(_opt(datasets, scale))
    msg = str(err.value)
    assert msg.startswith(prefix), msg
    assert 'the_name' not in msg, msg  # the key path, not the dataset's name
    for part in parts:
        assert str(part) in msg, f'{part!r} not in message:\n{msg}'
    return msg


def _write_meta(db, lines):
    with open(osp.join(db, 'meta_info.txt'), 'w') as f:
        f.writelines(line + '\n' for line in lines)


# ---- images that do not decode (PairedImageDataset, folders)
def test_truncated_jpeg(tmp_path):
    gt, lq = _pairs(tmp_path, ext='.jpg')
    truncate_file(osp.join(lq, 'img1.jpg'))  # OpenCV still decodes it, the missing part grey
    _fails({'train': _ds(gt, lq)}, f'datasets.train.dataroot_lq: {lq}/img1.jpg is truncated', 'EOI marker FF D9',
           're-export it')


def test_truncated_png(tmp_path):
    gt, lq = _pairs(tmp_path, n=6)
    truncate_file(osp.join(gt, 'img4.png'))  # beyond the pairs decoded in full
    _fails({'train': _ds(gt, lq)}, f'datasets.train.dataroot_gt: {gt}/img4.png is truncated', 'IEND')


def test_zero_byte_png(tmp_path):
    gt, lq = _pairs(tmp_path, n=6)
    open(osp.join(lq, 'img5.png'), 'wb').close()
    open(osp.join(lq, 'img3.png'), 'wb').close()
    _fails({'train': _ds(gt, lq)}, 'datasets.train.dataroot_lq: 2 of 6 images cannot be read in full '
           '[img3.png, img5.png]', 'is empty (0 bytes)', 'remove them and their partners')


def test_text_file_renamed_png(tmp_path):
    gt, lq = _pairs(tmp_path)
    open(osp.join(gt, 'img2.png'), 'w').write('not an image\n')
    _fails({'train': _ds(gt, lq)}, f'datasets.train.dataroot_gt: {gt}/img2.png is not an image', "b'not an i'")


def test_png_with_bytes_after_its_end_passes(tmp_path):
    """Data after the end marker is legal (both decoders ignore it): decoded in full before any refusal."""
    gt, lq = _pairs(tmp_path)
    with open(osp.join(gt, 'img1.png'), 'ab') as f:
        f.write(b'trailing bytes')
    check_inputs(_opt({'train': _ds(gt, lq)}))


# ---- sizes
def test_gt_not_scale_times_lq(tmp_path):
    gt, lq = _pairs(tmp_path, n=6)
    _write(osp.join(lq, 'img4.png'), (8, 7, 3))
    _fails({'train': _ds(gt, lq)}, 'datasets.train.dataroot_lq: GT/LQ sizes do not match scale 2', '[img4.png]',
           'is 8x7, so GT should be 16x14')


def test_scale_1_pair_of_different_sizes(tmp_path):
    gt, lq = _pairs(tmp_path, gt=(16, 16, 3), lq=(16, 16, 3))
    _write(osp.join(gt, 'img2.png'), (16, 18, 3))
    _fails({'val': _ds(gt, lq, phase='val')}, 'datasets.val.dataroot_lq: GT/LQ sizes do not match scale 1',
           '[img2.png]', 'must have the same size', scale=1)


def test_image_smaller_than_gt_size(tmp_path):
    gt, lq = _pairs(tmp_path, n=6, gt=(32, 32, 3), lq=(16, 16, 3))
    _write(osp.join(gt, 'img5.png'), (20, 32, 3))
    _write(osp.join(lq, 'img5.png'), (10, 16, 3))
    _fails({'train': _ds(gt, lq, gt_size=24)}, 'datasets.train.gt_size: 1 LQ image(s) are smaller than the LQ '
           'training patch 12x12', '[img5.png]')


# ---- meta_info lines unique and agreeing with what is stored
def test_duplicate_line_in_meta_info_file(tmp_path):
    gt, lq = _pairs(tmp_path)
    meta = tmp_path / 'meta.txt'
    meta.write_text('img0.png (16,16,3)\nimg1.png (16,16,3)\nimg2.png (16,16,3)\nimg1.png (16,16,3)\n')
    _fails({'train': _ds(gt, lq, meta_info_file=str(meta))}, 'datasets.train.meta_info_file: ',
           'names 1 image(s) more than once: [img1.png (lines 2, 4)]')


def test_duplicate_line_in_lmdb_meta_info(tmp_path):
    gt_db, lq_db = _lmdbs(tmp_path)
    _write_meta(lq_db, ['img0.png (8,8,3) 1', 'img1.png (8,8,3) 1', 'img2.png (8,8,3) 1', 'img2.png (8,8,3) 1'])
    _fails({'train': _ds(gt_db, lq_db, 'lmdb')}, 'datasets.train.dataroot_lq: ', 'lists 1 key(s) more than once: '
           '[img2 (lines 3, 4)]')


def test_lmdb_meta_info_key_missing_from_lmdb(tmp_path):
    gt_db, lq_db = _lmdbs(tmp_path)
    for db, size in ((gt_db, 16), (lq_db, 8)):
        with open(osp.join(db, 'meta_info.txt'), 'a') as f:
            f.write(f'img7.png ({size},{size},3) 1\n')
    _fails({'train': _ds(gt_db, lq_db, 'lmdb')}, 'datasets.train.dataroot_gt: 1 key(s) listed in',
           'not in the lmdb: [img7]')


def test_lmdb_meta_info_size_differs_from_stored_image(tmp_path):
    gt_db, lq_db = _lmdbs(tmp_path, n=6)
    # img4 (not decoded in full) listed at another size, consistent with scale 2 so only the stored size tells
    _write_meta(gt_db, [f'img{i}.png ({20 if i == 4 else 16},16,3) 1' for i in range(6)])
    _write_meta(lq_db, [f'img{i}.png ({10 if i == 4 else 8},8,3) 1' for i in range(6)])
    _fails({'train': _ds(gt_db, lq_db, 'lmdb')}, 'datasets.train.dataroot_gt: 1 image(s) in lmdb',
           "'img4' in", 'is 16x16 (HxW) but meta_info.txt says 20x16')


def test_lmdb_value_truncated(tmp_path):
    import lmdb
    gt_db, lq_db = _lmdbs(tmp_path, n=5)
    env = lmdb.open(lq_db, map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b'img3', txn.get(b'img3')[:40])
    env.close()
    _fails({'train': _ds(gt_db, lq_db, 'lmdb')}, "datasets.train.dataroot_lq: 'img3' in", 'is truncated', 'IEND')


# ---- AllInOneDataset task folders
def _aio(tasks, phase='train', **kw):
    ds = {'type': 'AllInOneDataset', 'name': 'the_name', 'phase': phase, 'io_backend': {'type': 'disk'},
          'tasks': tasks}
    if phase == 'train':
        ds['gt_size'] = 16
    ds.update(kw)
    return ds


def _derain(root, n=4, size=16):
    for i in range(1, n + 1):
        _write(root / 'rainy' / f'rain-{i}.png', (size, size, 3), i)
        _write(root / 'gt' / f'norain-{i}.png', (size, size, 3), 50 + i)
    return str(root)


def _denoise(root, n=3, size=16):
    for i in range(n):
        _write(root / f'c{i}.png', (size, size, 3), i)
    return str(root)


def test_all_in_one_truncated_image(tmp_path):
    tasks = [{'kind': 'denoise', 'dataroot_gt': _denoise(tmp_path / 'bsd'), 'sigma': 25},
             {'kind': 'derain', 'dataroot': _derain(tmp_path / 'rain')}]
    truncate_file(str(tmp_path / 'rain' / 'rainy' / 'rain-4.png'))
    _fails({'train': _aio(tasks)}, 'datasets.train.tasks[1].dataroot: ', 'rain-4.png is truncated')
    open(tmp_path / 'bsd' / 'c1.png', 'wb').close()  # a denoising image has no partner
    msg = _fails({'train': _aio(tasks)}, 'datasets.train.tasks[0].dataroot_gt: ', 'c1.png is empty (0 bytes)')
    assert 'partner' not in msg


def test_all_in_one_pair_of_different_sizes(tmp_path):
    root = _derain(tmp_path / 'rain')
    _write(tmp_path / 'rain' / 'gt' / 'norain-3.png', (16, 20, 3))
    _fails({'train': _aio([{'kind': 'derain', 'dataroot': root}])}, 'datasets.train.tasks[0].dataroot: GT/LQ sizes '
           'do not match scale 1', '[rain-3.png]', scale=1)


def test_all_in_one_image_smaller_than_gt_size(tmp_path):
    tasks = [{'kind': 'denoise', 'dataroot_gt': _denoise(tmp_path / 'bsd', n=5), 'sigma': 25}]
    _write(tmp_path / 'bsd' / 'c4.png', (12, 16, 3))
    _fails({'train': _aio(tasks)}, 'datasets.train.gt_size: 1 LQ image(s) are smaller than the LQ training patch '
           '16x16', 'c4.png is 12x16', scale=1)


def test_all_in_one_duplicate_meta_info_line(tmp_path):
    meta = tmp_path / 'list.txt'
    meta.write_text('norain-1.png\nnorain-2.png\nnorain-1.png\n')
    tasks = [{'kind': 'derain', 'dataroot': _derain(tmp_path / 'rain'), 'meta_info_file': str(meta)}]
    _fails({'train': _aio(tasks)}, 'datasets.train.tasks[0].meta_info_file: 1 image(s) are listed more than once',
           '[norain-1.png]', 'tasks[0].repeat', scale=1)
    folder = _denoise(tmp_path / 'bsd')
    _fails({'train': _aio([{'kind': 'denoise', 'dataroot_gt': [folder, folder], 'sigma': 25}])},
           'datasets.train.tasks[0].dataroot_gt: 3 image(s) are listed more than once', scale=1)


def test_all_in_one_lmdb_task(tmp_path):
    gt_db, lq_db = _lmdbs(tmp_path, n=5, gt=(16, 16, 3), lq=(16, 16, 3))
    task = {'kind': 'paired', 'dataroot_gt': gt_db, 'dataroot_lq': lq_db, 'io_backend': {'type': 'lmdb'}}
    check_inputs(_opt({'train': _aio([task])}, scale=1))
    _write_meta(lq_db, [f'img{i}.png (16,16,3) 1' for i in (0, 1, 2, 3, 4, 1)])
    _fails({'train': _aio([task])}, 'datasets.train.tasks[0].dataroot_lq: ', 'more than once: [img1 (lines 2, 6)]',
           scale=1)
    for db in (gt_db, lq_db):
        _write_meta(db, [f'img{i}.png ({12 if i == 3 else 16},16,3) 1' for i in range(5)] + ['img9.png (16,16,3) 1'])
    _fails({'train': _aio([task])}, 'datasets.train.tasks[0].dataroot_gt: 1 key(s) listed in',
           'not in the lmdb: [img9]', scale=1)
    for db in (gt_db, lq_db):
        _write_meta(db, [f'img{i}.png ({12 if i == 3 else 16},16,3) 1' for i in range(5)])
    _fails({'train': _aio([task])}, 'datasets.train.tasks[0].dataroot_gt: 1 image(s) in lmdb',
           'is 16x16 (HxW) but meta_info.txt says 12x16', scale=1)


# ---- validation sets
def test_validation_set(tmp_path):
    gt, lq = _pairs(tmp_path / 'pairs', n=5)
    truncate_file(osp.join(gt, 'img3.png'))
    _fails({'val': _ds(gt, lq, phase='val')}, f'datasets.val.dataroot_gt: {gt}/img3.png is truncated')
    tasks = [{'kind': 'denoise', 'dataroot_gt': _denoise(tmp_path / 'bsd68'), 'sigma': 25}]
    open(tmp_path / 'bsd68' / 'c2.png', 'w').write('text')
    _fails({'val_denoise25': _aio(tasks, phase=None)}, 'datasets.val_denoise25.tasks[0].dataroot_gt: ',
           'c2.png is not an image', scale=1)


# ---- the switch
def test_check_images_false_lets_a_bad_set_through(tmp_path):
    gt, lq = _pairs(tmp_path / 'pairs', n=6)
    truncate_file(osp.join(lq, 'img4.png'))  # beyond the pairs decoded in full
    _fails({'train': _ds(gt, lq)}, 'datasets.train.dataroot_lq: ', 'is truncated')
    check_inputs(_opt({'train': _ds(gt, lq, check_images=False)}))
    tasks = [{'kind': 'derain', 'dataroot': _derain(tmp_path / 'rain', n=5)}]
    truncate_file(str(tmp_path / 'rain' / 'gt' / 'norain-5.png'))
    _fails({'train': _aio(tasks)}, 'datasets.train.tasks[0].dataroot: ', 'is truncated', scale=1)
    check_inputs(_opt({'train': _aio(tasks, check_images=False)}, scale=1))


def test_check_images_must_be_a_boolean(tmp_path):
    gt, lq = _pairs(tmp_path / 'pairs')
    _fails({'train': _ds(gt, lq, check_images='no')}, "datasets.train.check_images must be true or false, got 'no'")
    _fails({'train': _ds(gt, lq, check_image=False)}, 'datasets.train.check_image is not an option',
           'Did you mean datasets.train.check_images?')
    tasks = [{'kind': 'denoise', 'dataroot_gt': _denoise(tmp_path / 'bsd'), 'sigma': 25}]
    _fails({'val': _aio(tasks, phase='val', check_images=1)}, 'datasets.val.check_images must be true or false',
           scale=1)
