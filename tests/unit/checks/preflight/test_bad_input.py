"""Bad inputs are refused before training starts, with a message naming the key and file
(mclir_basicsr.checks.preflight).

One test per row of the "Bad input" table, each calling ``check_inputs`` on an option dict. The rows run through
``mclir_basicsr.train`` in a subprocess (a clean failure that keeps an existing experiment folder):
e2e/test_bad_input.py.
"""
import copy
import os
import os.path as osp

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import pytest
import torch

from mclir_basicsr.checks import preflight
from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.checks.preflight import check_inputs
from tests.helpers import TINY_EDSR
from tests.helpers import image_pairs as _pairs, pair_lmdbs as _lmdbs, paired_dataset as _ds, random_image as _img


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


def _write(folder, name, shape, seed=0):
    os.makedirs(folder, exist_ok=True)
    assert cv2.imwrite(osp.join(str(folder), name), _img(shape, seed))


def _opt(tmp_path, datasets=None, scale=2, network=None, **path):
    opt = {'name': 'bad', 'scale': scale, 'is_train': True, 'auto_resume': False, 'datasets': datasets or {},
           'network_g': copy.deepcopy(network or TINY_EDSR), 'train': {},
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                    'training_states': str(tmp_path / 'experiments' / 'bad' / 'training_states')}}
    opt['path'].update(path)
    return opt


def _fails(opt, *parts):
    """check_inputs raises OptionError whose message contains every one of ``parts``; returns the message."""
    with pytest.raises(OptionError) as err:
        check_inputs(opt)
    msg = str(err.value)
    for part in parts:
        assert str(part) in msg, f'{part!r} not in message:\n{msg}'
    return msg


def _edsr_state(**kw):
    from basicsr.archs.edsr_arch import EDSR
    args = dict(TINY_EDSR)
    args.pop('type')
    args.update(kw)
    return EDSR(**args).state_dict()


# ---------------------------------------------------------------------------------------------------------------
# good inputs pass (so the checks below fail for the reason they name)
# ---------------------------------------------------------------------------------------------------------------
def test_good_inputs_pass(tmp_path, tiny_data, recwarn):
    gt, lq = _pairs(tmp_path / 'disk', lq_tmpl='{}x2')
    gt_db, lq_db = _lmdbs(tmp_path / 'db')
    ckpt = tmp_path / 'net_g_5.pth'
    torch.save({'params': _edsr_state()}, ckpt)
    opt = _opt(tmp_path, {'train': _ds(gt, lq, filename_tmpl='{}x2'), 'val': _ds(gt_db, lq_db, 'lmdb', 'val'),
                          'val_2': _ds(str(tiny_data / 'train_gt.lmdb'), str(tiny_data / 'train_lq.lmdb'), 'lmdb',
                                       'val')},
               pretrain_network_g=str(ckpt))
    check_inputs(opt)
    assert not [w for w in recwarn if 'grayscale' in str(w.message)]


# ---------------------------------------------------------------------------------------------------------------
# dataset options
# ---------------------------------------------------------------------------------------------------------------
def test_missing_dataroot_key(tmp_path):
    gt, lq = _pairs(tmp_path)
    ds = _ds(gt, lq)
    del ds['dataroot_lq']
    _fails(_opt(tmp_path, {'train': ds}), 'datasets.train.dataroot_lq is missing')


def test_dataroot_pointing_nowhere(tmp_path):
    gt, lq = _pairs(tmp_path)
    missing = str(tmp_path / 'no' / 'DIV2K_HR.lmdb')
    _fails(_opt(tmp_path, {'val': _ds(gt, missing, phase='val')}), 'datasets.val.dataroot_lq: ', missing,
           'does not exist')


def test_misspelt_dataset_type(tmp_path):
    gt, lq = _pairs(tmp_path)
    _fails(_opt(tmp_path, {'train': _ds(gt, lq, type='PairedImageDatset')}),
           "datasets.train.type 'PairedImageDatset' is not a registered dataset. Did you mean PairedImageDataset?")


