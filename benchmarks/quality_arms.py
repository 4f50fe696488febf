"""The tasks and arms of ``quality.py``: each run's option dict, generated from the demo option files, and the demo
data they train on."""
import hashlib
import json
import os.path as osp
import subprocess
import sys

import yaml

from benchmarks.common import OUT_DIR, ROOT, absolute_roots, log

CACHE_DIR = osp.join(OUT_DIR, 'cache')
DATA_ROOT = osp.join(ROOT, 'datasets', 'demo')

TASKS = {
    'sr_x2': dict(baseline='train_EDSR_SRx2_demo_baseline.yml', spn='train_MCLIR_EDSR_SRx2_demo.yml',
                  dataset='demo_sr_x2_val', input_label='bicubic input'),
    'dn_s25': dict(baseline='train_EDSR_DNs25_demo_baseline.yml', spn='train_MCLIR_EDSR_DNs25_demo.yml',
                   dataset='demo_dn_s25_val', input_label='noisy input'),
    # a small FFA-Net on the all-in-one demo data's haze (atmospheric scattering model), the paper's dehazing setting
    'dehaze': dict(baseline='train_FFA_Dehaze_demo_baseline.yml', spn='train_MCLIR_FFA_Dehaze_demo.yml',
                   dataset='demo_dehaze_val', input_label='hazy input', data='all_in_one'),
}
ARMS = ['l1', 'spn_sub', 'spn_ratio']  # the default arms; --arms adds the others of ARM_LABELS
ARM_LABELS = {'l1': '(a) L1 only', 'spn_sub': '(b) SPN subtract, lambda 0.01',
              'spn_ratio': '(c) SPN ratio + lq_negative',
              'spn_authors': '(d) SPN subtract, lambda 0.001', 'round_robin': '(e) (d) + negatives round_robin',
              'adaptive': '(f) (d) + adaptive refresh', 'uncertainty': '(g) (d) + HistoryUncertaintyLoss',
              'w0.0003': '(h) SPN subtract, lambda 0.0003', 'w0.003': '(i) SPN subtract, lambda 0.003',
              'auto0.01': '(j) SPN subtract, lambda auto 0.01', 'auto0.03': '(k) SPN subtract, lambda auto 0.03'}
# (d)-(k): the demo's SPN file, then the changes below: train.history keys, spn_opt keys, an uncertainty_opt
EXTRA_ARMS = {'spn_authors': {}, 'round_robin': {'history': {'negatives': 'round_robin'}},
              'adaptive': {'history': {'adaptive': {'threshold': 0.022, 'decay': 0.001}}},
              'uncertainty': {'uncertainty_opt': {'type': 'HistoryUncertaintyLoss', 'beta': 0.5}},
              'w0.0003': {'spn_opt': {'loss_weight': 0.0003}}, 'w0.003': {'spn_opt': {'loss_weight': 0.003}},
              'auto0.01': {'spn_opt': {'loss_weight': 'auto', 'target_ratio': 0.01}},
              'auto0.03': {'spn_opt': {'loss_weight': 'auto', 'target_ratio': 0.03}}}
# a fixed lambda against the automatic weight at two targets of |l_spn| / l_rec
WEIGHT_ARMS = ['l1', 'w0.0003', 'spn_authors', 'w0.003', 'spn_sub', 'auto0.01', 'auto0.03']
RATIO_SPN = {'form': 'ratio', 'lq_negative': True, 'loss_weight': 0.01}  # (c): changes to the demo's spn_opt
# (b) and (c) keep the fixed 0.01 the demo files had before they moved to `auto`
DEFAULT_ARM_SPN = {'spn_sub': {'loss_weight': 0.01}, 'spn_ratio': RATIO_SPN}

MODES = {
    # baseline iterations, fine-tune iterations, seeds, validation frequency, margin over the input (dB)
    'full': dict(baseline_iters=2000, iters=200, seeds=[10, 11, 12], val_freq=25, margin=0.3),
    'quick': dict(baseline_iters=600, iters=60, seeds=[10], val_freq=20, margin=0.1),
}
# --scale gpu: BasicSR's EDSR-light body (64 features, 16 blocks; dehazing: FFA-Net 64 x 3 groups x 8 blocks) on the
# same demo tasks, larger patches and batch, thousands of iterations, one run at a time on the GPU
MODES['gpu'] = dict(baseline_iters=20000, iters=4000, seeds=[10, 11, 12], val_freq=250, margin=0.3)
GPU_SETTING = dict(network={'EDSR': {'num_feat': 64, 'num_block': 16},
                            'FFANet': {'num_feat': 64, 'num_groups': 3, 'num_blocks': 8}}, gt_size=96, batch=16)
BASELINE_LR = 5e-4  # the demo's
FINETUNE_LR = 1e-4  # continuing from a converged model: a lower, constant rate (milestones past the end)
SWEEP = [('spn_sub', {'loss_weight': w}) for w in (0.003, 0.03, 0.1)] + \
        [('spn_ratio', {'loss_weight': w}) for w in (0.003, 0.03)] + \
        [('spn_sub', {'history_periods': [10, 100]}), ('spn_sub', {'negatives': 'round_robin'})]


