"""The paper's "retrain existing models" protocol on the bundled demo data, with BasicSR's training loop.

    python benchmarks/quality.py [--quick] [--task sr_x2|dn_s25|dehaze|all] [--seeds 10,11,12] [--iters N]
                                 [--arms l1,...|weights|all] [--vgg-weights FILE] [--sweep]

1. Train a baseline with L1 (``options/train/demo/train_{EDSR_*,FFA_Dehaze}_demo_baseline.yml``: a tiny EDSR, 32
   features and 4 blocks, for x2 SR and sigma-25 denoising; a small FFA-Net, 16 features, 3 groups of 2 blocks, for
   dehazing) until it clearly beats the degraded input; the checkpoint is cached under benchmarks/out/cache/.
2. Continue from that checkpoint with each arm, the same iterations, learning rate and data order (per seed), each
   for every seed. The default arms:
     (a) l1        L1 only (the baseline's option file)
     (b) spn_sub   L1 + SPN, form subtract (the demo's MCLIR option file: 2 copies; lambda fixed at 0.01)
     (c) spn_ratio L1 + SPN, form ratio, lq_negative (the degraded input as an extra negative)
   ``--arms`` adds (d)-(k) of ARM_LABELS: the authors' lambda 0.001, round_robin negatives, the adaptive refresh,
   the uncertainty loss, other fixed lambdas and the automatic lambda (``--arms weights``: issue 16's comparison).
3. Validation PSNR/SSIM (BasicSR's metrics, through its validation) every ``--val-freq`` iterations, read back
   from each run's tensorboard events. Reported: per seed, mean, spread, and the per-seed difference vs (a).

Every run is ``python -m mclir_basicsr.train -opt <generated yml>`` in its own process, with option files
generated from options/train/demo/*.yml (only name, paths, iterations, seed, learning rate, validation
frequency and, for (c), spn_opt are changed). Runs go to benchmarks/out/quality_runs/ and run ``--jobs`` at a
time, each with ``--threads`` CPU threads.

Writes benchmarks/out/quality.json and (with matplotlib) benchmarks/out/quality.png.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import yaml

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
OUT_DIR = osp.join(HERE, 'out')
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
# issue 16's comparison: a fixed lambda against the automatic weight at two targets of |l_spn| / l_rec
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


def log(msg):
    sys.stdout.write(msg + '\n')  # one write: the pool's threads log concurrently, print() could interleave lines
    sys.stdout.flush()


def load_yml(name):
    with open(osp.join(ROOT, 'options', 'train', 'demo', name)) as f:
        return yaml.safe_load(f)


def absolute_data_paths(opt):
    for ds in opt['datasets'].values():
        for entry in [ds] + ds.get('tasks', []):  # AllInOneDataset: a folder per task
            for key in ('dataroot_gt', 'dataroot_lq', 'dataroot'):
                if key in entry and not osp.isabs(entry[key]):
                    entry[key] = osp.join(ROOT, entry[key])
    return opt


def make_options(task, arm, name, iters, seed, lr, val_freq, pretrain=None, spn_changes=None, batch=None,
                 scale='cpu', vgg_weights=None):
    """An option dict from the demo option file of ``arm``; only the fields named in the docstring change."""
    cfg = TASKS[task]
    opt = absolute_data_paths(load_yml(cfg['baseline'] if arm == 'l1' else cfg['spn']))
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


def run_training(opt, workdir, threads):
    """Train ``opt`` with our entry point in ``workdir``; returns (seconds, validation curve, log path)."""
    name = opt['name']
    for sub in ('experiments', 'tb_logger'):
        shutil.rmtree(osp.join(workdir, sub, name), ignore_errors=True)
    os.makedirs(osp.join(workdir, 'options'), exist_ok=True)
    opt_path = osp.join(workdir, 'options', f'{name}.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        env[var] = str(threads)
    log_path = osp.join(workdir, 'logs', f'{name}.log')
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    start = time.time()
    with open(log_path, 'w') as out:
        proc = subprocess.run([sys.executable, '-m', 'mclir_basicsr.train', '-opt', opt_path], cwd=workdir,
                              env=env, stdout=out, stderr=subprocess.STDOUT)
    took = time.time() - start
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = ''.join(f.readlines()[-25:])
        raise RuntimeError(f'training {name} failed (exit {proc.returncode}); log {log_path}:\n{tail}')
    val = opt['datasets'].get('val')  # option files with several validation sets read their own curves
    return took, read_curve(osp.join(workdir, 'tb_logger', name), val['name']) if val else {}


SPN_SCALARS = ('spn_ratio', 'spn_weight')  # |l_spn| / l_rec and the lambda in use, logged every print_freq


def read_curve(tb_dir, dataset):
    """{metric: [(iter, value), ...]} from BasicSR's tensorboard scalars ``metrics/<dataset>/<metric>``, and SPN's
    ratio and weight where logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(tb_dir, size_guidance={'scalars': 0})
    acc.Reload()
    curve = {}
    tags = {f'metrics/{dataset}/{metric}': metric for metric in ('psnr', 'ssim')}
    tags.update({name: name for name in SPN_SCALARS})
    for tag, key in tags.items():
        if tag in acc.Tags().get('scalars', []):
            curve[key] = [(int(e.step), float(e.value)) for e in acc.Scalars(tag)]
    return curve


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
    opt = absolute_data_paths(load_yml(TASKS[task]['baseline']))
    val = dict(opt['datasets']['val'], phase='val', scale=opt['scale'])
    sums = {}
    for item in build_dataset(val):  # the pairs exactly as validation reads them
        data = {'img': tensor2img(item['lq']), 'img2': tensor2img(item['gt'])}
        for name, metric in opt['val']['metrics'].items():
            sums.setdefault(name, []).append(calculate_metric(data, metric))
    return {name: float(sum(v) / len(v)) for name, v in sums.items()}


