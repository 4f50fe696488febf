"""Bad input through the console entry points, as a user runs them (issue 23): every case in a subprocess, in a fresh
folder of its own, and what came of it.

    python -m benchmarks.bad_input_sweep [--out benchmarks/results/bad_input_sweep_cpu.json] [--keep DIR]
                                         [--only SUBSTRING] [--timeout 300]

Each case runs ``python -m <module> ...`` (the module of the console script: ``mclir-train`` =
``mclir_basicsr.train``, ``mclir-probe-degradation`` = ``mclir_basicsr.probe`` or ``mclir_basicsr.cli.probe``,
``mclir-fetch-vgg`` = ``mclir_basicsr.fetch_vgg`` or ``mclir_basicsr.cli.fetch_vgg``, ``mclir-make-lmdb`` =
``mclir_basicsr.data.lmdb_tools``) with the case folder as the working directory and the package of the checkout
that holds this script (``PYTHONPATH``). A training case starts from a
shipped demo file (``num_gpu: 0``, ``total_iter: 2``, ``val_freq: 2``, ``print_freq: 1``,
``save_checkpoint_freq: 2``, no tensorboard, the first validation set only) and changes one thing. The demo data is
built once (``build_demo_data``, all tasks) and linked into every case folder as ``datasets``; random VGG16 weights
under torchvision's name are linked in where a case needs ImageNet weights.

Recorded per case: the command, the exit code, whether stdout/stderr hold a ``Traceback``, what the run wrote (a
listing of the case folder and of the shared demo data before and after; files the case prepared are not counted
unless changed), the first line of the message, and the outcome:

- ``refused``: non-zero exit, no traceback, nothing written;
- ``traceback``: a traceback on stdout or stderr;
- ``written_before_error``: non-zero exit after something was written;
- ``silent``: exit 0 where a refusal was expected;
- ``accepted_as_intended``: exit 0 where the input is valid or meant to be accepted (for the two shipped paths, also
  a log ``experiments/<name>/train_<name>_*.log`` with a loss line and a ``# psnr`` line).

Prints a Markdown table and the counts; writes the whole record as JSON.
"""
import argparse
import copy
import glob
import importlib
import json
import os
import os.path as osp
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch
import yaml

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
from mclir_basicsr.data.demo_data import ALL_TASKS, build_demo_data  # noqa: E402
from mclir_basicsr.data.lmdb_tools import folders_to_lmdb  # noqa: E402

from benchmarks.common import BENCH_DIR, ROOT


def first_module(*names):
    """The first of ``names`` that exists in this checkout (the package's layout before and after its split into
    ``cli``, ``losses`` and ``methods``)."""
    for name in names:  # looked up as files: an installed editable copy elsewhere must not answer
        base = osp.join(ROOT, *name.split('.'))
        if osp.isfile(base + '.py') or osp.isfile(osp.join(base, '__init__.py')):
            return name
    raise ImportError(f'none of {names} in {ROOT}')


build_probe_network = importlib.import_module(first_module(
    'mclir_basicsr.methods.dcpt.probe_features', 'mclir_basicsr.probe_features')).build_probe_network
build_torchvision_vgg_features = importlib.import_module(first_module(
    'mclir_basicsr.losses.vgg_weights', 'mclir_basicsr.vgg_weights')).build_torchvision_vgg_features

TRAIN = 'options/train'
CONSTYLE = 'all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml'
DSRIR = 'all_in_one/demo/train_DSRIR_AIO3_demo.yml'
DCPT = 'dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml'
MCLIR = 'demo/train_MCLIR_EDSR_SRx2_demo.yml'
MCLIR_DN = 'demo/train_MCLIR_EDSR_DNs25_demo.yml'
AUTHORS_FFA = osp.join(ROOT, 'tests', 'data', 'authors_FFANet_RESIDE_IN_fromScratch.yml')
VGG16_FILE = 'vgg16-397923af.pth'
# console script -> the module ``python -m`` runs (the first that exists in this checkout)
ENTRY = {'mclir-train': first_module('mclir_basicsr.train'),
         'mclir-probe-degradation': first_module('mclir_basicsr.cli.probe', 'mclir_basicsr.probe'),
         'mclir-fetch-vgg': first_module('mclir_basicsr.cli.fetch_vgg', 'mclir_basicsr.fetch_vgg'),
         'mclir-make-lmdb': first_module('mclir_basicsr.data.lmdb_tools')}
