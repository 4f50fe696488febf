"""Bad inputs refused by ``mclir_basicsr.train`` in a subprocess: the failure is clean (non-zero exit, no traceback)
and an existing experiment folder is neither deleted nor renamed. The other rows of the bad-input table, in process:
unit/checks/preflight/test_bad_input.py."""
import os
import shutil

import mclir_basicsr  # noqa: F401  (before basicsr)

import pytest
import torch
import yaml

from tests.helpers import run_entry_point, write_options


# ---------------------------------------------------------------------------------------------------------------
# end to end: a clean failure before anything is written, and nothing already written is touched
# ---------------------------------------------------------------------------------------------------------------
def _existing_experiment(root, name):
    exp = root / 'experiments' / name
    for sub in ('models', 'training_states'):
        os.makedirs(exp / sub)
    (exp / 'models' / 'net_g_5.pth').write_bytes(b'weights of an earlier run')
    (exp / 'train_earlier.log').write_text('earlier log')
    os.makedirs(root / 'tb_logger' / name)
    (root / 'tb_logger' / name / 'events.out.tfevents.1').write_text('earlier events')
    return _experiment_tree(root)


def _experiment_tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob('*') if 'experiments' in p.parts or 'tb_logger'
                  in p.parts)


def _train_fails_cleanly(root, data_root, extra, *parts):
    """Train with ``extra`` options beside an earlier experiment of the same name: a clean option error naming
    ``parts``, and the earlier experiment left exactly as it was. Returns the option file."""
    opt_file = write_options(root / 'train.yml', data_root, extra=extra)
    before = _existing_experiment(root, 'pipe')
    res = run_entry_point('mclir_basicsr.train', ['-opt', str(opt_file)], cwd=root)
    _assert_clean_failure(res, root, before, *parts)
    return opt_file


def _assert_clean_failure(res, root, before, *parts):
    assert res.returncode != 0, res.stdout[-2000:]
    assert 'mclir-train: option error: ' in res.stderr, res.stderr[-3000:]
    for part in parts:
        assert str(part) in res.stderr, (part, res.stderr[-3000:])
    assert 'Traceback' not in res.stderr
    assert _experiment_tree(root) == before  # nothing deleted, renamed (*_archived_*) or added
    assert (root / 'experiments' / 'pipe' / 'models' / 'net_g_5.pth').read_bytes() == b'weights of an earlier run'


@pytest.mark.e2e
def test_e2e_lmdb_without_meta_info_keeps_existing_experiment(tmp_path, tiny_data):
    lq_db = tmp_path / 'data' / 'train_lq.lmdb'
    shutil.copytree(tiny_data / 'train_lq.lmdb', lq_db)
    os.remove(lq_db / 'meta_info.txt')
    _train_fails_cleanly(tmp_path, tiny_data, {'datasets.train.dataroot_lq': str(lq_db)},
                         'datasets.train.dataroot_lq: lmdb', str(lq_db), 'has no meta_info.txt')


@pytest.mark.e2e
def test_e2e_pretrain_from_another_architecture_keeps_existing_experiment(tmp_path, tiny_data):
    from basicsr.archs.rrdbnet_arch import RRDBNet
    ckpt = tmp_path / 'rrdb.pth'
    torch.save({'params': RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=4).state_dict()}, ckpt)
    _train_fails_cleanly(tmp_path, tiny_data, {'path.pretrain_network_g': str(ckpt)}, 'path.pretrain_network_g: ',
                         str(ckpt), 'does not fit network_g (type EDSR)')


@pytest.mark.e2e
def test_e2e_missing_vgg_weights_keeps_existing_experiment(tmp_path, tiny_data):
    missing = tmp_path / 'vgg11-8a719046.pth'
    opt_file = _train_fails_cleanly(tmp_path, tiny_data, {'train.spn_opt.vgg_weights': str(missing)},
                                    'train.spn_opt.vgg_weights: ', str(missing), 'does not exist')
    with open(opt_file) as f:
        assert yaml.safe_load(f)['train']['spn_opt']['vgg_weights'] == str(missing)
