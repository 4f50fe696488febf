"""``bad_input_sweep``'s cases: each prepares its fresh folder and returns the entry point's arguments; ``CASES``
lists them in the order they run."""
import os.path as osp
import re

import torch
import yaml

from benchmarks.bad_input_inputs import (AUTHORS_PERCEPTUAL, CONSTYLE, DCPT, DSRIR, MCLIR, TINY_EDSR, authors_ffanet,
                                         build_probe_network, dead_end, demo, lmdbs, paired_train_file, pairs,
                                         set_key, shorten, truncate, write_img, write_yaml, VGG16_FILE)
from benchmarks.bad_input_runner import plant_vgg16, run_entry

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
