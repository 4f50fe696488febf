"""``step_cost.py``'s report: ratios of medians with bootstrap intervals, the verdict per target, the printed tables
and the bar plot."""
import random
import statistics
from collections import OrderedDict

from benchmarks.common import log, pyplot
from benchmarks.step_cost_arms import ARMS, EXTRA_ARMS, MCLIR_ARMS, TARGETS


def bootstrap_ratio(times, num, den, reps=2000, seed=0):
    """90% interval of median(num)/median(den), resampling whole rounds (the arms of a round ran together)."""
    rng = random.Random(seed)
    a, b = times[num], times[den]
    n = len(a)
    if n < 3:
        return None
    vals = []
    for _ in range(reps):
        idx = [rng.randrange(n) for _ in range(n)]
        vals.append(statistics.median(a[i] for i in idx) / statistics.median(b[i] for i in idx))
    vals.sort()
    return [vals[int(0.05 * reps)], vals[int(0.95 * reps) - 1]]


def evaluate(res):
    """A net's ratios (time, refresh, memory) and the verdict per target; adds ``ratio_interval90`` to ``res``."""
    m, r = res['median_s'], res['refresh_median_s']
    ratios = OrderedDict()
    intervals = OrderedDict()
    for num, den in (('B', 'A'), ('C', 'A'), ('D', 'A'), ('C', 'B'), ('D', 'B'), ('C', 'E1'), ('D', 'E4'),
                     ('E1', 'B'), ('E4', 'B'), ('C0', 'B'), ('D0', 'B'), ('C', 'C0'), ('D', 'D0'), ('Ds', 'B'),
                     ('Ds', 'D'), ('Cb', 'C'), ('Cf', 'C'), ('Cc', 'C'), ('F', 'F0'), ('F', 'B'), ('F0', 'B')):
        if num in m and den in m:
            ratios[f'{num}/{den}'] = m[num] / m[den]
            intervals[f'{num}/{den}'] = bootstrap_ratio(res['times_s'], num, den)
    for a in MCLIR_ARMS + ('E1', 'E4'):
        if a in r and a in m:
            ratios[f'refresh_{a}'] = r[a] / m[a]
    mem = res.get('memory', {})
    if 'B' in mem and 'C' in mem:
        b, c = mem['B']['peak_delta_bytes'], mem['C']['peak_delta_bytes']
        ratios['mem_C'] = c / (b + mem['C']['copies_nbytes'])
    if 'F' in mem and 'F0' in mem:
        ratios['mem_F/F0'] = mem['F']['peak_delta_bytes'] / mem['F0']['peak_delta_bytes']
    if 'B' in mem and 'D' in mem:
        ratios['mem_D'] = mem['D']['peak_delta_bytes'] / (mem['B']['peak_delta_bytes'] + mem['D']['copies_nbytes'])
    verdict = OrderedDict()
    for key, limit in TARGETS.items():
        if key in ratios:
            ok = ratios[key] < limit if key in ('C/E1', 'D/E4') else ratios[key] <= limit
            ci = intervals.get(key)
            verdict[key] = {'value': ratios[key], 'target': ('< ' if key in ('C/E1', 'D/E4') else '<= ') + f'{limit:g}',
                            'pass': bool(ok), 'interval90': ci,
                            'within_noise': bool(ci is not None and ci[0] <= limit <= ci[1])}
    res['ratio_interval90'] = intervals
    return ratios, verdict


