"""Tests of AllInOneDataset (mclir_basicsr.data.all_in_one_dataset) on tiny image folders built in tmp_path."""
import copy
import logging
import os
import os.path as osp
import random

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataloader, build_dataset

from mclir_basicsr.data.all_in_one_dataset import AllInOneDataset
from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
from mclir_basicsr.checks.options import OptionError

RNG = np.random.default_rng(0)
SIZE = 40


def _img(value=None, size=SIZE):
    if value is not None:
        return np.full((size, size, 3), value, np.uint8)
    return RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)


def _write(path, img=None):
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    img = _img() if img is None else img
    assert cv2.imwrite(str(path), img)
    return img


def _denoise(root, names=('a.png', 'b.png', 'c.png'), value=None):
    for n in names:
        _write(root / n, _img(value))
    return str(root)


def _derain(root, n=3):
    for i in range(1, n + 1):
        _write(root / 'rainy' / f'rain-{i}.png')
        _write(root / 'gt' / f'norain-{i}.png')
    return str(root)


def _dehaze(root):
    """OTS: two hazy variants of 0001 (in part folders) and one of 0002 directly in synthetic/."""
    _write(root / 'original' / '0001.jpg')
    _write(root / 'original' / '0002.png')
    _write(root / 'synthetic' / 'part1' / '0001_0.8_0.2.jpg')
    _write(root / 'synthetic' / 'part2' / '0001_1_0.16.jpg')
    _write(root / 'synthetic' / '0002_0.9_0.1.jpg')
    return str(root)


def _same_name(root, lq, gt, names=('x.png', 'y.png')):
    for n in names:
        _write(root / gt / n, _write(root / lq / n))  # LQ = GT: crops of a pair must coincide
    return str(root)


def _opt(tasks, phase='train', **extra):
    opt = {'type': 'AllInOneDataset', 'name': 'aio', 'phase': phase, 'io_backend': {'type': 'disk'}, 'tasks': tasks}
    if phase == 'train':
        opt.update(gt_size=32, use_hflip=True, use_rot=True)
    opt.update(extra)
    return opt


def _three(tmp_path):
    clean = [_denoise(tmp_path / 'bsd'), _denoise(tmp_path / 'wed', ('d.png', 'e.png'))]
    return [{'kind': 'denoise', 'dataroot_gt': clean, 'sigma': [15, 25, 50], 'repeat': 3},
            {'kind': 'derain', 'dataroot': _derain(tmp_path / 'rain'), 'repeat': 2},
            {'kind': 'dehaze', 'dataroot': _dehaze(tmp_path / 'ots')}]


def _five(tmp_path):
    return _three(tmp_path) + [{'kind': 'deblur', 'dataroot': _same_name(tmp_path / 'gopro', 'blur', 'sharp')},
                               {'kind': 'lowlight', 'dataroot': _same_name(tmp_path / 'lol', 'low', 'high'),
                                'repeat': 2}]


# ---- layouts, length, labels, items
def test_three_task_layout_length_and_labels(tmp_path):
    ds = AllInOneDataset(_opt(_three(tmp_path)))
    assert len(ds) == 3 * 5 + 2 * 3 + 1 * 3
    assert ds.task_names == ['denoise', 'derain', 'dehaze']
    assert ds.task_sizes['denoise'] == {'kind': 'denoise', 'images': 5, 'repeat': 3, 'samples': 15}
    expected = [0] * 15 + [1] * 6 + [2] * 3
    assert [ds.locate(i)[0] for i in range(len(ds))] == expected
    assert [ds.locate(i)[1] for i in range(15)] == list(range(5)) * 3
    assert [ds[i]['label'] for i in (0, 14, 15, 20, 21, 23)] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(IndexError):
        ds.locate(len(ds))


def test_one_log_line_per_task(tmp_path):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('basicsr')
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        AllInOneDataset(_opt(_five(tmp_path)))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert len(records) == 5 and all(r.levelno == logging.INFO for r in records)