@pytest.mark.parametrize('scale, expected', [(None, 'scale is missing'), (2.0, 'scale must be an integer >= 1'),
                                             (0, 'scale must be an integer >= 1')])
def test_bad_scale(tmp_path, scale, expected):
    gt, lq = _pairs(tmp_path)
    opt = _opt(tmp_path, {'train': _ds(gt, lq)}, scale=scale)
    if scale is None:
        del opt['scale']
    _fails(opt, expected)


# ---------------------------------------------------------------------------------------------------------------
# lmdb
# ---------------------------------------------------------------------------------------------------------------
def test_lmdb_without_meta_info(tmp_path):
    gt_db, lq_db = _lmdbs(tmp_path)
    os.remove(osp.join(lq_db, 'meta_info.txt'))
    _fails(_opt(tmp_path, {'train': _ds(gt_db, lq_db, 'lmdb')}), 'datasets.train.dataroot_lq: lmdb', lq_db,
           'has no meta_info.txt', 'mclir-make-lmdb')


def test_lmdb_meta_info_key_missing_from_lmdb(tmp_path):
    gt_db, lq_db = _lmdbs(tmp_path)
    for db in (gt_db, lq_db):  # both list img9, which neither lmdb holds
        with open(osp.join(db, 'meta_info.txt'), 'a') as f:
            f.write('img9.png (16,16,3) 1\n')
    _fails(_opt(tmp_path, {'train': _ds(gt_db, lq_db, 'lmdb')}), 'datasets.train.dataroot_gt: 1 key(s) listed in',
           osp.join(gt_db, 'meta_info.txt'), 'not in the lmdb: [img9]', 'mclir-make-lmdb')


def test_lmdb_meta_info_line_basicsr_cannot_parse(tmp_path):
    gt_db, lq_db = _lmdbs(tmp_path)
    with open(osp.join(gt_db, 'meta_info.txt'), 'a') as f:
        f.write('\n')  # a blank line: BasicSR would take '\n' as a key
    _fails(_opt(tmp_path, {'train': _ds(gt_db, lq_db, 'lmdb')}), 'datasets.train.dataroot_gt: line 4 of',
           'meta_info.txt')


def test_lmdb_gt_and_lq_keys_differ(tmp_path):
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    gt_dir, lq_dir = _pairs(tmp_path)
    os.rename(osp.join(lq_dir, 'img2.png'), osp.join(lq_dir, 'other.png'))
    gt_db, lq_db = str(tmp_path / 'gt.lmdb'), str(tmp_path / 'lq.lmdb')
    make_lmdb_from_imgs(gt_dir, gt_db, ['img0.png', 'img1.png', 'img2.png'], ['img0', 'img1', 'img2'],
                        map_size=1 << 24)
    make_lmdb_from_imgs(lq_dir, lq_db, ['img0.png', 'img1.png', 'other.png'], ['img0', 'img1', 'other'],
                        map_size=1 << 24)
    _fails(_opt(tmp_path, {'train': _ds(gt_db, lq_db, 'lmdb')}), 'datasets.train: the GT lmdb', 'different keys',
           '1 only in GT [img2], 1 only in LQ [other]')


def test_folder_given_as_lmdb(tmp_path):
    gt, lq = _pairs(tmp_path / 'x.lmdb')  # a folder of images named like an lmdb
    _fails(_opt(tmp_path, {'train': _ds(gt, lq, 'lmdb')}), 'datasets.train.dataroot_gt: ', 'must end with ".lmdb"')
    _fails(_opt(tmp_path, {'train': _ds(str(tmp_path / 'x.lmdb'), str(tmp_path / 'x.lmdb'), 'lmdb')}),
           'is not an lmdb (no data.mdb inside)')


def test_lmdb_check_is_cheap(tmp_path, monkeypatch):
    """Keys come from meta_info.txt and a read-only transaction; only the first N_DECODE pairs are decoded."""
    gt_db, lq_db = _lmdbs(tmp_path, n=8)
    calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, 'imdecode', lambda *a: calls.append(1) or real(*a))
    check_inputs(_opt(tmp_path, {'train': _ds(gt_db, lq_db, 'lmdb')}))
    assert len(calls) == 2 * preflight.N_DECODE