def load_yml(name):
    with open(osp.join(ROOT, 'options', 'train', 'demo', name)) as f:
        return yaml.safe_load(f)


def make_options(task, arm, name, iters, seed, lr, val_freq, pretrain=None, spn_changes=None, batch=None,
                 scale='cpu', vgg_weights=None):
    """An option dict from the demo option file of ``arm``; only the fields named in quality.py's docstring change."""
    cfg = TASKS[task]
    opt = absolute_roots(load_yml(cfg['baseline'] if arm == 'l1' else cfg['spn']), ROOT)
    opt['name'] = name
    opt['num_gpu'] = 1 if scale == 'gpu' else 0
    if scale == 'gpu':
        opt['network_g'].update(GPU_SETTING['network'][opt['network_g']['type']])
        opt['datasets']['train'].update(gt_size=GPU_SETTING['gt_size'], batch_size_per_gpu=GPU_SETTING['batch'])
    if vgg_weights and 'spn_opt' in opt['train']:
        opt['train']['spn_opt']['vgg_weights'] = osp.abspath(vgg_weights)
    opt['manual_seed'] = seed
    opt['path']['pretrain_network_g'] = pretrain
    opt['path']['strict_load_g'] = True
    train = opt['train']
    train['total_iter'] = iters
    train['optim_g']['lr'] = lr
    if pretrain is not None:  # fine-tuning: constant rate
        train['scheduler'] = {'type': 'MultiStepLR', 'milestones': [10 * iters], 'gamma': 0.5}
    if batch:
        opt['datasets']['train']['batch_size_per_gpu'] = batch
    train.get('spn_opt', {}).update(DEFAULT_ARM_SPN.get(arm, {}))
    if arm in EXTRA_ARMS:
        train['spn_opt']['loss_weight'] = 0.001  # the authors' lambda, unless the arm sets its own
        extra = EXTRA_ARMS[arm]
        train['history'].update(extra.get('history', {}))
        train['spn_opt'].update(extra.get('spn_opt', {}))
        if 'uncertainty_opt' in extra:
            train['uncertainty_opt'] = dict(extra['uncertainty_opt'])
    changes = dict(spn_changes or {})
    periods = changes.pop('history_periods', None)
    if periods:
        train['history']['copies'] = [{'period': p, 'decay': 0.1} for p in periods]
    if 'negatives' in changes:
        train['history']['negatives'] = changes.pop('negatives')
    if changes:
        train['spn_opt'].update(changes)
    opt['val']['val_freq'] = val_freq
    opt['logger']['print_freq'] = val_freq
    opt['logger']['save_checkpoint_freq'] = 10 ** 9  # only the final net_g_latest.pth
    opt['logger']['use_tb_logger'] = True
    return opt


def baseline_options(task, mode_cfg, scale='cpu'):
    """The L1 baseline's options and the cache paths (.pth, .json) named after their hash."""
    opt = make_options(task, 'l1', f'quality_baseline_{task}', mode_cfg['baseline_iters'], seed=10, lr=BASELINE_LR,
                       val_freq=mode_cfg['baseline_iters'], scale=scale)
    opt['train']['scheduler'] = {'type': 'MultiStepLR', 'milestones': [int(mode_cfg['baseline_iters'] * 0.75)],
                                 'gamma': 0.5}
    key = hashlib.sha1(json.dumps(opt, sort_keys=True).encode()).hexdigest()[:10]
    stem = osp.join(CACHE_DIR, f'baseline_{task}_{mode_cfg["baseline_iters"]}it_{key}')
    return opt, stem + '.pth', stem + '.json'


def ensure_data(tasks):
    folders = sorted({TASKS[t].get('data', t) for t in tasks})
    missing = [d for d in folders if not osp.isfile(osp.join(DATA_ROOT, d, 'manifest.json'))]
    if missing:
        log(f'building demo data for {", ".join(missing)} (python datasets/make_demo_data.py) ...')
        subprocess.run([sys.executable, osp.join(ROOT, 'datasets', 'make_demo_data.py'), '--root', DATA_ROOT,
                        '--tasks'] + missing, cwd=ROOT, check=True)


def input_metrics(task):
    """PSNR/SSIM of the degraded validation inputs, with the task's own validation settings."""
    if TASKS[task].get('data') is None:
        from mclir_basicsr.demo import input_metrics as demo_input_metrics
        return demo_input_metrics(DATA_ROOT, task)
    from basicsr.data import build_dataset
    from basicsr.metrics import calculate_metric
    from basicsr.utils import tensor2img
    opt = absolute_roots(load_yml(TASKS[task]['baseline']), ROOT)
    val = dict(opt['datasets']['val'], phase='val', scale=opt['scale'])
    sums = {}
    for item in build_dataset(val):  # the pairs exactly as validation reads them
        data = {'img': tensor2img(item['lq']), 'img2': tensor2img(item['gt'])}
        for name, metric in opt['val']['metrics'].items():
            sums.setdefault(name, []).append(calculate_metric(data, metric))
    return {name: float(sum(v) / len(v)) for name, v in sums.items()}