def test_five_task_items(tmp_path):
    ds = AllInOneDataset(_opt(_five(tmp_path)))
    assert len(ds) == 15 + 6 + 3 + 2 + 4 and ds.task_names[3:] == ['deblur', 'lowlight']
    labels = set()
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {'lq', 'gt', 'lq_path', 'gt_path', 'label'}
        assert isinstance(item['label'], int)
        labels.add(item['label'])
        for k in ('lq', 'gt'):
            assert item[k].shape == (3, 32, 32) and item[k].dtype == torch.float32
            assert 0 <= item[k].min() and item[k].max() <= 1
    assert labels == {0, 1, 2, 3, 4}


def test_val_items_are_whole_rgb_images(tmp_path):
    root = tmp_path / 'gopro'
    lq = _write(root / 'blur' / 'x.png')
    gt = _write(root / 'sharp' / 'x.png')
    item = AllInOneDataset(_opt([{'kind': 'deblur', 'dataroot': str(root)}], phase='val'))[0]
    assert torch.equal(item['lq'], torch.from_numpy(lq[:, :, ::-1].transpose(2, 0, 1) / 255.).float())
    assert torch.equal(item['gt'], torch.from_numpy(gt[:, :, ::-1].transpose(2, 0, 1) / 255.).float())


# ---- name mapping
def test_derain_name_mapping(tmp_path):
    ds = AllInOneDataset(_opt([{'kind': 'derain', 'dataroot': _derain(tmp_path / 'rain', 3)}], phase='val'))
    pairs = [(osp.basename(ds[i]['lq_path']), osp.basename(ds[i]['gt_path'])) for i in range(len(ds))]
    assert pairs == [(f'rain-{i}.png', f'norain-{i}.png') for i in (1, 2, 3)]


def test_dehaze_variants_share_one_gt(tmp_path):
    ds = AllInOneDataset(_opt([{'kind': 'dehaze', 'dataroot': _dehaze(tmp_path / 'ots')}], phase='val'))
    pairs = [(osp.relpath(lq, tmp_path / 'ots'), osp.relpath(gt, tmp_path / 'ots')) for lq, gt in ds.tasks[0].samples]
    assert pairs == [('synthetic/0002_0.9_0.1.jpg', 'original/0002.png'),
                     ('synthetic/part1/0001_0.8_0.2.jpg', 'original/0001.jpg'),
                     ('synthetic/part2/0001_1_0.16.jpg', 'original/0001.jpg')]
    assert torch.equal(ds[1]['gt'], ds[2]['gt']) and not torch.equal(ds[1]['lq'], ds[2]['lq'])


def test_dehaze_sots_layout_and_meta_info_file(tmp_path):
    root = tmp_path / 'sots'
    for i in (1, 2):
        _write(root / 'gt' / f'000{i}.png')
        _write(root / 'hazy' / f'000{i}_0.8_0.2.png')
    meta = tmp_path / 'list.txt'
    meta.write_text('0002_0.8_0.2.png (40,40,3)\n')
    ds = AllInOneDataset(_opt([{'kind': 'dehaze', 'dataroot': str(root)}], phase='test'))
    assert [osp.basename(gt) for _, gt in ds.tasks[0].samples] == ['0001.png', '0002.png']
    ds = AllInOneDataset(_opt([{'kind': 'dehaze', 'dataroot': str(root), 'meta_info_file': str(meta)}], phase='val'))
    assert ds.tasks[0].samples == [(str(root / 'hazy' / '0002_0.8_0.2.png'), str(root / 'gt' / '0002.png'))]


def test_meta_info_file_lists_gt_images(tmp_path):
    meta = tmp_path / 'list.txt'
    meta.write_text('norain-2.png\n\nnorain-3.png 1\n')
    ds = AllInOneDataset(_opt([{'kind': 'derain', 'dataroot': _derain(tmp_path / 'rain'), 'meta_info_file': str(meta)}],
                              phase='val'))
    assert [osp.basename(lq) for lq, _ in ds.tasks[0].samples] == ['rain-2.png', 'rain-3.png']