# ---------------------------------------------------------------------------------------------------------------
# image folders
# ---------------------------------------------------------------------------------------------------------------
def test_unpaired_names(tmp_path):
    gt, lq = _pairs(tmp_path, lq_tmpl='{}x2')
    # filename_tmpl forgotten: no LQ name matches
    _fails(_opt(tmp_path, {'train': _ds(gt, lq)}), 'datasets.train: GT folder', 'do not pair up with filename_tmpl',
           "3 GT image(s) without LQ [img0.png, img1.png, img2.png]", '3 LQ image(s) without GT [img0x2.png',
           'datasets.train.filename_tmpl')
    # with the template, one LQ image missing
    os.remove(osp.join(lq, 'img1x2.png'))
    _fails(_opt(tmp_path, {'train': _ds(gt, lq, filename_tmpl='{}x2')}), '1 GT image(s) without LQ [img1.png]',
           '0 LQ image(s) without GT []')


def test_non_image_file_in_folder(tmp_path):
    gt, lq = _pairs(tmp_path)
    open(osp.join(lq, 'Thumbs.db'), 'w').write('x')
    _fails(_opt(tmp_path, {'train': _ds(gt, lq)}), 'datasets.train.dataroot_lq: ', 'not images: [Thumbs.db]',
           'move them out')


def test_corrupt_image(tmp_path):
    gt, lq = _pairs(tmp_path)
    open(osp.join(gt, 'img0.png'), 'wb').write(b'\x89PNG broken')
    _fails(_opt(tmp_path, {'train': _ds(gt, lq)}), 'datasets.train.dataroot_gt: ', 'img0.png', 'is not an image')


def test_meta_info_file_names_missing_images(tmp_path):
    gt, lq = _pairs(tmp_path)
    meta = tmp_path / 'meta.txt'
    meta.write_text('img0.png (16,16,3)\nimg7.png (16,16,3)\n')
    _fails(_opt(tmp_path, {'train': _ds(gt, lq, meta_info_file=str(meta))}), 'datasets.train.meta_info_file: ',
           '1 missing in', '[img7.png]')


# ---------------------------------------------------------------------------------------------------------------
# empty datasets
# ---------------------------------------------------------------------------------------------------------------
def test_empty_dataset(tmp_path):
    os.makedirs(tmp_path / 'gt')
    os.makedirs(tmp_path / 'lq')
    _fails(_opt(tmp_path, {'train': _ds(str(tmp_path / 'gt'), str(tmp_path / 'lq'))}),
           'datasets.train: empty dataset', 'contain no images')
    gt_db, lq_db = _lmdbs(tmp_path / 'db')
    for db in (gt_db, lq_db):
        open(osp.join(db, 'meta_info.txt'), 'w').close()
    _fails(_opt(tmp_path, {'train': _ds(gt_db, lq_db, 'lmdb')}), 'datasets.train.dataroot_gt: lmdb',
           'is an empty dataset')


# ---------------------------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
def test_gt_lq_size_not_matching_scale(tmp_path, backend):
    if backend == 'disk':
        gt, lq = _pairs(tmp_path, gt=(16, 16, 3), lq=(6, 8, 3))
    else:
        gt, lq = _lmdbs(tmp_path, gt=(16, 16, 3), lq=(6, 8, 3))
    _fails(_opt(tmp_path, {'train': _ds(gt, lq, backend)}),
           'datasets.train.dataroot_lq: GT/LQ sizes do not match scale 2', 'for 3 pair(s)', 'is 16x16 (HxW)',
           'is 6x8, so GT should be 12x16', 'Check the top-level scale')