OUTCOMES = ('refused', 'accepted_as_intended', 'traceback', 'written_before_error', 'silent')
LOSS_LINE = re.compile(r'iter:\s*\d+.*\bl_\w+: [-+\d.e]+')
PSNR_LINE = re.compile(r'# psnr: [-\d.]+')
AUTHORS_PERCEPTUAL = {'type': 'PerceptualLoss', 'layer_weights': {'relu1_2': 0.2, 'relu2_2': 0.3, 'relu3_3': 0.5},
                      'vgg_type': 'vgg16', 'use_input_norm': True, 'range_norm': False, 'perceptual_weight': 0.001,
                      'style_weight': 0, 'criterion': 'l1'}
TINY_EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 2,
             'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}


# ---------------------------------------------------------------------------------------------------------------
# option files
# ---------------------------------------------------------------------------------------------------------------
def demo(rel):
    with open(osp.join(ROOT, TRAIN, rel)) as f:
        return yaml.safe_load(f)


def shorten(opt, name=None):
    """Two iterations on the CPU, a log line each, a checkpoint and a validation after the second, the first
    validation set only, no tensorboard."""
    opt = copy.deepcopy(opt)
    opt['num_gpu'] = 0
    if name:
        opt['name'] = name
    first_val = next((k for k in opt['datasets'] if k.startswith('val')), None)
    opt['datasets'] = {k: v for k, v in opt['datasets'].items() if k in ('train', first_val)}
    opt['train']['total_iter'] = 2
    if 'val' in opt:
        opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


def set_key(opt, dotted, value):
    *parents, leaf = dotted.split('.')
    target = opt
    for p in parents:
        target = target[p]
    target[leaf] = value
    return opt


def write_yaml(path, opt, replace=None):
    """``opt`` as YAML at ``path``; ``replace``: (placeholder, text) pairs substituted in the written text."""
    text = yaml.safe_dump(opt, sort_keys=False)
    for old, new in (replace or ()):
        assert old in text, old
        text = text.replace(old, new)
    with open(path, 'w') as f:
        f.write(text)
    return osp.basename(path)


def authors_ffanet(model_type):
    """The authors' FFA-Net file on the demo denoising lmdbs (scale 1), as tests/test_every_model_class.py runs it."""
    with open(AUTHORS_FFA) as f:
        opt = yaml.safe_load(f)
    opt['model_type'] = model_type
    for phase in ('train', 'val'):
        opt['datasets'][phase].update(dataroot_gt=f'datasets/demo/dn_s25/{phase}_gt.lmdb',
                                      dataroot_lq=f'datasets/demo/dn_s25/{phase}_lq.lmdb', io_backend={'type': 'lmdb'})
    opt['datasets']['train'].update(gt_size=32, num_worker_per_gpu=0)
    opt['network_g']['blocks'] = 1
    opt['train']['neg_iter'] = [1, 1, 2, 2]
    return opt


# ---------------------------------------------------------------------------------------------------------------
# images and lmdbs (as tests/test_preflight_data.py makes them)
# ---------------------------------------------------------------------------------------------------------------
def write_img(path, shape, seed=0):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


def pairs(root, n=6, gt=(32, 32, 3), lq=(16, 16, 3), ext='.png'):
    gt_dir, lq_dir = osp.join(root, 'data', 'gt'), osp.join(root, 'data', 'lq')
    for i in range(n):
        write_img(osp.join(gt_dir, f'img{i}{ext}'), gt, i)
        write_img(osp.join(lq_dir, f'img{i}{ext}'), lq, 100 + i)
    return gt_dir, lq_dir


def lmdbs(root, **kw):
    gt_dir, lq_dir = pairs(root, **kw)
    gt_db, lq_db = osp.join(root, 'data', 'gt.lmdb'), osp.join(root, 'data', 'lq.lmdb')
    folders_to_lmdb(gt_dir, lq_dir, gt_db, lq_db, quiet=True)
    return gt_db, lq_db


def truncate(path, keep=0.5):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def dead_end(root):
    """A path under a regular file: no folder can be created there."""
    with open(osp.join(root, 'plain_file'), 'w') as f:
        f.write('x\n')
    return 'plain_file/sub'