def print_report(results):
    log('\nMedian seconds per training step (interquartile range), arms interleaved in one process:')
    shown = [a for a in ARMS + EXTRA_ARMS if any(a in r['median_s'] for r in results.values())]
    log(f'{"net":<13}' + ''.join(f'{a:>20}' for a in shown))
    for net, res in results.items():
        row = f'{net:<13}'
        for a in shown:
            if a in res['median_s']:
                q1, q3 = res['q1_q3_s'][a]
                row += f'{res["median_s"][a]:.3f} ({q1:.3f}-{q3:.3f})'.rjust(20)
            else:
                row += f'{"-":>20}'
        log(row)
    log('\nRatios of medians and targets:')
    for net, res in results.items():
        log(f'  [{net}] batch {res["config"]["batch"]}, GT {res["config"]["gt"]} px (LQ {res["lq_patch"]} px), '
            f'x{res["config"]["scale"]}, {res["net_params"] / 1e3:.0f}k params, {res["samples"]} timed steps per arm')
        ci = res.get('ratio_interval90', {})
        shown = [(k, v) for k, v in res['ratios'].items() if not k.startswith(('refresh', 'mem'))]
        log('    ' + ', '.join(f'{k} {v:.3f}' + (f' [{ci[k][0]:.3f}-{ci[k][1]:.3f}]' if ci.get(k) else '')
                               for k, v in shown))
        log('    (brackets: 90% bootstrap interval over rounds)')
        rf = res['refresh_median_s']
        log('    refresh of all copies: ' + ', '.join(
            f'{a} {rf[a] * 1e3:.2f} ms = {100 * res["ratios"]["refresh_" + a]:.2f}% of a step' for a in rf))
        if 'memory' in res:
            mem = res['memory']
            how = next(iter(mem.values()))['how'] if mem else ''
            log(f'    peak memory over the steps ({how}): ' + ', '.join(
                f'{a} +{v["peak_delta_bytes"] / 2 ** 20:.1f} MiB' for a, v in mem.items()) +
                '; copies: ' + ', '.join(f'{a} {v["copies_nbytes"] / 2 ** 20:.2f} MiB' for a, v in mem.items()
                                         if v['copies_nbytes']))
        for key, v in res['verdict'].items():
            label = {'mem_C': 'peak(C) / (peak(B) + copies)'}.get(key, key)
            note = ' (target inside the 90% interval: within noise)' if v.get('within_noise') else ''
            log(f'    {label:<30} {v["value"]:8.3f}  target {v["target"]:<7} {"PASS" if v["pass"] else "FAIL"}{note}')
        if res.get('same_loss_check'):
            s = res['same_loss_check']
            log(f'    same loss check (C vs E on one tensor): SPN {s["spn"]:.6g}, '
                f'authors\' style {s["authors_style"]:.6g}'
                f' -> {"identical" if s["ok"] else "DIFFERENT"}')


def plot(results, path):
    """Bars of median s/step (IQR) per arm, a panel per net, each labelled with its ratio to B."""
    plt = pyplot()
    if plt is None:
        return None
    nets = list(results)
    fig, axes = plt.subplots(1, len(nets), figsize=(5 * len(nets), 4.2), squeeze=False)
    colors = {'A': '#999999', 'B': '#4c72b0', 'C': '#55a868', 'D': '#2d6a3e', 'E1': '#dd8452', 'E4': '#a0522d',
              'C0': '#b7dfc0', 'D0': '#8fb89a', 'Ds': '#c4e3a0', 'Cb': '#8172b3', 'Cf': '#64b5cd', 'Cc': '#da8bc3',
              'F': '#937860', 'F0': '#c9b29b'}
    for ax, net in zip(axes[0], nets):
        res = results[net]
        arms = [a for a in ARMS + EXTRA_ARMS if a in res['median_s']]
        med = [res['median_s'][a] for a in arms]
        err = [[res['median_s'][a] - res['q1_q3_s'][a][0] for a in arms],
               [res['q1_q3_s'][a][1] - res['median_s'][a] for a in arms]]
        ax.bar(arms, med, color=[colors[a] for a in arms], yerr=err, capsize=3)
        for i, a in enumerate(arms):
            if 'B' in res['median_s']:
                ax.text(i, med[i], f'{med[i] / res["median_s"]["B"]:.2f}xB', ha='center', va='bottom', fontsize=8)
        c = res['config']
        ax.set_title(f'{net}: batch {c["batch"]}, GT {c["gt"]} px, x{c["scale"]}')
        ax.set_ylabel('median s / step (IQR bars)')
    fig.suptitle('Training step cost (CPU)' if next(iter(results.values())).get('device') != 'cuda'
                 else 'Training step cost (CUDA)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
