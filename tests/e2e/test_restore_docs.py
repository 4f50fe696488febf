"""Every example of docs/restore.md runs: each ``mclir-restore`` command (through its ``main``) and the Python block,
in a folder holding what they name: ``my_photos/`` (an 8-bit JPEG, a 16-bit grayscale PNG, a PNG with alpha), the
demo's and DCPT's option files with their experiments' weights, and a stand-in checkpoint in each released format
(the format's layout and key names, random values, at the network size the command gives)."""
import argparse
import os
import os.path as osp
import re
import shlex
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml

from mclir_basicsr.inference.option_source import read_restorer_options
from mclir_basicsr.inference.restorer import build_network, parse_network_args
from tests.helpers import (ROOT, TEST_DATA, constyle_authors_state, dsrir_authors_state, ffa_reference_checkpoint,
                           run_entry_point)

pytestmark = pytest.mark.e2e

DOC = osp.join(ROOT, 'docs', 'restore.md')
DEMO = 'options/train/demo/train_MCLIR_EDSR_SRx2_demo.yml'
DCPT_TEST = 'options/all_in_one/test/test_NAFNet_5d.yml'


def _blocks(language):
    with open(DOC) as f:
        return re.findall(rf'```{language}\n(.*?)```', f.read(), flags=re.S)


COMMANDS = [line for block in _blocks('bash') for line in block.strip().splitlines() if line.startswith('mclir-')]


def _args(command):
    words = shlex.split(command)
    assert words[0] == 'mclir-restore', command
    return words[1:]


def _flag(args, name):
    return args[args.index(name) + 1] if name in args else None


class _LightningHyperParameters(argparse.Namespace):  # a class of the saving code, foreign to the reader
    pass


def _stand_in(name, net_opt):
    """A checkpoint named ``name`` in its release's format (docs/restore.md's table)."""
    if name == 'dsrir_best.pth':
        return {'epoch': 120, 'state_dict': dsrir_authors_state(), 'optimizer': {'state': {}, 'param_groups': []}}
    if name == 'ConStyleNAFNet_Deblur.pth':
        return constyle_authors_state()
    if name.endswith('.pk'):  # FFA-Net: their names under DataParallel's prefix, with their scores
        state = {f'module.{k}': v.float() for k, v in ffa_reference_checkpoint(gps=3, blocks=19).items()}
        return {'step': 5000, 'max_psnr': np.float64(36.4), 'max_ssim': np.float64(0.98), 'psnrs': [36.4],
                'ssims': [0.98], 'model': state}
    state = build_network(net_opt, name).state_dict()
    if name.endswith('.ckpt'):  # a Lightning checkpoint of PromptIR's module (self.net = PromptIR(...))
        return {'state_dict': {f'net.{k}': v for k, v in state.items()}, 'epoch': 119, 'global_step': 1,
                'pytorch-lightning_version': '2.0.0', 'hyper_parameters': _LightningHyperParameters(lr=2e-4),
                'optimizer_states': [{'state': {}, 'param_groups': [{'lr': np.float64(2e-4)}]}]}
    return {'params': state, 'params_ema': state}


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('restore_docs')
    photos = root / 'my_photos'
    photos.mkdir()
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), (5, 5), 1.5)
    cv2.imwrite(str(photos / 'street.jpg'), base)
    cv2.imwrite(str(photos / 'scan.png'), cv2.cvtColor(base, cv2.COLOR_BGR2GRAY)[:32, :36].astype(np.uint16) * 257)
    cv2.imwrite(str(photos / 'logo.png'), np.dstack([base[:24, :24], rng.integers(0, 256, (24, 24), np.uint8)]))
    # the demo's option file and its experiment (a log whose best validation has a checkpoint)
    os.makedirs(root / osp.dirname(DEMO))
    shutil.copy(osp.join(ROOT, DEMO), root / DEMO)
    demo = read_restorer_options(str(root / DEMO))
    models = root / 'experiments' / demo['name'] / 'models'
    models.mkdir(parents=True)
    state = build_network(demo['network_g'], DEMO).state_dict()
    for iteration in ('200', 'latest'):
        torch.save({'params': state, 'params_ema': state}, models / f'net_g_{iteration}.pth')
    (models.parent / f'train_{demo["name"]}_20261205_000000.log').write_text(
        'Validation val\n\t # psnr: 30.1000\tBest: 30.1000 @ 200 iter\n\t # ssim: 0.8000\tBest: 0.8000 @ 200 iter\n'
        'Validation val\n\t # psnr: 29.9000\tBest: 30.1000 @ 200 iter\n\t # ssim: 0.8100\tBest: 0.8100 @ 300 iter\n')
    # DCPT's own test file, and the fine-tuned weights it names
    os.makedirs(root / osp.dirname(DCPT_TEST))
    shutil.copy(osp.join(TEST_DATA, 'dcpt', 'hoatong2411', DCPT_TEST), root / DCPT_TEST)
    dcpt = read_restorer_options(str(root / DCPT_TEST))
    os.makedirs(root / osp.dirname(dcpt['path']['pretrain_network_g']), exist_ok=True)
    torch.save(_stand_in('dcpt.pth', dcpt['network_g']), root / dcpt['path']['pretrain_network_g'])
    # the checkpoints the commands name, each in its format
    for command in COMMANDS:
        args = _args(command)
        name = _flag(args, '--weights')
        if name and not (root / name).exists():
            net_opt = dict(parse_network_args(_flag(args, '--network-args')), type=_flag(args, '--network'))
            torch.save(_stand_in(name, net_opt), root / name)
    return root