def paired_train_file(root, backend='disk', scale=2, gt_size=16, **paths):
    """The MCLIR EDSR demo (x2, or the x1 denoising one) made tiny, training on ``data/`` of the case folder."""
    opt = shorten(demo(MCLIR if scale == 2 else MCLIR_DN))
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['train']['spn_opt'].update(vgg_type='vgg11', layer_weights={'relu1_1': 1.0})
    opt['datasets']['train'].update(gt_size=gt_size, batch_size_per_gpu=2, dataset_enlarge_ratio=4,
                                    io_backend={'type': backend}, **paths)
    return write_yaml(osp.join(root, 'case.yml'), opt)


# ---------------------------------------------------------------------------------------------------------------
# the cases: each prepares its folder and returns the entry point's arguments
# ---------------------------------------------------------------------------------------------------------------
CASES = []


def case(cid, group, prog, change, expect='refused', words=(), stderr_has=None, log_check=False):
    def register(prepare):
        CASES.append(dict(id=cid, group=group, prog=prog, change=change, expect=expect, words=list(words),
                          stderr_has=stderr_has, log_check=log_check, prepare=prepare))
        return prepare
    return register


def option_case(cid, rel, key, value, words, expect='refused', stderr_has=None):
    def prepare(root, shared):
        opt = set_key(shorten(demo(rel)), key, value)
        return ['-opt', write_yaml(osp.join(root, 'case.yml'), opt)]
    case(cid, 'options', 'mclir-train', f'{rel}: {key} = {value!r}', expect, words, stderr_has)(prepare)


option_case('constyle_queue_size_0', CONSTYLE, 'network_g.constyle.queue_size', 0, ['queue_size >= 1'])
option_case('constyle_temperature_0', CONSTYLE, 'network_g.constyle.temperature', 0, ['temperature > 0'])
option_case('constyle_momentum_1.5', CONSTYLE, 'network_g.constyle.momentum', 1.5, ['0 <= momentum < 1'])
option_case('constyle_enqueue_keys', CONSTYLE, 'network_g.constyle.enqueue', 'keys', ['enqueue must be one of'])
option_case('constyle_dim_-16', CONSTYLE, 'network_g.dim', -16, ['negative dimension'])
option_case('dsrir_widths_2', DSRIR, 'network_g.widths', [16, 16], ['widths needs 3 entries'])
option_case('dsrir_reduction_0', DSRIR, 'network_g.reduction', 0, ['reduction must be an integer >= 1'])
option_case('dsrir_stage_weights_2', DSRIR, 'train.pixel_opt.stage_weights', [1.0, 0.5], ['has 2 entries'])
option_case('dcpt_gamma_-1', DCPT, 'train.classify_opt.gamma', -1, ['gamma must be a number >= 0'])
option_case('dcpt_num_res_blocks_two', DCPT, 'network_dc.num_res_blocks', 'two', ['num_res_blocks must be'])
option_case('dcpt_num_res_blocks_-1', DCPT, 'network_dc.num_res_blocks', -1, ['num_res_blocks must be'])
option_case('dcpt_num_classes_text_3', DCPT, 'network_dc.num_classes', '3', ['num_classes must be an integer'])
option_case('network_type_NAFNetLocal', DCPT, 'network_g.type', 'NAFNetLocal', ['is not a registered network'])
option_case('pixel_opt_type_PSNRLoss', DCPT, 'train.pixel_opt.type', 'PSNRLoss', ['is not a registered loss'])


@case('lr_text_1e-3', 'options', 'mclir-train', f'{DCPT}: train.optim_g.lr written as `lr: 1e-3` (YAML: str)',
      expect='accepted')
def _lr_text(root, shared):
    opt = set_key(shorten(demo(DCPT)), 'train.optim_g.lr', 'LR_AS_WRITTEN')
    name = write_yaml(osp.join(root, 'case.yml'), opt, replace=[('LR_AS_WRITTEN', '1e-3')])
    with open(osp.join(root, name)) as f:
        assert yaml.safe_load(f)['train']['optim_g']['lr'] == '1e-3'  # the string, as YAML 1.1 reads it
    return ['-opt', name]