# ---- denoise
def _noise_std(item):
    return float((item['lq'] - item['gt']).std())


def test_denoise_noise_std_matches_sigma(tmp_path):
    _write(tmp_path / 'gray' / 'g.png', _img(128, size=96))  # flat: no clipping at 128 +- 5 sigma
    task = {'kind': 'denoise', 'dataroot_gt': str(tmp_path / 'gray'), 'sigma': 25}
    item = AllInOneDataset(_opt([task], phase='val'))[0]
    assert item['lq_path'] == item['gt_path']
    assert abs(_noise_std(item) - 25 / 255) < 0.05 * 25 / 255
    assert abs(float((item['lq'] - item['gt']).mean())) < 0.01


def test_denoise_sigma_list_and_range(tmp_path):
    folder = _denoise(tmp_path / 'gray', ('g.png', ), value=128)
    random.seed(0)
    np.random.seed(0)
    ds = AllInOneDataset(_opt([{'kind': 'denoise', 'dataroot_gt': folder, 'sigma': [10, 40], 'repeat': 40}]))
    stds = [_noise_std(ds[i]) * 255 for i in range(len(ds))]
    assert all(min(abs(s - 10), abs(s - 40)) < 4 for s in stds)
    assert any(abs(s - 10) < 4 for s in stds) and any(abs(s - 40) < 4 for s in stds)
    ds = AllInOneDataset(_opt([{'kind': 'denoise', 'dataroot_gt': folder, 'sigma': {'min': 20, 'max': 30},
                                'repeat': 40}]))
    stds = [_noise_std(ds[i]) * 255 for i in range(len(ds))]
    assert all(17 < s < 33 for s in stds) and max(stds) - min(stds) > 4


def test_val_noise_is_reproducible_and_per_image(tmp_path):
    task = {'kind': 'denoise', 'dataroot_gt': _denoise(tmp_path / 'gray', ('a.png', 'b.png'), value=100),
            'sigma': [15, 25, 50]}
    one, two = (AllInOneDataset(_opt([task], phase='val', seed=3)) for _ in range(2))
    backwards = [two[1], two[0]]  # another order, another instance: the same noisy images
    for i in (0, 1):
        assert torch.equal(one[i]['lq'], backwards[1 - i]['lq'])
    assert not torch.equal(one[0]['lq'] - one[0]['gt'], one[1]['lq'] - one[1]['gt'])
    other_seed = AllInOneDataset(_opt([task], phase='val', seed=4))
    assert not torch.equal(one[0]['lq'], other_seed[0]['lq'])


def test_train_draws_follow_the_global_rngs(tmp_path):
    ds = AllInOneDataset(_opt(_three(tmp_path)))
    runs = []
    for _ in range(2):
        random.seed(5)
        np.random.seed(5)
        runs.append([ds[i] for i in (0, 16, 22)])
    for a, b in zip(*runs):
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])


# ---- training crop, paired kind
def test_train_crop_size_and_alignment(tmp_path):
    ds = AllInOneDataset(_opt([{'kind': 'deblur', 'dataroot': _same_name(tmp_path / 'gopro', 'blur', 'sharp')}],
                              gt_size=24))
    for i in range(len(ds)):
        item = ds[i]
        assert item['gt'].shape == (3, 24, 24) and torch.equal(item['lq'], item['gt'])


def test_image_smaller_than_gt_size(tmp_path):
    ds = AllInOneDataset(_opt([{'kind': 'deblur', 'dataroot': _same_name(tmp_path / 'gopro', 'blur', 'sharp')}],
                              gt_size=48))
    with pytest.raises(OptionError, match=r'^aio\.gt_size: .*x\.png'):
        ds[0]