def baseline_options(task, mode_cfg, scale='cpu'):
    """The L1 baseline's options and the cache paths (.pth, .json) named after their hash."""
    opt = make_options(task, 'l1', f'quality_baseline_{task}', mode_cfg['baseline_iters'], seed=10, lr=BASELINE_LR,
                       val_freq=mode_cfg['baseline_iters'], scale=scale)
    opt['train']['scheduler'] = {'type': 'MultiStepLR', 'milestones': [int(mode_cfg['baseline_iters'] * 0.75)],
                                 'gamma': 0.5}
    key = hashlib.sha1(json.dumps(opt, sort_keys=True).encode()).hexdigest()[:10]
    stem = osp.join(CACHE_DIR, f'baseline_{task}_{mode_cfg["baseline_iters"]}it_{key}')
    return opt, stem + '.pth', stem + '.json'


def baseline_checkpoint(task, mode_cfg, workdir, threads, force=False, scale='cpu'):
    """Train (or reuse from the cache) the L1 baseline; returns (path, info dict)."""
    opt, path, info_path = baseline_options(task, mode_cfg, scale)
    key = osp.basename(path)[:-len('.pth')].rsplit('_', 1)[1]
    if not force and osp.isfile(path) and osp.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
        log(f'  [{task}] baseline: cached {osp.relpath(path, ROOT)} (PSNR {info["psnr"]:.3f} dB)')
        return path, info
    log(f'  [{task}] baseline: training {mode_cfg["baseline_iters"]} iterations with L1 ...')
    took, curve = run_training(opt, workdir, threads)
    os.makedirs(CACHE_DIR, exist_ok=True)
    shutil.copyfile(osp.join(workdir, 'experiments', opt['name'], 'models', 'net_g_latest.pth'), path)
    info = {'iters': mode_cfg['baseline_iters'], 'seconds': took, 'psnr': curve['psnr'][-1][1],
            'ssim': curve['ssim'][-1][1], 'options_hash': key}
    with open(info_path, 'w') as f:
        json.dump(info, f, indent=1)
    log(f'  [{task}] baseline: PSNR {info["psnr"]:.3f} dB, SSIM {info["ssim"]:.4f} after {took:.0f} s -> '
        f'{osp.relpath(path, ROOT)}')
    return path, info


