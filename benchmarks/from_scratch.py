"""The paper's protocol at CPU scale: L1 and SPN each trained from scratch on the same schedule, several seeds, on
real photographs (``photo_data.py``), until L1's validation PSNR plateaus.

    python -m benchmarks.from_scratch [--task dehaze|sr_x2|all] [--seeds 10,11,12] [--iters N] [--val-freq K]
                                      [--arms l1,spn_authors,spn_auto] [--jobs 2] [--threads 1] [--quick]
                                      [--lengths 4000,8000,12000,20000]

``--lengths`` is how each task's length was chosen: L1 alone (the first seed), one run per schedule length, each
with its own cosine decay, to see at which length a longer schedule stops paying (from_scratch_<task>_lengths.*).

Networks: a small FFA-Net for dehazing (16 features, 3 groups of 2 blocks) and a small EDSR for x2 SR (32 features,
4 blocks). Schedule (every arm): Adam 5e-4 (betas 0.9, 0.99), cosine decay to 1e-6 over ``--iters``, 48 px GT
patches, batch 4, flips and rotations. Arms:
  l1           L1 only (SRModel)
  spn_authors  L1 + SPN with the MCLIR authors' settings: four history copies refreshed every 100, 200, 500 and 1000
               iterations with decay 0.1, init_decay 0.01, lambda 0.001, VGG16 relu1_2/2_2/3_3 (0.2/0.3/0.5),
               ImageNet weights (``mclir-fetch-vgg``)
  spn_auto     the same with ``loss_weight: auto`` (lambda keeps |l_spn| at 0.03 x l_pix)
The same seed gives every arm the same initialisation and data order. Validation (BasicSR's, on the 10 validation
photos) every ``--val-freq`` iterations, read back from tensorboard. A run whose result file exists with the same
options is not run again, so an interrupted benchmark continues where it stopped.

Writes benchmarks/out/from_scratch/from_scratch[_<task>].json and .png (copy them to benchmarks/results/ to
publish).
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

from benchmarks.common import (OUT_DIR, ROOT, command_line, cpu_model, int_list, log, panels, run_training,
                               save_figure, write_json)
from benchmarks.photo_data import build as build_photo_data

VGG16 = osp.join(ROOT, 'experiments', 'pretrained_models', 'vgg16-397923af.pth')
TASKS = {
    'dehaze': dict(label='dehazing, small FFA-Net', scale=1, crop_border=0, y_channel=False, iters=12000,
                   network={'type': 'FFANet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_groups': 3,
                            'num_blocks': 2}),
    'sr_x2': dict(label='x2 SR, small EDSR', scale=2, crop_border=2, y_channel=True, iters=12000,
                  network={'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_block': 4,
                           'upscale': 2, 'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}),
}
ARMS = ('l1', 'spn_authors', 'spn_auto')
ARM_LABELS = {'l1': 'L1', 'spn_authors': "L1 + SPN, authors' lambda 0.001", 'spn_auto': 'L1 + SPN, lambda auto'}
HISTORY = {'init_decay': 0.01, 'copies': [{'period': p, 'decay': 0.1} for p in (100, 200, 500, 1000)]}
SPN = {'type': 'SPNLoss', 'form': 'subtract', 'vgg_type': 'vgg16', 'criterion': 'l1', 'use_input_norm': True,
       'layer_weights': {'relu1_2': 0.2, 'relu2_2': 0.3, 'relu3_3': 0.5}}
SPN_WEIGHT = {'spn_authors': 0.001, 'spn_auto': 'auto'}
# 48 px patches, batch 4: an SPN step (four copies, ImageNet VGG16 up to relu3_3) costs ~12 L1 steps, so this is
# what lets three seeds of every arm come near L1's plateau in about two hours a task on 2 cores
GT_SIZE, BATCH = 48, 4
# full: each task's own length (TASKS[task]['iters'], from --lengths: L1's final PSNR rose 0.49 dB (dehazing) and
# 0.32 dB (x2 SR) from half of it, then 0.20 dB more at 24000 and 0.10 dB more at 20000, less than L1's spread over
# seeds; 3 SPN seeds per arm at those lengths do not fit on 2 cores), validation every 250 iterations
MODES = {'full': dict(iters=None, val_freq=250), 'quick': dict(iters=200, val_freq=50)}
WORKDIR = osp.join(OUT_DIR, 'from_scratch')


def make_options(task, arm, seed, iters, val_freq, data, vgg_weights=VGG16):
    cfg = TASKS[task]
    metric = {'crop_border': cfg['crop_border'], 'test_y_channel': cfg['y_channel']}
    opt = {
        'name': f'scratch_{task}_{arm}_seed{seed}', 'model_type': 'SRModel' if arm == 'l1' else 'MCLIRModel',
        'scale': cfg['scale'], 'num_gpu': 0, 'manual_seed': seed,
        'datasets': {
            'train': {'name': f'photos_{task}_train', 'type': 'PairedImageDataset',
                      'dataroot_gt': osp.join(data, 'train', 'gt'), 'dataroot_lq': osp.join(data, 'train', 'lq'),
                      'io_backend': {'type': 'disk'}, 'gt_size': GT_SIZE, 'use_hflip': True, 'use_rot': True,
                      'num_worker_per_gpu': 0, 'batch_size_per_gpu': BATCH, 'dataset_enlarge_ratio': 1,
                      'prefetch_mode': None},
            'val': {'name': f'photos_{task}_val', 'type': 'PairedImageDataset',
                    'dataroot_gt': osp.join(data, 'val', 'gt'), 'dataroot_lq': osp.join(data, 'val', 'lq'),
                    'io_backend': {'type': 'disk'}}},
        'network_g': copy.deepcopy(cfg['network']),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 5e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [iters], 'restart_weights': [1],
                                'eta_min': 1e-6},
                  'total_iter': iters, 'warmup_iter': -1,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'val': {'val_freq': val_freq, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', **metric},
                            'ssim': {'type': 'calculate_ssim', **metric}}},
        'logger': {'print_freq': val_freq, 'save_checkpoint_freq': 10 ** 9, 'use_tb_logger': True,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': 'gloo', 'port': 29500},
    }
    if arm != 'l1':
        opt['train']['history'] = copy.deepcopy(HISTORY)
        opt['train']['spn_opt'] = dict(SPN, loss_weight=SPN_WEIGHT[arm], vgg_weights=vgg_weights)
    return opt


def run_one(opt, workdir, threads):
    """Train ``opt`` unless its result file holds the same options; returns {final, curve, seconds}."""
    done = osp.join(workdir, 'results', opt['name'] + '.json')
    if osp.isfile(done):
        with open(done) as f:
            saved = json.load(f)
        if saved['options'] == opt:
            return saved
    took, curve = run_training(opt, workdir, threads)
    result = {'options': opt, 'seconds': took, 'curve': curve,
              'final': {'psnr': curve['psnr'][-1][1], 'ssim': curve['ssim'][-1][1]}}
    os.makedirs(osp.dirname(done), exist_ok=True)
    with open(done, 'w') as f:
        json.dump(result, f)
    log(f'{opt["name"]}: {took:.0f} s, PSNR {result["final"]["psnr"]:.3f} dB, SSIM {result["final"]["ssim"]:.4f}')
    return result


def summarise(runs, arms, seeds, iters):
    """Per arm: final PSNR/SSIM per seed, mean and sample std, the per-seed difference to L1; L1's plateau: the mean
    gain over the last quarter of training."""
    out = {}
    for arm in arms:
        psnr = [runs[(arm, s)]['final']['psnr'] for s in seeds]
        ssim = [runs[(arm, s)]['final']['ssim'] for s in seeds]
        entry = {'psnr': psnr, 'ssim': ssim, 'psnr_mean': statistics.fmean(psnr), 'ssim_mean': statistics.fmean(ssim),
                 'psnr_std': statistics.stdev(psnr) if len(psnr) > 1 else 0.0,
                 'ssim_std': statistics.stdev(ssim) if len(ssim) > 1 else 0.0,
                 'seconds_mean': statistics.fmean(runs[(arm, s)]['seconds'] for s in seeds)}
        if arm != 'l1' and 'l1' in arms:
            diffs = [p - runs[('l1', s)]['final']['psnr'] for p, s in zip(psnr, seeds)]
            entry.update(psnr_diff=diffs, psnr_diff_mean=statistics.fmean(diffs),
                         psnr_diff_std=statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                         ssim_diff=[v - runs[('l1', s)]['final']['ssim'] for v, s in zip(ssim, seeds)])
        gains = []
        for s in seeds:
            curve = dict(runs[(arm, s)]['curve']['psnr'])
            quarter = max(it for it in curve if it <= 0.75 * iters) if any(it <= 0.75 * iters for it in curve) else None
            if quarter is not None:
                gains.append(curve[max(curve)] - curve[quarter])
        entry['last_quarter_gain'] = statistics.fmean(gains) if gains else None
        out[arm] = entry
    return out


def table(task, summary, seeds):
    lines = [f'| {task} arm | PSNR (dB), mean ± std | SSIM, mean ± std | PSNR per seed ({", ".join(map(str, seeds))}) '
             f'| minus L1, per seed | gain over the last quarter | s per run |', '|---|---|---|---|---|---|---|']
    for arm, e in summary.items():
        diff = ' '.join(f'{d:+.3f}' for d in e['psnr_diff']) if 'psnr_diff' in e else '-'
        gain = f'{e["last_quarter_gain"]:+.3f} dB' if e['last_quarter_gain'] is not None else '-'
        lines.append(f'| {ARM_LABELS[arm]} | {e["psnr_mean"]:.3f} ± {e["psnr_std"]:.3f} | {e["ssim_mean"]:.4f} ± '
                     f'{e["ssim_std"]:.4f} | {" ".join(f"{p:.3f}" for p in e["psnr"])} | {diff} | {gain} | '
                     f'{e["seconds_mean"]:.0f} |')
    return '\n'.join(lines)


def length_table(task, runs):
    """``runs``: {iterations: run}; one row per schedule length, L1 alone."""
    lines = [f'| {task}: L1 trained for | final PSNR (dB) | SSIM | gain over the last quarter | s per run |',
             '|---|---|---|---|---|']
    for iters, run in sorted(runs.items()):
        gain = summarise({('l1', 0): run}, ['l1'], [0], iters)['l1']['last_quarter_gain']
        gain = f'{gain:+.3f} dB' if gain is not None else '-'
        lines.append(f'| {iters} iterations | {run["final"]["psnr"]:.3f} | {run["final"]["ssim"]:.4f} | {gain} | '
                     f'{run["seconds"]:.0f} |')
    return '\n'.join(lines)


def plot_lengths(task, runs, path):
    drawn = panels(1)
    if drawn is None:
        return None
    plt, fig, (ax,) = drawn
    for iters, run in sorted(runs.items()):
        ax.plot(*zip(*run['curve']['psnr']), lw=1.2, label=f'{iters} iterations (cosine to 1e-6 over them)')
    ax.set(title=f'{TASKS[task]["label"]}: L1 from scratch, one schedule length per line',
           xlabel='iteration', ylabel='validation PSNR (dB), 10 photos')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(plt, fig, path)


def run_lengths(tasks, lengths, seed, val_freq, data, args, argv):
    """L1 at each schedule length; each length trains in its own folder (the run names are the same)."""
    workdir = osp.abspath(args.workdir)
    jobs = [(task, n) for task in tasks for n in lengths]
    log(f'{len(jobs)} L1 runs (seed {seed}, {", ".join(map(str, lengths))} iterations), {args.jobs} at a time')
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {(task, n): pool.submit(run_one, make_options(task, 'l1', seed, n, val_freq, data[task]),
                                          osp.join(workdir, 'lengths', str(n)), args.threads)
                   for task, n in jobs}
        runs = {job: future.result() for job, future in futures.items()}
    for task in tasks:
        mine = {n: runs[(task, n)] for n in lengths}
        log(f'\n{TASKS[task]["label"]}: how long L1 needs (seed {seed})\n' + length_table(task, mine))
        out = osp.join(workdir, f'from_scratch_{task}_lengths.json')
        write_json(out, {'command': command_line('from_scratch', argv), 'cpu': cpu_model(), 'seed': seed,
                         'val_freq': val_freq, 'runs': [{'iters': n, 'seconds': r['seconds'], 'final': r['final'],
                                                         'curve': r['curve']} for n, r in sorted(mine.items())]},
                   indent=1)
        png = plot_lengths(task, mine, osp.join(workdir, f'from_scratch_{task}_lengths.png'))
        log(f'wrote {out}' + (f' and {png}' if png else ''))
    return 0


def plot(results, path):
    """Validation PSNR against iteration, a panel per task, a line per run, a colour per arm."""
    drawn = panels(len(results))
    if drawn is None:
        return None
    plt, fig, axes = drawn
    colors = dict(zip(ARMS, plt.get_cmap('tab10').colors))
    for ax, (task, res) in zip(axes, results.items()):
        for run in res['runs']:
            label = ARM_LABELS[run['arm']] if run['seed'] == res['seeds'][0] else None
            ax.plot(*zip(*run['curve']['psnr']), color=colors[run['arm']], lw=1.2, alpha=0.8, label=label)
        ax.set(title=f'{TASKS[task]["label"]}, from scratch ({len(res["seeds"])} seeds, one line each)',
               xlabel='iteration', ylabel='validation PSNR (dB), 10 photos')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(plt, fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=list(TASKS) + ['all'], default='all')
    parser.add_argument('--seeds', default='10,11,12')
    parser.add_argument('--arms', help=f'default {",".join(ARMS)}')
    parser.add_argument('--iters', type=int)
    parser.add_argument('--val-freq', type=int)
    parser.add_argument('--jobs', type=int, default=2, help='runs at a time')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads per run')
    parser.add_argument('--quick', action='store_true', help=f'{MODES["quick"]["iters"]} iterations, to try it out')
    parser.add_argument('--vgg-weights', default=VGG16)
    parser.add_argument('--workdir', default=WORKDIR)
    parser.add_argument('--lengths', type=int_list,
                        help='L1 alone (first seed) at each of these schedule lengths, e.g. 4000,8000,12000,20000')
    args = parser.parse_args(argv)
    mode = MODES['quick' if args.quick else 'full']
    val_freq = args.val_freq or mode['val_freq']
    iters = {task: args.iters or mode['iters'] or TASKS[task]['iters'] for task in TASKS}
    seeds = int_list(args.seeds)
    if args.lengths and (args.iters or args.quick or args.arms not in (None, 'l1')):
        parser.error('--lengths trains L1 alone at the lengths it names: leave out --arms, --iters and --quick')
    arms = [a for a in (args.arms or ','.join(ARMS)).split(',') if a]
    if set(arms) - set(ARMS):
        parser.error(f'--arms: choose from {",".join(ARMS)}')
    if not args.lengths and any(a != 'l1' for a in arms) and not osp.isfile(args.vgg_weights):
        sys.exit(f'from_scratch: {args.vgg_weights}: no ImageNet VGG16 file; run mclir-fetch-vgg first.')
    tasks = list(TASKS) if args.task == 'all' else [args.task]
    workdir = osp.abspath(args.workdir)
    jobs = [(task, arm, seed) for task in tasks for arm in arms for seed in seeds]
    data = {task: build_photo_data(task) for task in tasks}
    if args.lengths:
        return run_lengths(tasks, args.lengths, seeds[0], val_freq, data, args, argv)
    for task, folder in data.items():
        val = len(os.listdir(osp.join(folder, 'val', 'gt')))
        if val < 10:
            log(f'{task}: only {val} validation images; apt-get install lomiri-wallpapers-16.04 mate-backgrounds '
                f'brings 25 more photographs (10 validation images in all).')
    log(f'{len(jobs)} runs ({", ".join(f"{t}: {iters[t]} iterations" for t in tasks)}), {args.jobs} at a time with '
        f'{args.threads} thread(s) each, on {cpu_model()}')
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {job: pool.submit(run_one, make_options(job[0], job[1], job[2], iters[job[0]], val_freq,
                                                          data[job[0]], osp.abspath(args.vgg_weights)),
                                    workdir, args.threads)
                   for job in jobs}
        runs = {job: future.result() for job, future in futures.items()}
    results = {}
    for task in tasks:
        mine = {(arm, seed): runs[(task, arm, seed)] for arm in arms for seed in seeds}
        summary = summarise(mine, arms, seeds, iters[task])
        log(f'\n{TASKS[task]["label"]}: validation after {iters[task]} iterations from scratch (BasicSR metrics)\n'
            + table(task, summary, seeds))
        results[task] = {'summary': summary, 'seeds': seeds, 'iters': iters[task], 'val_freq': val_freq,
                         'runs': [{'arm': arm, 'seed': seed, 'seconds': r['seconds'], 'final': r['final'],
                                   'curve': r['curve']} for (arm, seed), r in mine.items()]}
    os.makedirs(workdir, exist_ok=True)
    stem = 'from_scratch' if args.task == 'all' else f'from_scratch_{args.task}'
    out = osp.join(workdir, stem + '.json')
    write_json(out, {'command': command_line('from_scratch', argv), 'cpu': cpu_model(), 'jobs': args.jobs,
                     'threads': args.threads, 'results': results}, indent=1)
    png = plot(results, osp.join(workdir, stem + '.png'))
    log(f'wrote {out}' + (f' and {png}' if png else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