def test_gt_and_lq_of_different_sizes(tmp_path):
    _write(tmp_path / 'lol' / 'low' / 'x.png', _img(size=20))
    _write(tmp_path / 'lol' / 'high' / 'x.png')
    ds = AllInOneDataset(_opt([{'kind': 'lowlight', 'dataroot': str(tmp_path / 'lol')}], phase='val'))
    with pytest.raises(OptionError, match=r'^aio\.tasks\[0\]: LQ .*low/x\.png is 20x20'):
        ds[0]


def test_paired_from_folders_and_lmdb(tmp_path):
    root = _same_name(tmp_path / 'pairs', 'lq', 'gt', names=('p1.png', 'p2.png', 'p3.png'))
    folders_to_lmdb(osp.join(root, 'gt'), osp.join(root, 'lq'), str(tmp_path / 'gt.lmdb'), str(tmp_path / 'lq.lmdb'),
                    quiet=True)
    disk = AllInOneDataset(_opt([{'kind': 'paired', 'dataroot_gt': osp.join(root, 'gt'),
                                  'dataroot_lq': osp.join(root, 'lq'), 'name': 'pairs'}], phase='val'))
    lmdb = AllInOneDataset(_opt([{'kind': 'paired', 'dataroot_gt': str(tmp_path / 'gt.lmdb'),
                                  'dataroot_lq': str(tmp_path / 'lq.lmdb'), 'io_backend': {'type': 'lmdb'}}],
                                phase='val'))
    assert len(disk) == len(lmdb) == 3 and disk.task_names == ['pairs'] and lmdb.task_names == ['paired']
    assert lmdb[0]['gt_path'] == 'p1'
    for i in range(3):
        assert torch.equal(disk[i]['gt'], lmdb[i]['gt']) and torch.equal(disk[i]['lq'], lmdb[i]['lq'])


def test_build_dataset_and_dataloader(tmp_path):
    opt = _opt(_five(tmp_path), batch_size_per_gpu=2, num_worker_per_gpu=0, use_shuffle=True,
               dataset_enlarge_ratio=1)
    ds = build_dataset(opt)
    assert isinstance(ds, AllInOneDataset) and opt['type'] == 'AllInOneDataset'  # the caller's dict kept
    batch = next(iter(build_dataloader(ds, opt, num_gpu=0, dist=False, sampler=None, seed=0)))
    assert batch['label'].shape == (2, ) and batch['gt'].shape == (2, 3, 32, 32)
    build_dataset(opt)  # building twice works: nothing popped from the options


def test_balanced_order_puts_every_task_in_every_batch(tmp_path):
    ds = AllInOneDataset(_opt(_three(tmp_path), balanced=True, batch_size_per_gpu=4))
    order = ds.balanced_indices(45, seed=[0, 0])
    labels = [ds.locate(i)[0] for i in order]
    assert labels == [p % 3 for p in range(45)]
    for start in range(0, 45 - 3):  # any 3 consecutive positions: every task
        assert set(labels[start:start + 3]) == {0, 1, 2}
    firsts = [i for i in order if ds.locate(i)[0] == 0][:15]
    assert sorted(firsts) == list(range(15))  # a task's samples are all used before any repeats
    assert ds.balanced_indices(45, seed=[0, 0]) == order and ds.balanced_indices(45, seed=[1, 0]) != order


def test_balanced_batches_through_our_sampler_and_its_resume_skip(tmp_path):
    from mclir_basicsr.runtime.resume import ResumableSampler
    opt = _opt(_three(tmp_path), balanced=True, batch_size_per_gpu=3, num_worker_per_gpu=0, dataset_enlarge_ratio=2)
    ds = build_dataset(opt)
    sampler = ResumableSampler(ds, 1, 0, 2)
    sampler.set_epoch(3)
    batches = list(build_dataloader(ds, opt, num_gpu=0, dist=False, sampler=sampler, seed=0))
    assert batches and all(sorted(b['label'].tolist()) == [0, 1, 2] for b in batches)
    full = list(sampler)
    sampler.skip_once(3, 6)
    assert list(sampler) == full[6:]  # resume mid-epoch: the same order, minus what was trained on
    _fails(_opt(_three(tmp_path), balanced=True, batch_size_per_gpu=2), '.balanced: every batch must hold')