def test_the_page_has_an_example_per_format():
    weights = {_flag(_args(c), '--weights') for c in COMMANDS}
    assert {'net_g_latest.pth', 'NAFNet-SIDD-width32.pth', 'model.ckpt', 'dsrir_best.pth', 'ConStyleNAFNet_Deblur.pth',
            'its_train_ffa_3_19.pk'} <= weights
    assert sum('-opt' in _args(c) for c in COMMANDS) == 3 and len(_blocks('python')) == 1


@pytest.mark.parametrize('command', COMMANDS, ids=[f'{i}' for i in range(len(COMMANDS))])
def test_every_command_of_the_page_runs(command, workspace):
    args = _args(command)
    output = workspace / _flag(args, '-o')
    shutil.rmtree(output, ignore_errors=True)
    run = run_entry_point('mclir_basicsr.cli.restore', args + ['--quiet'], cwd=workspace)
    if _flag(args, '--device') == 'cuda' and not torch.cuda.is_available():
        assert run.returncode == 1 and 'no CUDA device is available here' in run.stderr
        assert not output.exists()
        return
    assert run.returncode == 0, run.stderr[-2000:]
    pattern = _flag(args, '-i')
    inputs = sorted(p for p in os.listdir(workspace / 'my_photos') if '*' not in pattern or p.endswith('.jpg'))
    suffix = _flag(args, '--suffix') or ''
    expected = sorted(f'{osp.splitext(p)[0]}{suffix}.png' for p in inputs)
    if '--dry-run' in args:
        assert not output.exists()
        listed = [line.split(' -> ')[1] for line in run.stdout.splitlines()]
        assert listed == [osp.join(_flag(args, '-o'), e) for e in expected]
        return
    assert sorted(os.listdir(output)) == expected
    scale = int(re.search(r'; x(\d+), ', run.stdout).group(1))
    for name in inputs:
        before = cv2.imread(str(workspace / 'my_photos' / name), cv2.IMREAD_UNCHANGED)
        after = cv2.imread(str(output / f'{osp.splitext(name)[0]}{suffix}.png'), cv2.IMREAD_UNCHANGED)
        assert after.dtype == before.dtype and after.ndim == before.ndim
        assert after.shape[:2] == (before.shape[0] * scale, before.shape[1] * scale)
        assert after.shape[2:] == before.shape[2:]  # gray stays gray, alpha stays


def test_the_python_example_runs(workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    exec(compile(_blocks('python')[0], DOC, 'exec'), {})
    assert capsys.readouterr().out.strip() == '3 written; 0 failed'
    assert sorted(os.listdir(workspace / 'restored_py')) == ['logo_x2.png', 'scan_x2.png', 'street_x2.png']


def test_which_best_reads_the_first_metric_of_the_log(workspace):
    run = run_entry_point('mclir_basicsr.cli.restore', ['-opt', DEMO, '--which', 'best', '-i', 'my_photos/street.jpg',
                                                        '-o', 'best_check', '--quiet'], cwd=workspace)
    assert run.returncode == 0, run.stderr
    assert 'net_g_200.pth (params,' in run.stdout  # psnr's best, not ssim's 300
    with open(workspace / DEMO) as f:
        assert yaml.safe_load(f)['name'] in run.stdout
