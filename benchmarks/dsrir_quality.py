"""DSRIR at demo scale: a tiny DSRIR with its three losses vs the demo's tiny NAFNet (L1), per degradation.

    python benchmarks/dsrir_quality.py [--seeds 10,11,12] [--iters 300] [--threads 2]

Arms, each from its demo option file, same data, iterations, batch, patch size, optimiser and schedule:

* ``nafnet``: ``options/train/all_in_one/demo/train_NAFNet_AIO3_demo_baseline.yml`` (288,691 parameters, L1);
* ``dsrir``: ``train_DSRIR_AIO3_demo.yml`` (263,533 parameters; DSRIRModel: stage PSNR + uncertainty +
  0.2 x positive contrast with random VGG19 features, as no ImageNet VGG19 exists offline);
* ``dsrir_l1``: the same network trained by SRModel with L1 on its final image: what the architecture gives alone.

PSNR/SSIM on the five demo validation sets after the last iteration (tensorboard scalars), and each run's wall
time. Runs go one at a time to benchmarks/out/dsrir_runs/; results to benchmarks/out/dsrir_quality.json.
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
from dcpt_quality import absolute_roots, final_metrics  # noqa: E402  (benchmarks/ is not a package)
from quality import ROOT, log, run_training  # noqa: E402

WORK = osp.join(HERE, 'out', 'dsrir_runs')
DEMO = 'options/train/all_in_one/demo'
FILES = {'nafnet': f'{DEMO}/train_NAFNet_AIO3_demo_baseline.yml', 'dsrir': f'{DEMO}/train_DSRIR_AIO3_demo.yml',
         'dsrir_l1': f'{DEMO}/train_DSRIR_AIO3_demo.yml'}
ARMS = ('nafnet', 'dsrir_l1', 'dsrir')


def options(arm, seed, iters):
    with open(osp.join(ROOT, FILES[arm])) as f:
        opt = absolute_roots(yaml.safe_load(f))
    opt.update(name=f'{arm}_s{seed}', manual_seed=seed, num_gpu=0)
    if arm == 'dsrir_l1':
        opt['model_type'] = 'SRModel'
        for key in ('stage_uncertainty_opt', 'pocl_opt'):
            opt['train'].pop(key)
        opt['train']['pixel_opt'] = {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}
    opt['train']['total_iter'] = iters
    opt['train']['scheduler']['T_max'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(save_checkpoint_freq=10 ** 9, use_tb_logger=True, print_freq=max(1, iters // 10))
    return opt


def summarise(results, seeds):
    sets = list(results[str(seeds[0])]['nafnet'])
    table = {}
    for name in sets + ['average']:
        row = {}
        for arm in ARMS:
            row[arm] = [results[str(s)][arm][name]['psnr'] if name != 'average' else
                        statistics.mean(results[str(s)][arm][n]['psnr'] for n in sets) for s in seeds]
        for arm in ('dsrir_l1', 'dsrir'):
            diffs = [a - b for a, b in zip(row[arm], row['nafnet'])]
            row[f'{arm}_minus_nafnet'] = [statistics.mean(diffs), min(diffs), max(diffs)]
        table[name] = row
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', default='10,11,12')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(HERE, 'out', 'dsrir_quality.json'))
    args = parser.parse_args(argv)
    out_path = osp.abspath(args.out)
    seeds = [int(s) for s in args.seeds.split(',')]
    os.makedirs(WORK, exist_ok=True)
    results = {}
    for seed in seeds:
        row = {}
        for arm in ARMS:
            opt = options(arm, seed, args.iters)
            took, _ = run_training(opt, WORK, args.threads)
            row[arm] = final_metrics(opt, WORK)
            row[f'{arm}_seconds'] = took
            log(f'seed {seed} {arm}: {took:.0f} s, ' + ', '.join(f'{n} {m["psnr"]:.3f}' for n, m in row[arm].items()))
        results[str(seed)] = row
    table = summarise(results, seeds)
    report = {'command': 'python benchmarks/' + osp.basename(__file__) + ' ' + ' '.join(argv or sys.argv[1:]),
              'seeds': seeds, 'iters': args.iters, 'threads': args.threads, 'runs': results, 'psnr_table': table}
    os.makedirs(osp.dirname(out_path), exist_ok=True)
    with open(out_path, 'w') as f:
        json.dump(report, f, indent=2)
    log('| val set | NAFNet (mean) | DSRIR net, L1 (mean) | DSRIR (mean) | DSRIR net L1 - NAFNet [min, max] '
        '| DSRIR - NAFNet [min, max] |')
    log('|---' * 6 + '|')
    for name, row in table.items():
        cells = [f'{statistics.mean(row[a]):.3f}' for a in ARMS]
        pairs = (row['dsrir_l1_minus_nafnet'], row['dsrir_minus_nafnet'])
        diffs = [f'{m:+.3f} [{lo:+.3f}, {hi:+.3f}]' for m, lo, hi in pairs]
        log(f'| {name} | ' + ' | '.join(cells + diffs) + ' |')
    seconds = {a: statistics.mean(results[str(s)][f'{a}_seconds'] for s in seeds) for a in ARMS}
    log('mean training wall time per run: ' + ', '.join(f'{a} {t:.0f} s' for a, t in seconds.items()))
    log(f'wrote {out_path}')


if __name__ == '__main__':
    main()
