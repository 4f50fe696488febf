"""DCPT at demo scale: all-in-one fine-tuning from DCPT pre-training vs from scratch, same iterations, per degradation.

    python -m benchmarks.dcpt_quality [--seeds 10,11,12] [--pretrain-iters 150] [--iters 300] [--threads 2]

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
import os
import os.path as osp

from benchmarks.common import (OUT_DIR, command_line, final_metrics, int_list, log, psnr_table, read_options,
                               run_training, set_length, tb_scalars, write_json)

WORK = osp.join(OUT_DIR, 'dcpt_runs')
FILES = {
    'pretrain': 'options/train/dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml',
    'from_dcpt': 'options/train/dcpt/demo/train_NAFNet_AIO3_demo_from_DCPT.yml',
    'scratch': 'options/train/all_in_one/demo/train_NAFNet_AIO3_demo_baseline.yml',
}
ARMS = ('scratch', 'from_dcpt')


def options(kind, seed, iters, pretrain=None):
    opt = read_options(FILES[kind])
    opt.update(name=f'{kind}_s{seed}', manual_seed=seed, num_gpu=0)
    opt['path']['pretrain_network_g'] = pretrain
    return set_length(opt, iters, prints=10)


def pretrain_accuracy(opt):
    """The degradation classifier's accuracy per validation set at the pre-training's last validation."""
    scalars = tb_scalars(osp.join(WORK, 'tb_logger', opt['name']))
    return {tag.split('/')[1]: points[-1][1] for tag, points in scalars.items() if tag.endswith('/accuracy')}


def summarise(results, seeds):
    """:func:`benchmarks.common.psnr_table`, the difference named ``diff_mean``, ``diff_min``, ``diff_max``."""
    table = psnr_table(results, seeds, ARMS, 'scratch')
    for row in table.values():
        row['diff_mean'], row['diff_min'], row['diff_max'] = row.pop('from_dcpt_minus_scratch')
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', default='10,11,12')
    parser.add_argument('--pretrain-iters', type=int, default=150)
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(OUT_DIR, 'dcpt_quality.json'))
    args = parser.parse_args(argv)
    seeds = int_list(args.seeds)
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
            row[arm] = final_metrics(opt, WORK)
            row[f'{arm}_seconds'] = took
            log(f'seed {seed} {arm}: {took:.0f} s, ' + ', '.join(f'{n} {m["psnr"]:.3f}' for n, m in row[arm].items()))
        results[str(seed)] = row
    table = summarise(results, seeds)
    write_json(args.out, {'command': command_line('dcpt_quality', argv), 'seeds': seeds,
                          'pretrain_iters': args.pretrain_iters, 'iters': args.iters, 'runs': results,
                          'psnr_table': table}, indent=2)
    log('| val set | ' + ' | '.join(f'scratch s{s}' for s in seeds) + ' | ' + ' | '.join(f'DCPT s{s}' for s in seeds)
        + ' | DCPT - scratch mean [min, max] |')
    log('|---' * (2 * len(seeds) + 2) + '|')
    for name, row in table.items():
        log(f'| {name} | ' + ' | '.join(f'{v:.3f}' for v in row['scratch'] + row['from_dcpt'])
            + f' | {row["diff_mean"]:+.3f} [{row["diff_min"]:+.3f}, {row["diff_max"]:+.3f}] |')
    log(f'wrote {args.out}')


if __name__ == '__main__':
    main()
