"""The paper's "retrain existing models" protocol on the bundled demo data, with BasicSR's training loop.

    python -m benchmarks.quality [--quick] [--task sr_x2|dn_s25|dehaze|all] [--seeds 10,11,12] [--iters N]
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
   the uncertainty loss, other fixed lambdas and the automatic lambda (``--arms weights``: fixed against automatic
   lambda).
3. Validation PSNR/SSIM (BasicSR's metrics, through its validation) every ``--val-freq`` iterations, read back
   from each run's tensorboard events. Reported: per seed, mean, spread, and the per-seed difference vs (a).

Every run is ``python -m mclir_basicsr.train -opt <generated yml>`` in its own process, with option files
generated from options/train/demo/*.yml (only name, paths, iterations, seed, learning rate, validation
frequency and, for (c), spn_opt are changed). Runs go to benchmarks/out/quality_runs/ and run ``--jobs`` at a
time, each with ``--threads`` CPU threads. The tasks, arms and option changes are in quality_arms.py, the tables
and the plot in quality_report.py.

Writes benchmarks/out/quality.json and (with matplotlib) benchmarks/out/quality.png.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from benchmarks.common import OUT_DIR, ROOT, command_line, int_list, log, run_training, write_json
from benchmarks.quality_arms import (ARM_LABELS, ARMS, BASELINE_LR, CACHE_DIR, EXTRA_ARMS, FINETUNE_LR, MODES,
                                     RATIO_SPN, SWEEP, TASKS, WEIGHT_ARMS, baseline_options, ensure_data,
                                     input_metrics, make_options)
from benchmarks.quality_report import plot, print_table, summarise


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
                             f'or "weights" (fixed against automatic lambda: {",".join(WEIGHT_ARMS)}) or "all"')
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
        cfg['seeds'] = int_list(args.seeds)
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
    summary = {'mode': mode, 'config': cfg, 'finetune_lr': FINETUNE_LR, 'baseline_lr': BASELINE_LR,
               'ratio_spn_changes': RATIO_SPN, 'jobs': args.jobs, 'threads': args.threads, 'seconds': took,
               'command': command_line('quality', argv), 'arms': ARM_LABELS, 'results': results}
    write_json(osp.join(args.out, 'quality.json'), summary, indent=1)
    png = plot(results, osp.join(args.out, 'quality.png'))
    log(f'wrote {osp.join(args.out, "quality.json")}' + (f' and {png}' if png else ''))
    return summary


if __name__ == '__main__':
    main()