def test_scale_mismatch_found_beyond_the_decoded_pairs(tmp_path):
    """Pair 5 of 6 is wrong: found from the lmdb's meta_info.txt without decoding it."""
    gt_dir, lq_dir = _pairs(tmp_path, n=6)
    _write(lq_dir, 'img5.png', (7, 8, 3))
    folders_to_lmdb(gt_dir, lq_dir, str(tmp_path / 'gt.lmdb'), str(tmp_path / 'lq.lmdb'), quiet=True)
    _fails(_opt(tmp_path, {'train': _ds(str(tmp_path / 'gt.lmdb'), str(tmp_path / 'lq.lmdb'), 'lmdb')}),
           'for 1 pair(s) [img5]')


def test_val_gt_smaller_than_lq_times_scale(tmp_path):
    # BasicSR crops a larger val GT to LQ x scale (mod-crop remainder): 17x17 GT / 8x8 LQ at x2 is fine ...
    gt, lq = _pairs(tmp_path / 'ok', gt=(17, 17, 3), lq=(8, 8, 3))
    check_inputs(_opt(tmp_path, {'val': _ds(gt, lq, phase='val')}))
    # ... but a GT smaller than LQ x scale would break the metrics
    gt, lq = _pairs(tmp_path / 'bad', gt=(15, 16, 3), lq=(8, 8, 3))
    _fails(_opt(tmp_path, {'val': _ds(gt, lq, phase='val')}),
           'datasets.val.dataroot_lq: GT/LQ sizes do not match scale 2', 'GT // scale = LQ')


def test_lq_smaller_than_training_patch(tmp_path):
    gt, lq = _pairs(tmp_path)
    _fails(_opt(tmp_path, {'train': _ds(gt, lq, gt_size=32)}), 'datasets.train.gt_size: 3 LQ image(s) are smaller '
           'than the LQ training patch 16x16', 'is 8x8')


# ---------------------------------------------------------------------------------------------------------------
# grayscale and colour
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
def test_grayscale_mixed_with_rgb_in_a_pair(tmp_path, backend):
    gt_dir, lq_dir = _pairs(tmp_path)
    _write(gt_dir, 'img1.png', (16, 16))  # GT grayscale, LQ colour
    gt, lq = gt_dir, lq_dir
    if backend == 'lmdb':
        gt, lq = str(tmp_path / 'gt.lmdb'), str(tmp_path / 'lq.lmdb')
        folders_to_lmdb(gt_dir, lq_dir, gt, lq, quiet=True)
    msg = _fails(_opt(tmp_path, {'train': _ds(gt, lq, backend)}),
                 'datasets.train: grayscale mixed with colour in 1 pair(s)', 'is grayscale (1 channel(s))',
                 'is colour (3 channel(s))', 'Convert both images')
    assert 'img1' in msg
    # training on the Y channel makes the pair consistent again
    check_inputs(_opt(tmp_path, {'train': _ds(gt, lq, backend, color='y')}))


def test_grayscale_pair_in_colour_dataset_warns(tmp_path):
    gt, lq = _pairs(tmp_path)
    _write(gt, 'img2.png', (16, 16))
    _write(lq, 'img2.png', (8, 8))
    with pytest.warns(UserWarning, match=r'datasets.train: 1 grayscale pair\(s\) in a colour dataset \[img2.png\]'):
        check_inputs(_opt(tmp_path, {'train': _ds(gt, lq)}))


# ---------------------------------------------------------------------------------------------------------------
# pretrained network
# ---------------------------------------------------------------------------------------------------------------
def test_pretrain_from_another_architecture(tmp_path):
    from basicsr.archs.rrdbnet_arch import RRDBNet
    other = tmp_path / 'rrdb.pth'
    torch.save({'params': RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=4).state_dict()}, other)
    _fails(_opt(tmp_path, pretrain_network_g=str(other)), 'path.pretrain_network_g: ', str(other),
           'does not fit network_g (type EDSR)', 'missing from the file', 'in the file that the network lacks',
           'path.strict_load_g: false')
    # strict_load_g: false loads the two tensors whose names and shapes happen to agree (conv_first, conv_last)
    with pytest.warns(UserWarning, match='path.pretrain_network_g: only 4 of the 12 tensors of network_g'):
        check_inputs(_opt(tmp_path, pretrain_network_g=str(other), strict_load_g=False))
    # ... and cannot help when nothing fits (here: saved from a wrapper, every key has a prefix)
    torch.save({'params': {f'generator.{k}': v for k, v in _edsr_state().items()}}, other)
    _fails(_opt(tmp_path, pretrain_network_g=str(other), strict_load_g=False), 'path.pretrain_network_g: no tensor of',
           'fits network_g (type EDSR), so nothing would be loaded')