# ---- bad input: OptionError starting with the key path, from check_options and from the constructor
def _fails(opt, pattern, prefix='datasets.train'):
    with pytest.raises(OptionError) as info:
        AllInOneDataset.check_options(copy.deepcopy(opt), prefix)
    assert info.value.args[0].startswith(prefix + pattern), info.value.args[0]
    with pytest.raises(OptionError) as built:
        AllInOneDataset(opt)
    assert built.value.args[0] == info.value.args[0].replace(prefix, 'aio', 1)
    return info.value.args[0]


def test_unknown_kind_names_the_nearest(tmp_path):
    msg = _fails(_opt([{'kind': 'denoize', 'dataroot_gt': str(tmp_path)}]), '.tasks[0].kind: ')
    assert 'Did you mean denoise?' in msg


def test_unknown_keys_name_the_nearest(tmp_path):
    tasks = _three(tmp_path)
    tasks[0]['sigmas'] = 25
    with pytest.raises(OptionError, match=r'datasets\.train\.tasks\[0\]\.sigmas\. Did you mean .*\.sigma\?'):
        AllInOneDataset.check_options(_opt(tasks), 'datasets.train')
    with pytest.raises(OptionError, match=r'datasets\.train\.gt_sise\. Did you mean datasets\.train\.gt_size\?'):
        AllInOneDataset.check_options(_opt(_three(tmp_path), gt_sise=3), 'datasets.train')


def test_missing_folder_and_subfolder(tmp_path):
    msg = _fails(_opt([{'kind': 'derain', 'dataroot': str(tmp_path / 'nowhere')}]), '.tasks[0].dataroot: ')
    assert 'nowhere' in msg
    root = _derain(tmp_path / 'rain')
    os.rename(osp.join(root, 'rainy'), osp.join(root, 'wet'))
    assert 'rainy/' in _fails(_opt([{'kind': 'derain', 'dataroot': root}]), '.tasks[0].dataroot: ')
    os.makedirs(tmp_path / 'gopro' / 'blur')
    assert 'sharp' in _fails(_opt([{'kind': 'deblur', 'dataroot': str(tmp_path / 'gopro')}]), '.tasks[0].dataroot: ')
    tasks = _three(tmp_path)
    tasks[0]['dataroot_gt'][1] = str(tmp_path / 'no_wed')
    _fails(_opt(tasks), '.tasks[0].dataroot_gt[1]: ')


def test_task_without_images(tmp_path):
    os.makedirs(tmp_path / 'empty')
    _fails(_opt([{'kind': 'denoise', 'dataroot_gt': str(tmp_path / 'empty'), 'sigma': 25}]), '.tasks[0].dataroot_gt: ')
    os.makedirs(tmp_path / 'lol' / 'low')
    os.makedirs(tmp_path / 'lol' / 'high')
    assert 'no images' in _fails(_opt([{'kind': 'lowlight', 'dataroot': str(tmp_path / 'lol')}]), '.tasks[0].dataroot')


def test_list_file_naming_missing_images(tmp_path):
    meta = tmp_path / 'list.txt'
    meta.write_text(''.join(f'norain-{i}.png (40,40,3)\n' for i in range(1, 10)))
    tasks = [{'kind': 'derain', 'dataroot': _derain(tmp_path / 'rain', 2), 'meta_info_file': str(meta)}]
    msg = _fails(_opt(tasks), '.tasks[0].meta_info_file: ')
    assert '7 image(s)' in msg and 'norain-3.png' in msg and 'and 2 more' in msg
    tasks = [{'kind': 'denoise', 'dataroot_gt': _denoise(tmp_path / 'bsd'), 'sigma': 25, 'meta_info_file': str(meta)}]
    _fails(_opt(tasks), '.tasks[0].meta_info_file: ')


