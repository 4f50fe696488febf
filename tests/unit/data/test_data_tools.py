"""Tests of the lmdb packer (mclir_basicsr.data.lmdb_tools) and the demo data builder (demo_data)."""
import json
import os
import os.path as osp

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import lmdb
import numpy as np
import pytest
from basicsr.data import build_dataset
from basicsr.utils.matlab_functions import imresize

from mclir_basicsr.data import demo_data, lmdb_tools
from mclir_basicsr.data.lmdb_tools import folders_to_lmdb


def _write(folder, name, img):
    os.makedirs(folder, exist_ok=True)
    assert cv2.imwrite(osp.join(folder, name), img)
    return img


def _rand(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _meta_keys(lmdb_path):
    with open(osp.join(lmdb_path, 'meta_info.txt')) as f:
        return [line.split('.')[0] for line in f]


def _lmdb_img(lmdb_path, key):
    env = lmdb.open(lmdb_path, readonly=True, lock=False)
    with env.begin() as txn:
        buf = txn.get(key.encode())
    env.close()
    return cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED)


def _paired_dataset(gt, lq, scale):
    return build_dataset({'name': 't', 'type': 'PairedImageDataset', 'phase': 'val', 'scale': scale,
                          'io_backend': {'type': 'lmdb'}, 'dataroot_gt': gt, 'dataroot_lq': lq})


def _to_uint8(t):  # dataset tensor (RGB, CHW, [0,1]) -> BGR HWC uint8
    return np.round(t.numpy().transpose(1, 2, 0)[..., ::-1] * 255).astype(np.uint8)


@pytest.fixture
def pairs(tmp_path):
    """Three GT 24x20 / LQ 12x10 pairs in png, BMP and tif, plus a non-image file that must be ignored."""
    rng = np.random.default_rng(1)
    gt_dir, lq_dir = str(tmp_path / 'gt'), str(tmp_path / 'lq')
    src = {}
    for key, ext in (('a', '.png'), ('b01', '.BMP'), ('c_2', '.tif')):
        src[key] = (_write(gt_dir, key + ext, _rand(rng, 24, 20)), _write(lq_dir, key + '.png', _rand(rng, 12, 10)))
    (tmp_path / 'gt' / 'notes.txt').write_text('not an image')
    return gt_dir, lq_dir, src


def test_roundtrip_through_basicsr_paired_dataset(pairs, tmp_path):
    gt_dir, lq_dir, src = pairs
    gt_db, lq_db = str(tmp_path / 'o' / 'gt.lmdb'), str(tmp_path / 'o' / 'lq.lmdb')
    keys = folders_to_lmdb(gt_dir, lq_dir, gt_db, lq_db, quiet=True)
    assert keys == ['a', 'b01', 'c_2']
    assert _meta_keys(gt_db) == _meta_keys(lq_db) == keys
    assert sorted(os.listdir(tmp_path / 'o')) == ['gt.lmdb', 'lq.lmdb']  # no temporary leftovers
    ds = _paired_dataset(gt_db, lq_db, 2)
    assert len(ds) == 3
    for i, key in enumerate(keys):
        item = ds[i]
        assert item['gt_path'] == item['lq_path'] == key
        np.testing.assert_array_equal(_to_uint8(item['gt']), src[key][0])
        np.testing.assert_array_equal(_to_uint8(item['lq']), src[key][1])


def test_lq_name_template(tmp_path):
    rng = np.random.default_rng(2)
    lq_imgs = {}
    for k in ('0001', '0002'):
        _write(str(tmp_path / 'hr'), f'{k}.png', _rand(rng, 16, 16))
        lq_imgs[k] = _write(str(tmp_path / 'lr'), f'{k}x4.png', _rand(rng, 4, 4))
    gt_db, lq_db = str(tmp_path / 'hr.lmdb'), str(tmp_path / 'lr.lmdb')
    assert folders_to_lmdb(str(tmp_path / 'hr'), str(tmp_path / 'lr'), gt_db, lq_db, '{}x4', quiet=True) == \
        ['0001', '0002']
    assert _meta_keys(lq_db) == ['0001', '0002']  # LQ lmdb is keyed by GT basenames
    np.testing.assert_array_equal(_lmdb_img(lq_db, '0002'), lq_imgs['0002'])
    assert len(_paired_dataset(gt_db, lq_db, 4)) == 2
    with pytest.raises(ValueError, match='exactly one'):
        folders_to_lmdb(str(tmp_path / 'hr'), str(tmp_path / 'lr'), str(tmp_path / 'x.lmdb'),
                        str(tmp_path / 'y.lmdb'), 'x4')