def test_pretrain_from_another_configuration(tmp_path):
    wider = tmp_path / 'wide.pth'
    torch.save({'params': _edsr_state(num_feat=16)}, wider)
    _fails(_opt(tmp_path, pretrain_network_g=str(wider)), 'does not fit network_g (type EDSR)',
           '11 tensor(s) of another shape',
           'conv_after_body.bias: file [16] vs network [8]')
    deeper = tmp_path / 'deep.pth'
    torch.save({'params': _edsr_state(num_block=2)}, deeper)
    _fails(_opt(tmp_path, pretrain_network_g=str(deeper)), 'that the network lacks [body.1.conv1.bias')
    check_inputs(_opt(tmp_path, pretrain_network_g=str(deeper), strict_load_g=False))  # BasicSR loads the rest


def test_pretrain_param_key(tmp_path):
    ckpt = tmp_path / 'g.pth'
    torch.save({'params_g': _edsr_state()}, ckpt)
    _fails(_opt(tmp_path, pretrain_network_g=str(ckpt)), "has no 'params' entry (path.param_key_g)",
           'top-level keys are [params_g]')
    check_inputs(_opt(tmp_path, pretrain_network_g=str(ckpt), param_key_g='params_g'))
    bare = tmp_path / 'bare.pth'
    torch.save(_edsr_state(), bare)
    _fails(_opt(tmp_path, pretrain_network_g=str(bare), param_key_g='params_ema'), 'set path.param_key_g: ~')
    check_inputs(_opt(tmp_path, pretrain_network_g=str(bare), param_key_g=None))
    # module. prefixes (DataParallel) are stripped as BasicSR does
    dp = tmp_path / 'dp.pth'
    torch.save({'params': {f'module.{k}': v for k, v in _edsr_state().items()}}, dp)
    check_inputs(_opt(tmp_path, pretrain_network_g=str(dp)))


def test_pretrain_missing_or_unreadable(tmp_path):
    _fails(_opt(tmp_path, pretrain_network_g=str(tmp_path / 'nope.pth')), 'path.pretrain_network_g: ',
           'nope.pth does not exist', 'set path.pretrain_network_g: ~ to train from scratch')
    torn = tmp_path / 'torn.pth'
    torch.save({'params': _edsr_state()}, torn)
    torn.write_bytes(torn.read_bytes()[:300])
    _fails(_opt(tmp_path, pretrain_network_g=str(torn)), 'path.pretrain_network_g: cannot read', 'torn.pth',
           'weights_only=True')


def test_pretrain_not_checked_when_resuming(tmp_path):
    nowhere = str(tmp_path / 'nope.pth')
    state = tmp_path / '5.state'
    torch.save({'epoch': 0, 'iter': 5, 'optimizers': [], 'schedulers': []}, state)
    check_inputs(_opt(tmp_path, pretrain_network_g=nowhere, resume_state=str(state)))
    opt = _opt(tmp_path, pretrain_network_g=nowhere)
    opt['auto_resume'] = True
    with pytest.raises(OptionError, match='does not exist'):  # nothing to resume from: the pretrain file is used
        check_inputs(opt)
    os.makedirs(opt['path']['training_states'])
    open(osp.join(opt['path']['training_states'], '5.state'), 'wb').close()
    check_inputs(opt)