option_case('spn_loss_weight_autoo', MCLIR, 'train.spn_opt.loss_weight', 'autoo', ['must be a number or auto'])
option_case('spn_loss_weight_AUTO', MCLIR, 'train.spn_opt.loss_weight', 'AUTO', ['must be a number or auto'])
option_case('spn_target_ratio_inf', MCLIR, 'train.spn_opt.target_ratio', float('inf'), ['must be a finite number'])
option_case('progressive_milestone_at_total_iter', DSRIR, 'train.progressive',
            {'milestones': [2], 'patch_sizes': [32, 64], 'batch_sizes': [8, 8]}, [], expect='accepted',
            stderr_has='train.progressive.milestones: [2] are at or after train.total_iter (2)')


@case('authors_adaptive_neg_t_high', 'options', 'mclir-train',
      'authors FFANet file, model_type ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP: train.neg_t = \'high\'',
      words=["train.neg_t must be a number, got 'high'"])
def _neg_t(root, shared):
    plant_vgg16(root, shared)
    opt = shorten(authors_ffanet('ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP'))
    opt['train']['neg_t'] = 'high'
    return ['-opt', write_yaml(osp.join(root, 'case.yml'), opt)]


# ---- data
@case('truncated_jpeg', 'data', 'mclir-train', 'PairedImageDataset folders: LQ img1.jpg cut to half',
      words=['img1.jpg is truncated'])
def _truncated_jpeg(root, shared):
    gt, lq = pairs(root, ext='.jpg')
    truncate(osp.join(lq, 'img1.jpg'))
    return ['-opt', paired_train_file(root, dataroot_gt='data/gt', dataroot_lq='data/lq')]


@case('zero_byte_png', 'data', 'mclir-train', 'PairedImageDataset folders: LQ img3.png 0 bytes',
      words=['img3.png', 'is empty (0 bytes)'])
def _zero_png(root, shared):
    gt, lq = pairs(root)
    open(osp.join(lq, 'img3.png'), 'wb').close()
    return ['-opt', paired_train_file(root, dataroot_gt='data/gt', dataroot_lq='data/lq')]


@case('gt_not_scale_x_lq', 'data', 'mclir-train', 'scale 2: LQ img4.png 16x15 for GT 32x32',
      words=['GT/LQ sizes do not match scale 2', 'img4.png'])
def _gt_not_scale(root, shared):
    gt, lq = pairs(root)
    write_img(osp.join(lq, 'img4.png'), (16, 15, 3))
    return ['-opt', paired_train_file(root, dataroot_gt='data/gt', dataroot_lq='data/lq')]


@case('scale1_pair_different_sizes', 'data', 'mclir-train', 'scale 1: GT img2.png 32x34, LQ 32x32',
      words=['GT/LQ sizes do not match scale 1', 'img2.png'])
def _scale1(root, shared):
    gt, lq = pairs(root, lq=(32, 32, 3))
    write_img(osp.join(gt, 'img2.png'), (32, 34, 3))
    return ['-opt', paired_train_file(root, scale=1, dataroot_gt='data/gt', dataroot_lq='data/lq')]


@case('image_smaller_than_gt_size', 'data', 'mclir-train', 'gt_size 24 (LQ patch 12): img5 LQ 10x16',
      words=['datasets.train.gt_size', 'img5.png'])
def _small(root, shared):
    gt, lq = pairs(root)
    write_img(osp.join(gt, 'img5.png'), (20, 32, 3))
    write_img(osp.join(lq, 'img5.png'), (10, 16, 3))
    return ['-opt', paired_train_file(root, gt_size=24, dataroot_gt='data/gt', dataroot_lq='data/lq')]


@case('lmdb_meta_info_duplicate_line', 'data', 'mclir-train', 'LQ lmdb meta_info.txt: line 3 repeated',
      words=['more than once'])
def _dup_meta(root, shared):
    gt_db, lq_db = lmdbs(root)
    meta = osp.join(lq_db, 'meta_info.txt')
    with open(meta) as f:
        lines = f.read().splitlines()
    with open(meta, 'w') as f:
        f.writelines(line + '\n' for line in lines + [lines[2]])
    return ['-opt', paired_train_file(root, 'lmdb', dataroot_gt='data/gt.lmdb', dataroot_lq='data/lq.lmdb')]


@case('lmdb_meta_info_wrong_size', 'data', 'mclir-train',
      'lmdb meta_info.txt lists img4 at 40x32 (GT) / 20x16 (LQ), stored 32x32 / 16x16',
      words=['not the size its meta_info.txt lists'])