def test_refuses_to_overwrite_and_leaves_existing_untouched(pairs, tmp_path):
    gt_dir, lq_dir, _ = pairs
    existing = tmp_path / 'gt.lmdb'
    existing.mkdir()
    (existing / 'meta_info.txt').write_text('old\n')
    with pytest.raises(FileExistsError, match='gt.lmdb.*delete it or choose another'):
        folders_to_lmdb(gt_dir, lq_dir, str(existing), str(tmp_path / 'lq.lmdb'))
    assert os.listdir(existing) == ['meta_info.txt'] and (existing / 'meta_info.txt').read_text() == 'old\n'
    assert not (tmp_path / 'lq.lmdb').exists()
    with pytest.raises(ValueError, match='must end with ".lmdb"'):
        folders_to_lmdb(gt_dir, lq_dir, str(tmp_path / 'gt_db'), str(tmp_path / 'lq.lmdb'))


def test_unpaired_names_are_listed(tmp_path):
    rng = np.random.default_rng(3)
    for k in ('a', 'b', 'c'):
        _write(str(tmp_path / 'gt'), f'{k}.png', _rand(rng, 8, 8))
    for k in ('a', 'b', 'd'):
        _write(str(tmp_path / 'lq'), f'{k}.jpg', _rand(rng, 8, 8))
    with pytest.raises(ValueError) as err:
        folders_to_lmdb(str(tmp_path / 'gt'), str(tmp_path / 'lq'), str(tmp_path / 'g.lmdb'), str(tmp_path / 'l.lmdb'))
    msg = str(err.value)
    assert "1 GT image(s) without LQ: ['c.png']" in msg and "1 LQ image(s) without GT: ['d.jpg']" in msg
    assert "'{}'" in msg
    assert not (tmp_path / 'g.lmdb').exists() and not (tmp_path / 'l.lmdb').exists()


def test_missing_empty_and_bad_inputs(tmp_path):
    out = str(tmp_path / 'g.lmdb'), str(tmp_path / 'l.lmdb')
    with pytest.raises(FileNotFoundError, match='GT folder .*nope.* does not exist'):
        folders_to_lmdb(str(tmp_path / 'nope'), str(tmp_path), *out)
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('x')
    with pytest.raises(ValueError, match='contains no images'):
        folders_to_lmdb(str(tmp_path / 'empty'), str(tmp_path / 'empty'), *out)
    _write(str(tmp_path / 'dots'), 'img.v2.png', np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="cannot be lmdb keys.*img.v2"):
        lmdb_tools.folder_to_lmdb(str(tmp_path / 'dots'), out[0])
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'x.png').write_text('not a png')
    with pytest.raises(ValueError, match='cannot read image .*x.png'):
        lmdb_tools.folder_to_lmdb(str(tmp_path / 'bad'), out[0])
    assert sorted(os.listdir(tmp_path)) == ['bad', 'dots', 'empty']  # nothing half-written


def test_cli(pairs, tmp_path, capsys):
    gt_dir, lq_dir, _ = pairs
    args = ['--gt', gt_dir, '--lq', lq_dir, '--out-gt', str(tmp_path / 'g.lmdb'), '--out-lq', str(tmp_path / 'l.lmdb')]
    assert lmdb_tools.main(args + ['--quiet']) == 0
    assert 'wrote 3 pairs' in capsys.readouterr().out
    assert lmdb_tools.main(args) == 2  # outputs now exist
    err = capsys.readouterr().err
    assert err.startswith('mclir-make-lmdb: error:') and 'g.lmdb' in err and 'Traceback' not in err
    args[-3:] = [str(tmp_path / 'g2.lmdb'), '--out-lq', str(tmp_path / 'l2.lmdb')]
    assert lmdb_tools.main(['--gt', str(tmp_path / 'missing')] + args[2:]) == 2
    err = capsys.readouterr().err
    assert "GT folder '" in err and "missing' does not exist" in err and 'Traceback' not in err


# ----------------------------------------------------------------------------------------------- demo data
TINY = dict(train_photos=('astronaut', 'retina'), max_crops_per_photo=4, quiet=True)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo'))
    return root, demo_data.build_demo_data(root, **TINY)


