"""The demo's report: metrics over seeds, the difference between arms paired by seed, the one line that says whether
that difference stands out of what seeds alone do, the table, and the plot of validation PSNR against iteration."""
import numpy as np


def _mean_std(values):
    """Mean and sample standard deviation (0 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(rows, seeds):
    """Per (task row, method): metrics over seeds, and SPN - baseline paired by seed. Returns ``(table rows,
    verdicts)``; a verdict is the one line that says whether the difference stands out of what seeds alone do."""
    table, verdicts = [], []
    labels = list(dict.fromkeys(r['task'] for r in rows))
    for label in labels:
        mine = [r for r in rows if r['task'] == label]
        methods = list(dict.fromkeys(r['method'] for r in mine))
        by_method = {m: {r['seed']: r for r in mine if r['method'] == m} for m in methods}
        for method in methods:
            runs = by_method[method]
            psnr, ssim = [runs[s]['psnr'] for s in sorted(runs)], [runs[s]['ssim'] for s in sorted(runs)]
            took = [runs[s]['train_s'] for s in sorted(runs) if runs[s]['train_s'] is not None]
            table.append(dict(task=label, method=method, psnr=_mean_std(psnr), ssim=_mean_std(ssim), per_seed=psnr,
                              train_s=float(np.mean(took)) if took else None, trained=bool(took)))
        trained = [m for m in methods if by_method[m][next(iter(by_method[m]))]['train_s'] is not None]
        if len(trained) < 2:
            continue
        base, arms = trained[0], trained[1:]
        for arm in arms:
            paired = [s for s in seeds if s in by_method[base] and s in by_method[arm]]
            dpsnr = [by_method[arm][s]['psnr'] - by_method[base][s]['psnr'] for s in paired]
            dssim = [by_method[arm][s]['ssim'] - by_method[base][s]['ssim'] for s in paired]
            table.append(dict(task=label, method=f'{_short(arm)} - {_short(base)}', psnr=_mean_std(dpsnr),
                              ssim=_mean_std(dssim), per_seed=dpsnr, train_s=None, trained=False, difference=True))
            verdicts.append(verdict(label, _short(arm), _short(base), dpsnr,
                                    [by_method[base][s]['psnr'] for s in paired]))
    return table, verdicts


def _short(method):
    return method.split(' (')[0]


def verdict(label, arm, base, differences, base_psnr):
    """One line: is ``arm - base`` (PSNR, paired by seed) beyond what seeds alone move ``base``? It counts as an
    effect only when every seed's difference has one sign and their mean exceeds the baseline's range over seeds."""
    mean = float(np.mean(differences))
    if len(differences) < 2:
        return (f'{label}: {arm} - {base} = {mean:+.3f} dB from one seed, which cannot separate an effect from seed '
                f'noise: run with --seeds 3 or more.')
    spread = float(max(base_psnr) - min(base_psnr))
    one_sign = all(d > 0 for d in differences) or all(d < 0 for d in differences)
    seen = (f'{label}: seeds alone move {base} over {spread:.3f} dB; {arm} - {base} is {mean:+.3f} dB on average '
            f'({min(differences):+.3f} to {max(differences):+.3f} over {len(differences)} seeds)')
    if one_sign and abs(mean) > spread:
        return f'{seen}: beyond seed noise, so at this scale {arm} {"raises" if mean > 0 else "lowers"} PSNR.'
    return f'{seen}: within seed noise, so this run cannot tell {arm} from {base}.'


def format_table(table):
    head = (f'| {"task":<24} | {"method":<26} | {"PSNR (dB)":>16} | {"SSIM":>16} | {"PSNR per seed":<23} '
            f'| {"train time":>10} |')
    lines = [head, '|' + '|'.join('-' * len(c) for c in head.split('|')[1:-1]) + '|']
    for r in table:
        sign = '+' if r.get('difference') else ''
        many = len(r['per_seed']) > 1
        psnr = f'{r["psnr"][0]:{sign}.3f}' + (f' ± {r["psnr"][1]:.3f}' if many else '')
        ssim = f'{r["ssim"][0]:{sign}.4f}' + (f' ± {r["ssim"][1]:.4f}' if many else '')
        seeds = ' '.join(f'{v:{sign}.3f}' for v in r['per_seed']) if r['trained'] or r.get('difference') else '-'
        took = f'{r["train_s"]:.0f} s' if r['train_s'] is not None else '-'
        lines.append(f'| {r["task"]:<24} | {r["method"]:<26} | {psnr:>16} | {ssim:>16} | {seeds:<23} | {took:>10} |')
    return '\n'.join(lines)


def plot_curves(curves, path):
    """One panel per task, validation PSNR vs iteration per arm; returns the path, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('(matplotlib is not installed: no curve PNG; pip install matplotlib)')
        return None
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, (task, arms) in zip(axes[0], curves.items()):
        for method, points in arms.items():
            if points:
                ax.plot(*zip(*points), marker='o', label=method)
        ax.set(title=task, xlabel='iteration', ylabel='validation PSNR (dB)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