def _meta_size(root, shared):
    gt_db, lq_db = lmdbs(root)
    for db, (h, w) in ((gt_db, (40, 32)), (lq_db, (20, 16))):
        meta = osp.join(db, 'meta_info.txt')
        with open(meta) as f:
            lines = f.read().splitlines()
        lines = [re.sub(r'\(\d+,\d+,', f'({h},{w},', line) if line.startswith('img4.') else line for line in lines]
        with open(meta, 'w') as f:
            f.writelines(line + '\n' for line in lines)
    return ['-opt', paired_train_file(root, 'lmdb', dataroot_gt='data/gt.lmdb', dataroot_lq='data/lq.lmdb')]


# ---- command line
@case('missing_opt_file', 'command line', 'mclir-train', '-opt missing.yml (no such file)',
      words=['no such file'])
def _missing(root, shared):
    return ['-opt', 'missing.yml']


@case('empty_opt_file', 'command line', 'mclir-train', '-opt empty.yml (0 bytes)', words=['is empty'])
def _empty(root, shared):
    open(osp.join(root, 'empty.yml'), 'w').close()
    return ['-opt', 'empty.yml']


@case('yaml_syntax_error', 'command line', 'mclir-train', "-opt bad.yml: 'name: a\\n  model_type: [1'",
      words=['YAML syntax error at line 2'])
def _yaml_error(root, shared):
    with open(osp.join(root, 'bad.yml'), 'w') as f:
        f.write('name: a\n  model_type: [1\n')
    return ['-opt', 'bad.yml']


@case('force_yml_total_iter_abc', 'command line', 'mclir-train', '--force_yml train:total_iter=abc',
      words=['--force_yml train:total_iter=abc'])
def _force(root, shared):
    return ['-opt', write_yaml(osp.join(root, 'case.yml'), shorten(demo(MCLIR))), '--force_yml',
            'train:total_iter=abc']


def probe_file(root):
    return write_yaml(osp.join(root, 'probe.yml'), shorten(demo(DCPT)))


def nafnet_checkpoint(root):
    opt = demo(DCPT)
    path = osp.join(root, 'net_g.pth')
    torch.save({'params': build_probe_network({'network_g': opt['network_g'], 'manual_seed': 0}).state_dict()}, path)
    return path


@case('probe_checkpoint_truncated', 'command line', 'mclir-probe-degradation',
      '--checkpoint: a NAFNet .pth cut to half',
      words=['--checkpoint', 'cannot read it with torch.load'])
def _ckpt_truncated(root, shared):
    truncate(nafnet_checkpoint(root))
    return ['-opt', probe_file(root), '--checkpoint', 'net_g.pth']


@case('probe_checkpoint_text', 'command line', 'mclir-probe-degradation', '--checkpoint: a text file',
      words=['--checkpoint', 'cannot read it with torch.load'])
def _ckpt_text(root, shared):
    with open(osp.join(root, 'notes.pth'), 'w') as f:
        f.write('these are not weights\n')
    return ['-opt', probe_file(root), '--checkpoint', 'notes.pth']


@case('probe_checkpoint_other_architecture', 'command line', 'mclir-probe-degradation',
      '--checkpoint: EDSR weights for a NAFNet network_g', words=['does not fit network_g (type NAFNet)'])
def _ckpt_other(root, shared):
    from basicsr.archs.edsr_arch import EDSR
    net = EDSR(**{k: v for k, v in TINY_EDSR.items() if k != 'type'})
    torch.save({'params': net.state_dict()}, osp.join(root, 'edsr.pth'))
    return ['-opt', probe_file(root), '--checkpoint', 'edsr.pth']


@case('probe_json_under_a_file', 'command line', 'mclir-probe-degradation', '--json plain_file/sub/p.json',
      words=['--json', 'is a file, not a folder'])
def _probe_json(root, shared):
    return ['-opt', probe_file(root), '--json', dead_end(root) + '/p.json']


@case('probe_k_above_samples', 'command line', 'mclir-probe-degradation', '--k 1000 --json p.json',
      words=['--k 1000 is larger than the'])
def _probe_k(root, shared):
    return ['-opt', probe_file(root), '--k', '1000', '--json', 'p.json']


@case('fetch_vgg_out_existing_file', 'command line', 'mclir-fetch-vgg', '--out out (a regular file)',
      words=['--out', 'is a file'])
