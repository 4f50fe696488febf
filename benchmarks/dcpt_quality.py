"""DCPT at demo scale: all-in-one fine-tuning from DCPT pre-training vs from scratch, same iterations, per degradation.

    python benchmarks/dcpt_quality.py [--seeds 10,11,12] [--pretrain-iters 150] [--iters 300] [--threads 2]

For each seed (``manual_seed``; data order, crops and noise follow it):

1. ``options/train/dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml``: DCPT pre-training of the demo's tiny NAFNet
   (``--pretrain-iters``), classifier accuracy from its validation;
2. ``from_dcpt``: ``train_NAFNet_AIO3_demo_from_DCPT.yml`` (L1, ``--iters``) from that net_g;
3. ``scratch``: ``options/train/all_in_one/demo/train_NAFNet_AIO3_demo_baseline.yml`` (the same file without the
   pre-trained weights), same iterations, learning rate and schedule.

PSNR/SSIM on the five demo validation sets (noise sigma 15/25/50, rain, haze) after the last iteration, read from
each run's tensorboard scalars. The pre-training's extra compute is not matched: this measures what DCPT's
initialisation gives at a fixed fine-tuning budget, as the DCPT paper compares. Runs go one at a time to
benchmarks/out/dcpt_runs/; results to benchmarks/out/dcpt_quality.json (``--out`` to change).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

import yaml

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
from quality import ROOT, log, read_curve, run_training  # noqa: E402  (benchmarks/ is not a package)

WORK = osp.join(HERE, 'out', 'dcpt_runs')
FILES = {
    'pretrain': 'options/train/dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml',
    'from_dcpt': 'options/train/dcpt/demo/train_NAFNet_AIO3_demo_from_DCPT.yml',
    'scratch': 'options/train/all_in_one/demo/train_NAFNet_AIO3_demo_baseline.yml',
}
ARMS = ('scratch', 'from_dcpt')


def absolute_roots(opt):
    """Every dataroot of an all-in-one option dict made absolute (runs happen in their own folder)."""
    for ds in opt['datasets'].values():
        for task in ds.get('tasks', []):
            for key in ('dataroot', 'dataroot_gt', 'dataroot_lq'):
                if isinstance(task.get(key), str) and not osp.isabs(task[key]):
                    task[key] = osp.join(ROOT, task[key])
    return opt


def options(kind, seed, iters, pretrain=None):
    with open(osp.join(ROOT, FILES[kind])) as f:
        opt = absolute_roots(yaml.safe_load(f))
    opt.update(name=f'{kind}_s{seed}', manual_seed=seed, num_gpu=0)
    opt['path']['pretrain_network_g'] = pretrain
    opt['train']['total_iter'] = iters
    opt['train']['scheduler']['T_max'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(save_checkpoint_freq=10 ** 9, use_tb_logger=True, print_freq=max(1, iters // 10))
    return opt


def final_metrics(opt, workdir=WORK):
    """``{val set: {metric: value at the last validation}}`` from the run's tensorboard events."""
    tb_dir = osp.join(workdir, 'tb_logger', opt['name'])
    out = {}
    for key, ds in opt['datasets'].items():
        if key.startswith('val'):
            curve = read_curve(tb_dir, ds['name'])
            out[ds['name']] = {m: values[-1][1] for m, values in curve.items()}
    return out


def pretrain_accuracy(opt):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(osp.join(WORK, 'tb_logger', opt['name']), size_guidance={'scalars': 0})
    acc.Reload()
    tags = [t for t in acc.Tags()['scalars'] if t.endswith('/accuracy')]
    return {t.split('/')[1]: acc.Scalars(t)[-1].value for t in tags}


def summarise(results, seeds):
    sets = list(results[str(seeds[0])]['scratch'])
    table = {}
    for name in sets + ['average']:
        row = {}
        for arm in ARMS:
            vals = [results[str(s)][arm][name]['psnr'] if name != 'average' else
                    statistics.mean(results[str(s)][arm][n]['psnr'] for n in sets) for s in seeds]
            row[arm] = vals
        diffs = [a - b for a, b in zip(row['from_dcpt'], row['scratch'])]
        row['diff_mean'], row['diff_min'], row['diff_max'] = statistics.mean(diffs), min(diffs), max(diffs)
        table[name] = row
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', default='10,11,12')
    parser.add_argument('--pretrain-iters', type=int, default=150)
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(HERE, 'out', 'dcpt_quality.json'))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(',')]
    os.makedirs(WORK, exist_ok=True)
    results = {}
    for seed in seeds:
        pre = options('pretrain', seed, args.pretrain_iters)
        took, _ = run_training(pre, WORK, args.threads)
        ckpt = osp.join(WORK, 'experiments', pre['name'], 'models', 'net_g_latest.pth')
        row = {'pretrain_seconds': took, 'pretrain_accuracy': pretrain_accuracy(pre)}
        log(f'seed {seed}: DCPT pre-training {took:.0f} s, classifier accuracy {row["pretrain_accuracy"]}')
        for arm in ARMS:
            opt = options(arm, seed, args.iters, pretrain=ckpt if arm == 'from_dcpt' else None)
            took, _ = run_training(opt, WORK, args.threads)
            row[arm] = final_metrics(opt)
            row[f'{arm}_seconds'] = took
            log(f'seed {seed} {arm}: {took:.0f} s, ' + ', '.join(f'{n} {m["psnr"]:.3f}' for n, m in row[arm].items()))
        results[str(seed)] = row
    table = summarise(results, seeds)
    report = {'command': 'python benchmarks/' + osp.basename(__file__) + ' ' + ' '.join(argv or sys.argv[1:]),
              'seeds': seeds, 'pretrain_iters': args.pretrain_iters, 'iters': args.iters, 'runs': results,
              'psnr_table': table}
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)
    log('| val set | ' + ' | '.join(f'scratch s{s}' for s in seeds) + ' | ' + ' | '.join(f'DCPT s{s}' for s in seeds)
        + ' | DCPT - scratch mean [min, max] |')
    log('|---' * (2 * len(seeds) + 2) + '|')
    for name, row in table.items():
        log(f'| {name} | ' + ' | '.join(f'{v:.3f}' for v in row['scratch'] + row['from_dcpt'])
            + f' | {row["diff_mean"]:+.3f} [{row["diff_min"]:+.3f}, {row["diff_max"]:+.3f}] |')
    log(f'wrote {args.out}')


if __name__ == '__main__':
    main()