def summarise(runs, arms, seeds):
    """Per arm: final PSNR/SSIM per seed, mean, spread (sample std and range), per-seed difference vs l1."""
    out = {}
    for arm in arms:
        per_seed = {s: runs[(arm, s)]['final'] for s in seeds if (arm, s) in runs}
        psnr = [v['psnr'] for v in per_seed.values()]
        ssim = [v['ssim'] for v in per_seed.values()]
        entry = {'per_seed': {str(s): v for s, v in per_seed.items()},
                 'psnr_mean': statistics.fmean(psnr), 'ssim_mean': statistics.fmean(ssim),
                 'psnr_std': statistics.stdev(psnr) if len(psnr) > 1 else 0.0,
                 'psnr_range': max(psnr) - min(psnr), 'ssim_std': statistics.stdev(ssim) if len(ssim) > 1 else 0.0,
                 'seconds_mean': statistics.fmean(runs[(arm, s)]['seconds'] for s in per_seed)}
        for name in SPN_SCALARS:  # the range over seeds and logged iterations; the value at the end, per seed
            logged = {s: runs[(arm, s)].get('curve', {}).get(name) for s in per_seed}
            logged = {s: points for s, points in logged.items() if points}
            if logged:
                values = [v for points in logged.values() for _, v in points]
                entry[f'{name}_range'] = [min(values), max(values)]
                entry[f'{name}_final'] = {str(s): points[-1][1] for s, points in logged.items()}
        if arm != 'l1':
            diffs = {str(s): per_seed[s]['psnr'] - runs[('l1', s)]['final']['psnr'] for s in per_seed
                     if ('l1', s) in runs}
            entry['psnr_diff_vs_l1'] = diffs
            entry['psnr_diff_mean'] = statistics.fmean(diffs.values()) if diffs else None
            entry['ssim_diff_vs_l1'] = {str(s): per_seed[s]['ssim'] - runs[('l1', s)]['final']['ssim']
                                        for s in per_seed if ('l1', s) in runs}
        out[arm] = entry
    return out