def _fetch_file(root, shared):
    with open(osp.join(root, 'out'), 'w') as f:
        f.write('x\n')
    return ['--out', 'out']


@case('fetch_vgg_out_under_a_file', 'command line', 'mclir-fetch-vgg', '--out plain_file/sub',
      words=['--out', 'is a file, not a folder'])
def _fetch_under(root, shared):
    return ['--out', dead_end(root)]


@case('make_lmdb_out_under_a_file', 'command line', 'mclir-make-lmdb',
      '--out-gt plain_file/sub/gt.lmdb', words=['cannot be created', 'is a file, not a folder'])
def _lmdb_under(root, shared):
    pairs(root, n=2)
    return ['--gt', 'data/gt', '--lq', 'data/lq', '--out-gt', dead_end(root) + '/gt.lmdb', '--out-lq', 'lq.lmdb']


# ---- valid input on the two shipped paths that used to fail
@case('valid_IRConStyleModel_from_ConStyle_demo', 'valid', 'mclir-train',
      'ConStyle demo as IRConStyleModel, path.pretrain_constyle = net_g_latest.pth of a 2-iteration ConStyle demo '
      'run (made in this folder first)', expect='accepted', log_check=True)
def _ir_constyle(root, shared):
    pre = shorten(demo(CONSTYLE))
    prep = run_entry('mclir-train', ['-opt', write_yaml(osp.join(root, 'constyle.yml'), pre)], root, 600)
    ckpt = f'experiments/{pre["name"]}/models/net_g_latest.pth'
    if prep['rc'] != 0 or not osp.isfile(osp.join(root, ckpt)):
        raise RuntimeError(f'the ConStyle demo run (preparation) failed, exit {prep["rc"]}: {prep["stderr"][-2000:]}')
    opt = shorten(demo(CONSTYLE), name='IRConStyle_demo')
    opt['model_type'] = 'IRConStyleModel'
    for key in ('CrossEntropy_opt', 'content_opt', 'style_opt', 'ConStyle_iter'):
        opt['train'].pop(key, None)
    opt['path'].update(pretrain_constyle=ckpt, param_key_constyle='params')
    return ['-opt', write_yaml(osp.join(root, 'case.yml'), opt)]


@case('valid_authors_SRNegModel_Multi', 'valid', 'mclir-train',
      'MCLIR EDSR SRx2 demo as the authors\' SRNegModel_Multi (PerceptualLoss vgg16 negatives, neg_iter [1, 2]); '
      f'random VGG16 weights at experiments/pretrained_models/{VGG16_FILE}', expect='accepted', log_check=True)
def _authors(root, shared):
    plant_vgg16(root, shared)
    opt = shorten(demo(MCLIR), name='SRNegModel_Multi_demo')
    opt['model_type'] = 'SRNegModel_Multi'
    for key in ('history', 'spn_opt'):
        opt['train'].pop(key)
    opt['train'].update(perceptual_opt=dict(AUTHORS_PERCEPTUAL), neg_iter=[1, 2], neg_decay=[0.1, 0.1])
    return ['-opt', write_yaml(osp.join(root, 'case.yml'), opt)]


# ---------------------------------------------------------------------------------------------------------------
# running and judging
# ---------------------------------------------------------------------------------------------------------------
def make_shared(root):
    """The demo data (all tasks) and random VGG16 weights under torchvision's file name, made once."""
    build_demo_data(root=osp.join(root, 'datasets', 'demo'), tasks=ALL_TASKS, quiet=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        feats = build_torchvision_vgg_features('vgg16')
    torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, osp.join(root, VGG16_FILE))


def plant_vgg16(root, shared):
    target = osp.join(root, 'experiments', 'pretrained_models')
    os.makedirs(target, exist_ok=True)
    try:
        os.link(osp.join(shared, VGG16_FILE), osp.join(target, VGG16_FILE))
    except OSError:
        shutil.copy(osp.join(shared, VGG16_FILE), osp.join(target, VGG16_FILE))


