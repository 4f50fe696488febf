"""Shared by the demo-scale method comparisons (dsrir_quality.py, constyle_quality.py): train every arm for every
seed one run at a time, read the last validation of each all-in-one validation set, and tabulate PSNR per set with
each arm's difference to the baseline arm (mean over seeds, [min, max])."""
import json
import os
import os.path as osp
import statistics
import sys

from dcpt_quality import final_metrics
from quality import log, run_training


def run_arms(arms, options, seeds, iters, threads, workdir):
    """``{seed: {arm: {set: metrics}, arm_seconds: s}}``; ``options(arm, seed, iters)`` gives each run's dict.

    A run whose result file (``<workdir>/results/<name>.json``) exists with the same options is not run again, so an
    interrupted comparison continues where it stopped."""
    os.makedirs(osp.join(workdir, 'results'), exist_ok=True)
    results = {}
    for seed in seeds:
        row = {}
        for arm in arms:
            opt = options(arm, seed, iters)
            done = osp.join(workdir, 'results', f'{opt["name"]}.json')
            if osp.isfile(done) and json.load(open(done))['options'] == opt:
                saved = json.load(open(done))
                row[arm], row[f'{arm}_seconds'] = saved['metrics'], saved['seconds']
            else:
                took, _ = run_training(opt, workdir, threads)
                row[arm], row[f'{arm}_seconds'] = final_metrics(opt, workdir), took
                with open(done, 'w') as f:
                    json.dump({'options': opt, 'metrics': row[arm], 'seconds': took}, f)
            took = row[f'{arm}_seconds']
            log(f'seed {seed} {arm}: {took:.0f} s, ' + ', '.join(f'{n} {m["psnr"]:.3f}' for n, m in row[arm].items()))
        results[str(seed)] = row
    return results


def psnr_table(results, seeds, arms, baseline):
    """Per validation set (and their average): each arm's PSNR per seed and its difference to ``baseline``."""
    sets = list(results[str(seeds[0])][baseline])
    table = {}
    for name in sets + ['average']:
        row = {arm: [results[str(s)][arm][name]['psnr'] if name != 'average' else
                     statistics.mean(results[str(s)][arm][n]['psnr'] for n in sets) for s in seeds] for arm in arms}
        for arm in arms:
            if arm != baseline:
                diffs = [a - b for a, b in zip(row[arm], row[baseline])]
                row[f'{arm}_minus_{baseline}'] = [statistics.mean(diffs), min(diffs), max(diffs)]
        table[name] = row
    return table


def report(path, script, argv, seeds, iters, threads, results, arms, baseline, extra=None):
    """Write the JSON report and log the markdown table."""
    table = psnr_table(results, seeds, arms, baseline)
    out = {'command': f'python benchmarks/{script} ' + ' '.join(argv or sys.argv[1:]), 'seeds': seeds,
           'iters': iters, 'threads': threads, 'runs': results, 'psnr_table': table, **(extra or {})}
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(out, f, indent=2)
    others = [a for a in arms if a != baseline]
    log('| val set | ' + ' | '.join(f'{a} (mean)' for a in arms) + ' | '
        + ' | '.join(f'{a} - {baseline} [min, max]' for a in others) + ' |')
    log('|---' * (1 + len(arms) + len(others)) + '|')
    for name, row in table.items():
        cells = [f'{statistics.mean(row[a]):.3f}' for a in arms]
        cells += [f'{m:+.3f} [{lo:+.3f}, {hi:+.3f}]' for m, lo, hi in (row[f'{a}_minus_{baseline}'] for a in others)]
        log(f'| {name} | ' + ' | '.join(cells) + ' |')
    seconds = {a: statistics.mean(results[str(s)][f'{a}_seconds'] for s in seeds) for a in arms}
    log('mean training wall time per run: ' + ', '.join(f'{a} {t:.0f} s' for a, t in seconds.items()))
    log(f'wrote {path}')