def test_resume_state_nowhere_or_unreadable(tmp_path):
    nowhere = tmp_path / 'missing' / '100.state'
    _fails(_opt(tmp_path, resume_state=str(nowhere)), f'path.resume_state points to {nowhere}, which does not exist',
           '--auto_resume')
    torn = tmp_path / '5.state'
    torch.save({'epoch': 0, 'iter': 5, 'optimizers': [], 'schedulers': []}, torn)
    models = tmp_path / 'models'
    _fails(_opt(tmp_path, resume_state=str(torn), models=str(models)), 'path.resume_state: ', 'is iteration 5, but',
           str(models / 'net_g_5.pth'), 'does not exist')
    os.makedirs(models)
    torch.save({'params': _edsr_state()}, models / 'net_g_5.pth')
    check_inputs(_opt(tmp_path, resume_state=str(torn), models=str(models)))
    torn.write_bytes(torn.read_bytes()[:100])
    _fails(_opt(tmp_path, resume_state=str(torn)), 'path.resume_state: cannot read', '5.state')
    net = tmp_path / 'net_g_5.pth'
    torch.save({'params': _edsr_state()}, net)
    _fails(_opt(tmp_path, resume_state=str(net)), 'path.resume_state: ', 'is not a BasicSR training state')


# ---------------------------------------------------------------------------------------------------------------
# VGG weights
# ---------------------------------------------------------------------------------------------------------------
def _spn_opt(tmp_path, **spn):
    opt = _opt(tmp_path)
    opt['train']['spn_opt'] = dict({'type': 'SPNLoss', 'vgg_type': 'vgg11', 'layer_weights': {'relu1_1': 1.0}},
                                   **spn)
    return opt


def test_vgg_weights_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    _fails(_spn_opt(tmp_path), 'train.spn_opt.vgg_weights: ImageNet weights for vgg11', 'vgg11-8a719046.pth',
           'experiments/pretrained_models')
    _fails(_spn_opt(tmp_path, vgg_weights=str(tmp_path / 'vgg.pth')), 'train.spn_opt.vgg_weights: ', 'vgg.pth does '
           'not exist')
    check_inputs(_spn_opt(tmp_path, vgg_weights='random'))
    opt = _opt(tmp_path)
    opt['train']['perceptual_opt'] = {'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1}}
    _fails(opt, "train.perceptual_opt: BasicSR's PerceptualLoss needs ImageNet weights for vgg19",
           'vgg19-dcbb9e9d.pth')


def test_vgg_weights_wrong_file(tmp_path):
    from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features
    path = tmp_path / 'vgg11.pth'
    torch.save({f'features.{k}': v for k, v in build_torchvision_vgg_features('vgg11').state_dict().items()}, path)
    check_inputs(_spn_opt(tmp_path, vgg_weights=str(path)))
    _fails(_spn_opt(tmp_path, vgg_weights=str(path), vgg_type='vgg13', layer_weights={'relu1_1': 1.0}),
           'train.spn_opt.vgg_weights: ', "does not match vgg_type 'vgg13'", 'vgg13-19584684.pth')
    _fails(_spn_opt(tmp_path, vgg_weights=str(tmp_path / 'vgg11.pth'), vgg_type='vgg11_bn'),
           "does not match vgg_type 'vgg11_bn'")


def test_a_dataset_class_own_checks_run_in_preflight(tmp_path):
    """A registered dataset with a classmethod check_options(ds_opt, key) is checked before anything is written."""
    from basicsr.utils.registry import DATASET_REGISTRY

    class OwnChecksTestDataset(torch.utils.data.Dataset):
        @classmethod
        def check_options(cls, ds_opt, key):
            if ds_opt.get('size') != 3:
                raise OptionError(f'{key}.size must be 3, got {ds_opt.get("size")!r}.')

    if 'OwnChecksTestDataset' not in DATASET_REGISTRY:
        DATASET_REGISTRY.register(OwnChecksTestDataset)
    opt = _opt(tmp_path, datasets={'train': {'name': 'x', 'type': 'OwnChecksTestDataset', 'size': 4}})
    _fails(opt, 'datasets.train.size must be 3, got 4.')
    opt['datasets']['train']['size'] = 3
    check_inputs(opt)