def listing(root):
    """path -> (size, mtime) of every file, None for a folder; symbolic links are not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = osp.join(dirpath, name)
            rel = osp.relpath(path, root)
            if osp.islink(path) or name in filenames:
                st = os.lstat(path)
                out[rel] = (st.st_size, st.st_mtime_ns)
            else:
                out[rel] = None
    return out


def written(before, after, prefix=''):
    new = sorted(prefix + p for p in after if p not in before)
    changed = sorted(prefix + p for p in after if p in before and before[p] is not None and after[p] != before[p])
    removed = sorted(prefix + p for p in before if p not in after)
    return new + [f'{p} (changed)' for p in changed] + [f'{p} (removed)' for p in removed]


def run_entry(prog, args, cwd, timeout):
    """``python -m <the module of prog> args`` in ``cwd``, on this checkout's package (PYTHONPATH, as the tests'
    ``run_module``)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    start = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, '-m', ENTRY[prog]] + args, cwd=cwd, env=env, capture_output=True,
                             text=True, timeout=timeout)
        rc, out, err = res.returncode, res.stdout, res.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 'timeout'
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or '')
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or '')
    return {'rc': rc, 'stdout': out, 'stderr': err, 'seconds': round(time.perf_counter() - start, 2)}


def first_message(prog, out, err, traceback):
    lines = [line.rstrip() for line in err.splitlines() if line.strip()]
    if traceback:  # the exception line: the last line of the traceback block
        tb_lines = [line.rstrip() for line in (err + '\n' + out).splitlines() if line.strip()]
        start = max(i for i, line in enumerate(tb_lines) if line.startswith('Traceback'))
        exc = [line for line in tb_lines[start + 1:] if not line.startswith(' ')]
        return exc[0] if exc else tb_lines[-1]
    ours = [line for line in lines if line.startswith(f'{prog}: ')]
    if ours:
        return ours[0]
    warned = [line for line in lines if 'Warning' in line or 'warning' in line]
    return warned[0] if warned else (lines or [''])[-1]  # a run that ended: its last line


def check_log(root, args):
    with open(osp.join(root, args[args.index('-opt') + 1])) as f:
        name = yaml.safe_load(f)['name']
    logs = glob.glob(osp.join(root, 'experiments', name, f'train_{name}_*.log'))
    if not logs:
        return {'log': None, 'loss_line': False, 'psnr_line': False}
    with open(logs[0]) as f:
        text = f.read()
    return {'log': osp.relpath(logs[0], root), 'loss_line': bool(LOSS_LINE.search(text)),
            'psnr_line': bool(PSNR_LINE.search(text))}


def run_case(spec, work, shared, timeout):
    root = osp.join(work, spec['id'])
    os.makedirs(root)
    os.symlink(osp.join(shared, 'datasets'), osp.join(root, 'datasets'))
    prog = spec['prog']
    record = {k: spec[k] for k in ('id', 'group', 'change', 'expect')}
    record['entry_point'] = prog
    start = time.perf_counter()
    try:
        args = spec['prepare'](root, shared)
    except Exception as exc:  # a preparation that fails is recorded, not hidden
        record.update(outcome='preparation_failed', message=f'{type(exc).__name__}: {exc}', as_expected=False)
        return record
    record['prepare_seconds'] = round(time.perf_counter() - start, 2)
    before, shared_before = listing(root), listing(osp.join(shared, 'datasets'))
    res = run_entry(prog, args, root, timeout)
    after, shared_after = listing(root), listing(osp.join(shared, 'datasets'))
    wrote = written(before, after) + written(shared_before, shared_after, prefix='<shared datasets>/')
    traceback = 'Traceback' in res['stdout'] + res['stderr']
    message = first_message(prog, res['stdout'], res['stderr'], traceback)
    for path, label in ((root, '<case>'), (work, '<sweep>'), (ROOT, '<repo>')):
        message = message.replace(path, label)
    record.update(command=f'python -m {ENTRY[prog]} ' + ' '.join(args), cwd='<case>', exit=res['rc'],
                  seconds=res['seconds'], traceback=traceback, written=wrote[:40], written_count=len(wrote),
                  message=message, stderr_lines=len([line for line in res['stderr'].splitlines() if line.strip()]))
    if traceback:
        outcome = 'traceback'
    elif res['rc'] != 0:
        outcome = 'written_before_error' if wrote else 'refused'
    else:
        outcome = 'accepted_as_intended' if spec['expect'] == 'accepted' else 'silent'
    notes = []
    if spec['expect'] == 'refused':
        missing = [w for w in spec['words'] if w not in message]
        if missing and outcome == 'refused':
            notes.append(f'message lacks {missing}')
    if spec['stderr_has'] is not None:
        record['expected_warning_seen'] = spec['stderr_has'] in res['stderr']
        if not record['expected_warning_seen']:
            notes.append(f'no warning {spec["stderr_has"]!r} on stderr')
    if spec['log_check'] and outcome == 'accepted_as_intended':
        record.update(check_log(root, args))
        if not (record['log'] and record['loss_line'] and record['psnr_line']):
            outcome = 'accepted_without_log'
            notes.append('log missing, or no loss line or no # psnr line')
    record['outcome'] = outcome
    expected = 'accepted_as_intended' if spec['expect'] == 'accepted' else 'refused'
    record['as_expected'] = outcome == expected and not notes
    record['notes'] = notes
    if not record['as_expected'] or outcome == 'traceback':
        record['stderr_tail'] = res['stderr'][-3000:].replace(work, '<sweep>')
        record['stdout_tail'] = res['stdout'][-1500:].replace(work, '<sweep>')
    return record