def test_demo_layout_and_keys(demo):
    _, paths = demo
    for task in ('sr_x2', 'dn_s25'):
        p = paths[task]
        man = json.load(open(p['manifest']))
        assert man['counts'] == {'train': 8, 'val': 2} and man['config']['seed'] == 0
        for split in ('train', 'val'):
            names = sorted(f[:-4] for f in os.listdir(p[f'{split}_gt']))
            assert names == sorted(f[:-4] for f in os.listdir(p[f'{split}_lq']))
            assert _meta_keys(p[f'{split}_gt_lmdb']) == _meta_keys(p[f'{split}_lq_lmdb']) == names
        train = os.listdir(p['train_gt'])
        assert sorted(os.listdir(p['val_gt'])) == ['chelsea.png', 'coffee.png']
        assert not any(f.startswith(('chelsea', 'coffee')) for f in train)
    ds = _paired_dataset(paths['sr_x2']['val_gt_lmdb'], paths['sr_x2']['val_lq_lmdb'], 2)
    assert tuple(ds[0]['gt'].shape) == (3, 192, 192) and tuple(ds[0]['lq'].shape) == (3, 96, 96)


def test_demo_sr_x2_is_matlab_bicubic_half(demo):
    p = demo[1]['sr_x2']
    for split, size in (('train', 128), ('val', 192)):
        name = sorted(os.listdir(p[f'{split}_gt']))[0]
        gt = cv2.imread(osp.join(p[f'{split}_gt'], name))
        lq = cv2.imread(osp.join(p[f'{split}_lq'], name))
        assert gt.shape == (size, size, 3) and lq.shape == (size // 2, size // 2, 3)
        ref = np.clip(np.round(imresize(gt.astype(np.float32) / 255., 0.5) * 255), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(lq, ref)
        np.testing.assert_array_equal(_lmdb_img(p[f'{split}_lq_lmdb'], name[:-4]), lq)


def test_demo_dn_s25_noise(demo):
    p = demo[1]['dn_s25']
    diffs = []
    for split in ('train', 'val'):
        for name in os.listdir(p[f'{split}_gt']):
            gt = cv2.imread(osp.join(p[f'{split}_gt'], name)).astype(np.float64)
            lq = cv2.imread(osp.join(p[f'{split}_lq'], name)).astype(np.float64)
            assert gt.shape == lq.shape
            mid = (gt > 75) & (gt < 180)  # > 3 sigma from 0 and 255: clipping is negligible
            diffs.append((lq - gt)[mid])
    d = np.concatenate(diffs)
    assert d.size > 50000 and abs(d.std() - 25) < 1.5 and abs(d.mean()) < 0.5


def test_demo_idempotent_deterministic_and_rebuilds_partial(demo, tmp_path):
    root, paths = demo
    p = paths['dn_s25']
    stamp = os.stat(p['manifest']).st_mtime_ns
    demo_data.build_demo_data(root, **TINY)  # complete: nothing rewritten
    assert os.stat(p['manifest']).st_mtime_ns == stamp
    name = 'astronaut_s001.png'
    first = open(osp.join(p['train_lq'], name), 'rb').read()
    other = demo_data.build_demo_data(str(tmp_path), tasks=['dn_s25'], **TINY)['dn_s25']
    assert open(osp.join(other['train_lq'], name), 'rb').read() == first  # same seed -> same bytes
    reseeded = demo_data.build_demo_data(str(tmp_path), tasks=['dn_s25'], seed=1, **TINY)['dn_s25']
    assert open(osp.join(reseeded['train_lq'], name), 'rb').read() != first  # settings changed -> rebuilt
    import shutil
    shutil.rmtree(reseeded['val_lq_lmdb'])
    demo_data.build_demo_data(str(tmp_path), tasks=['dn_s25'], seed=1, **TINY)
    assert _meta_keys(reseeded['val_lq_lmdb']) == ['chelsea', 'coffee']
    assert sorted(os.listdir(tmp_path)) == ['dn_s25']  # no temporary folders left
    (tmp_path / 'dn_s25' / 'mine.txt').write_text('user file')
    with pytest.raises(FileExistsError, match='did not make'):
        demo_data.build_demo_data(str(tmp_path), tasks=['dn_s25'], seed=2, **TINY)


def test_demo_default_split():
    assert not set(demo_data.TRAIN_PHOTOS) & set(demo_data.VAL_PHOTOS)
    assert {'motorcycle_left', 'motorcycle_right'} <= set(demo_data.TRAIN_PHOTOS)  # near-duplicates stay together
    counts = {n: len(demo_data.extract_crops(demo_data.load_photo(n))) for n in demo_data.TRAIN_PHOTOS}
    assert 250 <= sum(counts.values()) <= 450, counts
    assert counts['astronaut'] <= 25 and counts['retina'] < 64  # mostly-black crops are dropped
    assert demo_data.load_photo('retina').shape == (705, 705, 3)
    crop = demo_data.extract_crops(np.full((300, 300, 3), 7, np.uint8))
    assert crop == []