def print_table(task, summary, baseline, input_metrics, seeds):
    log(f'\n[{task}] validation PSNR (dB) / SSIM after fine-tuning (BasicSR metrics):')
    log(f'  {TASKS[task]["input_label"]:<30} {input_metrics["psnr"]:.3f} / {input_metrics["ssim"]:.4f}')
    log(f'  {"baseline (start of every arm)":<30} {baseline["psnr"]:.3f} / {baseline["ssim"]:.4f}')
    head = (f'  {"arm":<30}' + ''.join(f'{"seed " + str(s):>18}' for s in seeds)
            + f'{"mean":>9}{"std":>7}{"d vs (a)":>10}')
    log(head)
    for arm, e in summary.items():
        row = f'  {ARM_LABELS.get(arm, arm):<30}'
        for s in seeds:
            v = e['per_seed'].get(str(s))
            row += f'{v["psnr"]:9.3f}/{v["ssim"]:.4f}' if v else f'{"-":>18}'
        row += f'{e["psnr_mean"]:9.3f}{e["psnr_std"]:7.3f}'
        row += f'{e["psnr_diff_mean"]:+10.3f}' if e.get('psnr_diff_mean') is not None else f'{"":>10}'
        log(row)
    for arm, e in summary.items():
        if 'spn_ratio_range' in e:
            lo, hi = e['spn_ratio_range']
            weights = ', '.join(f'{w:.3g}' for w in e['spn_weight_final'].values()) if 'spn_weight_final' in e else '-'
            log(f'  {ARM_LABELS.get(arm, arm):<30} |l_spn|/l_rec {lo:.3g}-{hi:.3g}; lambda at the end: {weights}')
    for arm, e in summary.items():
        if e.get('psnr_diff_vs_l1'):
            log(f'  {ARM_LABELS.get(arm, arm)} minus (a), per seed: ' +
                ', '.join(f'seed {s}: {d:+.3f} dB' for s, d in e['psnr_diff_vs_l1'].items()))


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        log('matplotlib is not installed: no PNG (pip install matplotlib, or the "bench" extra).')
        return None
    tasks = list(results)
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.5), squeeze=False)
    palette = plt.get_cmap('tab10').colors + ('#000000',)  # a colour per arm, the same in every panel and run
    colors = {arm: palette[i % len(palette)] for i, arm in enumerate(ARM_LABELS)}
    for ax, task in zip(axes[0], tasks):
        res = results[task]
        base = res['baseline']['psnr']
        for run in res['runs']:
            pts = [(0, base)] + [tuple(p) for p in run['curve'].get('psnr', [])]
            xs, ys = zip(*pts)
            label = run['label'] if run['seed'] == res['seeds'][0] else None
            ax.plot(xs, ys, color=colors.get(run['arm'], '#888888'), alpha=0.4 if run.get('sweep') else 0.9,
                    ls='--' if run.get('sweep') else '-', marker='o', ms=2.5, label=label)
        inp = res['input_metrics']['psnr']
        lowest = min([base] + [v for run in res['runs'] for _, v in run['curve'].get('psnr', [])])
        if inp > lowest - 1.0:  # the input's line only where it does not squash the curves
            ax.axhline(inp, color='k', lw=0.8, ls=':', label=TASKS[task]['input_label'])
        ax.set_title(f'{task}: fine-tuning from an L1 baseline ({len(res["seeds"])} seed(s))\n'
                     f'{TASKS[task]["input_label"]} {inp:.2f} dB, baseline {base:.2f} dB', fontsize=10)
        ax.set_xlabel('fine-tuning iteration')
        ax.set_ylabel('validation PSNR (dB)')
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='1 seed, short baseline and fine-tuning (< 5 min)')
    parser.add_argument('--task', default='all', help=f'comma-separated, of {", ".join(TASKS)}; or all (default)')
    parser.add_argument('--seeds', default=None, help='comma-separated (default 10,11,12; 10 with --quick)')
    parser.add_argument('--iters', type=int, default=None, help='fine-tuning iterations (default 400; 60 quick)')
    parser.add_argument('--baseline-iters', type=int, default=None, help='default 2000; 600 with --quick')
    parser.add_argument('--val-freq', type=int, default=None)
    parser.add_argument('--batch', type=int, default=None, help='batch size (default: the demo files\', 8)')
    parser.add_argument('--sweep', action='store_true',
                        help='also lambda / schedule variants of (b) and (c), first seed only: ' +
                             '; '.join(f'{a} {c}' for a, c in SWEEP))
    parser.add_argument('--scale', choices=['cpu', 'gpu'], default='cpu',
                        help='gpu: EDSR-light body (64 x 16), GT patch 96, batch 16, baseline 20000 and fine-tuning '
                             '4000 iterations, validation every 250, one run at a time on the GPU (needs CUDA)')
    parser.add_argument('--vgg-weights', default=None,
                        help='torchvision VGG16 file for SPN (the paper\'s feature space); default: random VGG')
    parser.add_argument('--jobs', type=int, default=None, help='trainings at a time (default 2; 1 with --scale gpu)')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads per training (default 1)')
    parser.add_argument('--retrain-baseline', action='store_true', help='ignore the cached baseline')
    parser.add_argument('--rerun', action='store_true',
                        help='retrain every arm (default: reuse a finished run whose generated options are identical)')
    parser.add_argument('--out', default=OUT_DIR)
    parser.add_argument('--arms', default=','.join(ARMS),
                        help=f'comma-separated, l1 first (default {",".join(ARMS)}; also {",".join(EXTRA_ARMS)}), '
                             f'or "weights" (issue 16: {",".join(WEIGHT_ARMS)}) or "all"')
    args = parser.parse_args(argv)
    args.out = osp.abspath(args.out)  # every training runs in its own folder under it
    args.arms = {'weights': ','.join(WEIGHT_ARMS), 'all': ','.join(ARM_LABELS)}.get(args.arms, args.arms)
    unknown = [a for a in args.arms.split(',') if a not in ARM_LABELS]
    if unknown or not args.arms.startswith('l1'):
        parser.error(f'--arms: l1 first, then any of {", ".join(ARM_LABELS)}; got {args.arms}')
    if args.scale == 'gpu':
        import torch
        if not torch.cuda.is_available():
            parser.error('--scale gpu needs a CUDA GPU (torch.cuda.is_available() is False here); use --scale cpu')
    if args.jobs is None:
        args.jobs = 1 if args.scale == 'gpu' else 2
    if args.vgg_weights and not osp.isfile(args.vgg_weights):
        parser.error(f'--vgg-weights: {args.vgg_weights} does not exist')
    mode = 'quick' if args.quick else ('gpu' if args.scale == 'gpu' else 'full')
    cfg = dict(MODES[mode])
    if args.seeds:
        cfg['seeds'] = [int(s) for s in args.seeds.split(',')]
    for key in ('iters', 'baseline_iters', 'val_freq'):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    cfg['val_freq'] = min(cfg['val_freq'], cfg['iters'])
    tasks = list(TASKS) if args.task == 'all' else args.task.split(',')
    if set(tasks) - set(TASKS):
        parser.error(f'--task: comma-separated, of {", ".join(TASKS)}, or all; got {args.task}')
    workdir = osp.join(args.out, 'quality_runs', mode)
    os.makedirs(workdir, exist_ok=True)
    t0 = time.time()
    log(f'quality benchmark ({mode}): tasks {tasks}, seeds {cfg["seeds"]}, fine-tuning {cfg["iters"]} iterations '
        f'(lr {FINETUNE_LR:g}), validation every {cfg["val_freq"]}; {args.jobs} job(s) x {args.threads} thread(s); '
        f'load average {os.getloadavg()[0]:.2f}')
    ensure_data(tasks)
    sys.path.insert(0, ROOT)
    import mclir_basicsr  # noqa: F401  (before basicsr)

    # Every training (the baselines, then every fine-tuning run of every task) goes through one pool of --jobs
    # processes: a task's runs start as soon as its baseline is ready, the costliest first, so no core waits.
    inputs = {task: input_metrics(task) for task in tasks}
    base_threads = max(args.threads, 1) * (max(args.jobs, 1) if len(tasks) == 1 else 1)
    arms = args.arms.split(',')
    # arm by arm in the order given, every seed of an arm together: a run cut short still leaves whole arms, which a
    # rerun with the same --out reuses (the tables list the arms in ARM_LABELS order)
    jobs = [(task, arm, seed, None) for task in tasks for arm in arms for seed in cfg['seeds']]
    if args.sweep:
        jobs += [(task, arm, cfg['seeds'][0], changes) for task in tasks for arm, changes in SWEEP]

    def one(job):
        task, arm, seed, changes = job
        tag = '' if not changes else '_' + '_'.join(f'{k}{v}' for k, v in changes.items()).replace(' ', '')
        tag = tag.replace('[', '').replace(']', '').replace(',', '-')
        name = f'quality_{task}_{arm}{tag}_s{seed}'
        opt = make_options(task, arm, name, cfg['iters'], seed, FINETUNE_LR, cfg['val_freq'],
                           pretrain=bases[task].result()[0],
                           spn_changes=changes, batch=args.batch, scale=args.scale, vgg_weights=args.vgg_weights)
        key = hashlib.sha1(json.dumps(opt, sort_keys=True).encode()).hexdigest()[:10]
        done_path = osp.join(workdir, 'finished', f'{name}_{key}.json')
        if osp.isfile(done_path) and not args.rerun:  # same generated options: same run (CPU, 1 thread)
            with open(done_path) as f:
                took, curve = json.load(f)
            reused = True
        else:
            took, curve = run_training(opt, workdir, args.threads)
            os.makedirs(osp.dirname(done_path), exist_ok=True)
            with open(done_path, 'w') as f:
                json.dump([took, curve], f)
            reused = False
        for m in curve:  # BasicSR validates once more after the loop, with the same weights: drop it
            if any(it == cfg['iters'] for it, _ in curve[m]):
                curve[m] = [(it, v) for it, v in curve[m] if it <= cfg['iters']]
        final = {m: curve[m][-1][1] for m in ('psnr', 'ssim')}
        label = ARM_LABELS[arm] + (f' {changes}' if changes else '')
        log(f'  [{task}] {label:<45} seed {seed}: PSNR {final["psnr"]:.3f}, SSIM {final["ssim"]:.4f} ({took:.0f} s' +
            (', reused from an earlier run)' if reused else ')'))
        return {'task': task, 'arm': arm, 'seed': seed, 'sweep': changes, 'label': label, 'name': name,
                'seconds': took, 'reused': reused, 'final': final, 'curve': curve,
                'spn_opt': opt['train'].get('spn_opt'), 'history': opt['train'].get('history')}

    all_runs = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        bases = {t: pool.submit(baseline_checkpoint, t, cfg, workdir, base_threads, force=args.retrain_baseline,
                                scale=args.scale) for t in tasks}
        running, reported = set(bases.values()), set()
        while jobs or running:
            for task, fut in bases.items():
                if fut.done() and task not in reported:
                    reported.add(task)
                    inp, base_info = inputs[task], fut.result()[1]
                    beats = base_info['psnr'] - inp['psnr']
                    log(f'  [{task}] baseline {base_info["psnr"]:.3f} dB vs {TASKS[task]["input_label"]} '
                        f'{inp["psnr"]:.3f} dB: {beats:+.3f} dB' + (
                            '' if beats >= cfg['margin'] else
                            f'  WARNING: less than {cfg["margin"]} dB; raise --baseline-iters'))
            while len(running) < max(1, args.jobs):
                job = next((j for j in jobs if bases[j[0]].done()), None)
                if job is None:
                    break
                jobs.remove(job)
                running.add(pool.submit(one, job))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()  # re-raises a failed training here
                if isinstance(result, dict):
                    all_runs.append(result)
    bases = {t: f.result() for t, f in bases.items()}

    # per task: the table, the per-seed differences, the sweep
    results = {}
    for task in tasks:
        inp, (_, base_info) = inputs[task], bases[task]
        runs = [r for r in all_runs if r['task'] == task]
        main_runs = {(r['arm'], r['seed']): r for r in runs if not r['sweep']}
        summary = summarise(main_runs, sorted(arms, key=list(ARM_LABELS).index), cfg['seeds'])
        print_table(task, summary, base_info, inp, cfg['seeds'])
        sweep = [dict(label=r['label'], seed=r['seed'], psnr=r['final']['psnr'], ssim=r['final']['ssim'],
                      psnr_diff_vs_l1=r['final']['psnr'] - main_runs[('l1', r['seed'])]['final']['psnr'])
                 for r in runs if r['sweep']]
        if sweep:
            log(f'  sweep (seed {cfg["seeds"][0]}), PSNR / SSIM and PSNR minus (a) of the same seed:')
            for row in sweep:
                log(f'    {row["label"]:<55} {row["psnr"]:.3f} / {row["ssim"]:.4f}  {row["psnr_diff_vs_l1"]:+.3f} dB')
        results[task] = {'input_metrics': inp, 'baseline': base_info, 'seeds': cfg['seeds'], 'summary': summary,
                         'sweep': sweep, 'runs': runs}
    took = time.time() - t0
    log(f'\ntotal {took:.0f} s; load average {os.getloadavg()[0]:.2f} at the end')
    os.makedirs(args.out, exist_ok=True)
    summary = {'mode': mode, 'config': cfg, 'finetune_lr': FINETUNE_LR, 'baseline_lr': BASELINE_LR,
               'ratio_spn_changes': RATIO_SPN, 'jobs': args.jobs, 'threads': args.threads, 'seconds': took,
               'command': ' '.join(['benchmarks/quality.py'] + (sys.argv[1:] if argv is None else list(argv))),
               'arms': ARM_LABELS, 'results': results}
    with open(osp.join(args.out, 'quality.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    png = plot(results, osp.join(args.out, 'quality.png'))
    log(f'wrote {osp.join(args.out, "quality.json")}' + (f' and {png}' if png else ''))
    return summary


if __name__ == '__main__':
    main()