def code_version():
    """The commit of the checkout and how many paths differ from it (or why not known)."""
    def git(*a):
        return subprocess.run(['git', '-C', ROOT] + list(a), capture_output=True, text=True).stdout.strip()
    try:
        commit = git('rev-parse', 'HEAD')
    except OSError:
        commit = ''
    if not commit:
        return {'root': ROOT, 'commit': None}
    return {'root': ROOT, 'commit': commit, 'paths_differing': len(git('status', '--porcelain').splitlines())}


def table(records):
    rows = ['| case | entry point | exit | outcome | first line of message |', '|---|---|---|---|---|']
    for r in records:
        msg = r.get('message', '')
        msg = (msg if len(msg) <= 150 else msg[:147] + '...').replace('|', '\\|')
        flag = '' if r.get('as_expected') else ' (!)'
        rows.append(f'| {r["id"]} | {r["entry_point"]} | {r.get("exit", "-")} | {r["outcome"]}{flag} | {msg} |')
    return '\n'.join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=osp.join(BENCH_DIR, 'results', 'bad_input_sweep_cpu.json'))
    p.add_argument('--keep', help='work in this (new) folder and keep it (default: a temporary folder, removed)')
    p.add_argument('--only', help='run only the cases whose id contains this')
    p.add_argument('--timeout', type=int, default=300, help='seconds per entry-point run')
    p.add_argument('--note', help='a note stored with the result (e.g. which code was run)')
    args = p.parse_args()
    start = time.perf_counter()
    if args.keep:
        os.makedirs(args.keep)
        work = osp.abspath(args.keep)
    else:
        work = tempfile.mkdtemp(prefix='bad_input_sweep_')
    shared = osp.join(work, '_shared')
    try:
        make_shared(shared)
        shared_seconds = round(time.perf_counter() - start, 1)
        records = []
        for spec in CASES:
            if args.only and args.only not in spec['id']:
                continue
            r = run_case(spec, work, shared, args.timeout)
            records.append(r)
            print(f'{r["id"]}: {r["outcome"]} (exit {r.get("exit", "-")}, {r.get("seconds", "-")} s)', flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    counts = {k: sum(r['outcome'] == k for r in records) for k in OUTCOMES}
    other = {r['outcome'] for r in records} - set(OUTCOMES)
    total = round(time.perf_counter() - start, 1)
    result = {'cases': records, 'counts': counts, 'not_as_expected': [r['id'] for r in records if not r['as_expected']],
              'seconds_total': total, 'seconds_shared_data': shared_seconds,
              'machine': {'python': platform.python_version(), 'torch': torch.__version__,
                          'platform': platform.platform(), 'cpus': os.cpu_count()},
              'command': 'python -m benchmarks.bad_input_sweep' + (f' --only {args.only}' if args.only else ''),
              'code': code_version(), 'entry_modules': ENTRY, 'note': args.note}
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    print()
    print(table(records))
    print()
    if other:
        print('other outcomes: ' + ', '.join(f'{k}: {sum(r["outcome"] == k for r in records)}' for k in sorted(other)))
    print(f'{len(records)} cases in {total} s (shared data {shared_seconds} s); not as expected: '
          f'{result["not_as_expected"] or "none"}; written to {args.out}')
    print(f'refused: {counts["refused"]}, accepted as intended: {counts["accepted_as_intended"]}, traceback: '
          f'{counts["traceback"]}, written before error: {counts["written_before_error"]}, silent: {counts["silent"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
