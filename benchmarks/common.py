"""What the benchmark scripts share: paths, logging, a training through the entry point, reading a run back from its
tensorboard events, comparing arms over seeds (runs, tables, the results JSON), plots and the machine's name."""
import json
import os
import os.path as osp
import platform
import shutil
import statistics
import subprocess
import sys
import time

import yaml

BENCH_DIR = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(BENCH_DIR)
OUT_DIR = osp.join(BENCH_DIR, 'out')  # git-ignored; the numbers the README quotes are copied to results/
SPN_SCALARS = ('spn_ratio', 'spn_weight')  # |l_spn| / l_rec and the lambda in use, logged every print_freq


def log(msg):
    sys.stdout.write(msg + '\n')  # one write: the pool's threads log concurrently, print() could interleave lines
    sys.stdout.flush()


def int_list(text):
    """``--seeds 10,11,12`` -> ``[10, 11, 12]`` (empty items ignored)."""
    return [int(s) for s in text.split(',') if s.strip()]


def command_line(script, argv=None):
    """How this run was started, for the results JSON: ``python -m benchmarks.<script> <arguments>``."""
    return ' '.join(['python', '-m', f'benchmarks.{script}'] + list(sys.argv[1:] if argv is None else argv))


def write_json(path, obj, indent):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=indent)


def absolute_roots(opt, root=ROOT):
    """Every data folder of an option dict (datasets and their all-in-one ``tasks``) made absolute under ``root``:
    the runs train in their own folders."""
    for ds in opt['datasets'].values():
        for entry in [ds] + ds.get('tasks', []):
            for key in ('dataroot_gt', 'dataroot_lq', 'dataroot'):
                if isinstance(entry.get(key), str) and not osp.isabs(entry[key]):
                    entry[key] = osp.join(root, entry[key])
    return opt


def read_options(path):
    """The option file at ``path`` (relative to the repository), its data folders made absolute."""
    with open(osp.join(ROOT, path)) as f:
        return absolute_roots(yaml.safe_load(f))


def set_length(opt, iters, prints):
    """``opt`` trains ``iters`` iterations (its scheduler's ``T_max`` too), validates at the end, logs ``prints``
    times (tensorboard included) and saves only the final weights."""
    opt['train']['total_iter'] = iters
    opt['train']['scheduler']['T_max'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(save_checkpoint_freq=10 ** 9, use_tb_logger=True, print_freq=max(1, iters // prints))
    return opt


def entry_env(threads):
    """The environment of an entry point's process: this checkout importable, ``threads`` CPU threads."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        env[var] = str(threads)
    return env


# ------------------------------------------------------------------------------------------------ one training
def run_training(opt, workdir, threads):
    """Train ``opt`` with our entry point (``python -m mclir_basicsr.train``) in ``workdir``, in its own process.

    Returns (seconds, validation curve of ``datasets.val`` as :func:`read_curve` gives it, or {} without one)."""
    name = opt['name']
    for sub in ('experiments', 'tb_logger'):
        shutil.rmtree(osp.join(workdir, sub, name), ignore_errors=True)
    os.makedirs(osp.join(workdir, 'options'), exist_ok=True)
    opt_path = osp.join(workdir, 'options', f'{name}.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    log_path = osp.join(workdir, 'logs', f'{name}.log')
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    start = time.time()
    with open(log_path, 'w') as out:
        proc = subprocess.run([sys.executable, '-m', 'mclir_basicsr.train', '-opt', opt_path], cwd=workdir,
                              env=entry_env(threads), stdout=out, stderr=subprocess.STDOUT)
    took = time.time() - start
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = ''.join(f.readlines()[-25:])
        raise RuntimeError(f'training {name} failed (exit {proc.returncode}); log {log_path}:\n{tail}')
    val = opt['datasets'].get('val')  # option files with several validation sets read their own curves
    return took, read_curve(osp.join(workdir, 'tb_logger', name), val['name']) if val else {}


def tb_scalars(tb_dir):
    """``{tag: [(step, value), ...]}`` of every scalar in a run's tensorboard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(tb_dir, size_guidance={'scalars': 0})
    acc.Reload()
    return {tag: [(int(e.step), float(e.value)) for e in acc.Scalars(tag)] for tag in acc.Tags().get('scalars', [])}


def read_curve(tb_dir, dataset):
    """{metric: [(iter, value), ...]} from BasicSR's tensorboard scalars ``metrics/<dataset>/<metric>``, and SPN's
    ratio and weight where logged."""
    scalars = tb_scalars(tb_dir)
    tags = {f'metrics/{dataset}/{metric}': metric for metric in ('psnr', 'ssim')}
    tags.update({name: name for name in SPN_SCALARS})
    return {key: scalars[tag] for tag, key in tags.items() if tag in scalars}


def final_metrics(opt, workdir):
    """``{val set: {metric: value at the last validation}}`` from the run's tensorboard events."""
    tb_dir = osp.join(workdir, 'tb_logger', opt['name'])
    out = {}
    for key, ds in opt['datasets'].items():
        if key.startswith('val'):
            curve = read_curve(tb_dir, ds['name'])
            out[ds['name']] = {m: values[-1][1] for m, values in curve.items()}
    return out


# ------------------------------------------------------------------------------------------------ arms over seeds
def run_arms(arms, options, seeds, iters, threads, workdir):
    """Train every arm for every seed, one run at a time, and read the last validation of every validation set.

    ``options(arm, seed, iters)`` gives each run's option dict. Returns ``{seed: {arm: {set: metrics},
    arm_seconds: s}}``. A run whose result file (``<workdir>/results/<name>.json``) exists with the same options is
    not run again, so an interrupted comparison continues where it stopped."""
    os.makedirs(osp.join(workdir, 'results'), exist_ok=True)
    results = {}
    for seed in seeds:
        row = {}
        for arm in arms:
            opt = options(arm, seed, iters)
            done = osp.join(workdir, 'results', f'{opt["name"]}.json')
            saved = None
            if osp.isfile(done):
                with open(done) as f:
                    saved = json.load(f)
            if saved is not None and saved['options'] == opt:
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
    """Per validation set (and their average): each arm's PSNR per seed and, for the other arms, the difference to
    ``baseline`` as ``<arm>_minus_<baseline>: [mean, min, max]`` over seeds."""
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
    """Write the results JSON of :func:`run_arms`'s comparison and log its markdown table."""
    table = psnr_table(results, seeds, arms, baseline)
    out = {'command': command_line(script, argv), 'seeds': seeds, 'iters': iters, 'threads': threads,
           'runs': results, 'psnr_table': table, **(extra or {})}
    write_json(path, out, indent=2)
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


# ------------------------------------------------------------------------------------------------ plots, machine
def pyplot():
    """matplotlib's pyplot on the Agg backend, or None (with a note) when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        log('matplotlib is not installed: no PNG (pip install matplotlib, or the "bench" extra).')
        return None
    return plt


def panels(count, width=6.5, height=4.5):
    """``(plt, fig, axes)``: one row of ``count`` panels; ``None`` without matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    return plt, fig, axes[0]


def save_figure(plt, fig, path, dpi=110):
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def cpu_model():
    """``lscpu``'s model name, else ``platform.processor()``."""
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith('Model name:'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'