def test_lq_without_gt_and_gt_without_lq(tmp_path):
    root = _derain(tmp_path / 'rain', 3)
    os.remove(osp.join(root, 'gt', 'norain-2.png'))
    _write(tmp_path / 'rain' / 'gt' / 'norain-9.png')
    msg = _fails(_opt([{'kind': 'derain', 'dataroot': root}]), '.tasks[0].dataroot: ')
    assert 'rain-2.png' in msg and 'norain-9.png' in msg
    root = _same_name(tmp_path / 'pairs', 'lq', 'gt')
    os.remove(osp.join(root, 'lq', 'y.png'))
    _write(tmp_path / 'pairs' / 'lq' / 'z.png')
    msg = _fails(_opt([{'kind': 'paired', 'dataroot_gt': osp.join(root, 'gt'), 'dataroot_lq': osp.join(root, 'lq')}]),
                 '.tasks[0]: ')
    assert 'z.png' in msg and 'y.png' in msg


def test_lmdbs_with_different_keys(tmp_path):
    for name, n in (('a', 2), ('b', 3)):
        root = _same_name(tmp_path / name, 'lq', 'gt', names=[f'k{i}.png' for i in range(n)])
        folders_to_lmdb(osp.join(root, 'gt'), osp.join(root, 'lq'), str(tmp_path / f'{name}_gt.lmdb'),
                        str(tmp_path / f'{name}_lq.lmdb'), quiet=True)
    task = {'kind': 'paired', 'dataroot_gt': str(tmp_path / 'a_gt.lmdb'), 'dataroot_lq': str(tmp_path / 'b_lq.lmdb'),
            'io_backend': {'type': 'lmdb'}}
    assert 'k2' in _fails(_opt([task]), '.tasks[0]: ')
    task = {'kind': 'derain', 'dataroot': _derain(tmp_path / 'rain'), 'io_backend': {'type': 'lmdb'}}
    assert 'kind: paired' in _fails(_opt([task]), '.tasks[0].io_backend: ')


@pytest.mark.parametrize('sigma, where', [(300, '.sigma must be in'), ([15, -1], '.sigma[1] must be in'),
                                          ([], '.sigma is an empty'), ({'min': 30, 'max': 20}, '.sigma: '),
                                          ({'min': 0}, '.sigma needs'), (None, '.sigma is missing')])
def test_bad_sigma(tmp_path, sigma, where):
    task = {'kind': 'denoise', 'dataroot_gt': _denoise(tmp_path / 'bsd')}
    if sigma is not None:
        task['sigma'] = sigma
    _fails(_opt([task]), '.tasks[0]' + where)


def test_bad_repeat_gt_size_and_names(tmp_path):
    tasks = _three(tmp_path)
    tasks[1]['repeat'] = 0
    _fails(_opt(tasks), '.tasks[1].repeat must be >= 1')
    opt = _opt(_three(tmp_path))
    del opt['gt_size']
    assert 'gt_size is missing' in _fails(opt, '.gt_size')
    _fails(_opt(_three(tmp_path), scale=2), '.scale: ')
    tasks = _three(tmp_path)
    tasks[2]['name'] = 'derain'
    _fails(_opt(tasks), '.tasks[2].name: ')
    _fails(_opt([]), '.tasks must be')


def test_check_options_builds_nothing(tmp_path, monkeypatch):
    opt = _opt(_five(tmp_path))

    def refuse(self, opt):
        raise AssertionError('check_options built the dataset')

    monkeypatch.setattr(AllInOneDataset, '__init__', refuse)
    assert AllInOneDataset.check_options(opt, 'datasets.train') is None
    assert AllInOneDataset.check_options(_opt(_three(tmp_path), phase=None), 'datasets.val_2') is None
