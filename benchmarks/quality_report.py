"""``quality.py``'s report: per arm over seeds (mean, spread, difference to L1), the table it prints and the plot of
validation PSNR against iteration."""
import statistics

from benchmarks.common import SPN_SCALARS, log, pyplot
from benchmarks.quality_arms import ARM_LABELS, TASKS


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
    """The task's table: per arm and seed PSNR / SSIM, mean, std and the mean difference to (a) L1."""
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
    """Validation PSNR against fine-tuning iteration, a panel per task, a colour per arm; returns the path (None
    without matplotlib)."""
    plt = pyplot()
    if plt is None:
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
