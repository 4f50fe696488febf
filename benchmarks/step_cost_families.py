"""Per-iteration cost of our DCPT, DSRIR and ConStyle training steps against steps written from the authors'
published training loops, and their peak memory.

    python -m benchmarks.step_cost_families [--families dcpt,dsrir,constyle,constyle_frozen,constyle_queue65760]
        [--iters 20] [--warmup 2] [--threads 1] [--no-memory] [--mem-repeats 3] [--no-profile]
        [--device auto|cpu|cuda]

Per family (``step_cost_family_arms.py``): ``ours``, the plugin's model class built with ``build_model`` from the
demo option file, and ``authors``, the authors' loop written in the benchmark on the same network class, the same
weights (same seed), batch and patch. ``constyle`` is the joint phase (up to ``ConStyle_iter``), ``constyle_frozen``
the phase after it, with a third arm ``ours_nograd``: ours with the frozen prompter's parameters set
``requires_grad=False`` from here, so ``ours - ours_nograd`` is what back-propagating through the frozen prompter
costs. ``constyle_queue65760`` is the joint phase with the paper's queue size instead of the demo's 512 (the
authors' enqueue deep-copies the whole queue twice per step, and their logits read a clone of it).

Timing as ``step_cost``: every round one step of every arm of the family (order rotated), the first rounds
warm-up, median seconds per step, ratio ours / authors with a 90% bootstrap interval over rounds. Peak memory:
each arm in its own process (``step_cost_measure.memory_child``: peak RSS minus the RSS before the arm is built, on
CPU), ``--mem-repeats`` processes per arm, the median. Profile: torch.profiler's top operators of one
step of each arm. Writes benchmarks/out/step_cost_families.json.
"""
import argparse
import os
import os.path as osp
import platform
import statistics
import tempfile
import time
from collections import OrderedDict

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
import torch

from benchmarks.common import OUT_DIR, command_line, cpu_model, log, write_json
from benchmarks.step_cost_family_arms import (ARM_LABELS, FAMILIES, build_family_arm, family_arms, family_batches,
                                              same_weights, step_losses)
from benchmarks.step_cost_measure import (add_machine_arguments, interleaved_times, log_machine, machine_setup,
                                          measure_memory, memory_child, step_once, top_ops)
from benchmarks.step_cost_report import bootstrap_ratio

SCRIPT = 'step_cost_families'
TARGETS = {'time': 1.0, 'memory': 1.0, 'memory_fixed_mmap': 1.0}  # ours / authors: at most
# glibc's malloc moves its mmap threshold up to the largest block freed so far, so which freed tensors go back to the
# system depends on the order of frees; a fixed threshold (every block of 128 KiB or more mmapped, returned at free)
# makes peak RSS follow the tensors the step holds.
FIXED_MMAP_ENV = {'MALLOC_MMAP_THRESHOLD_': '131072'}


def time_family(family, iters, warmup, device, workdir, profile):
    log(f'\n[{family}] building {", ".join(family_arms(family))} ...')
    models = OrderedDict((a, build_family_arm(family, a, osp.join(workdir, family, a), device))
                         for a in family_arms(family))
    same = same_weights(models['ours'], models['authors'])
    batches = family_batches(family, device)
    losses = {}
    for a in ('ours', 'authors'):  # the first step, from the same weights on the same batch: the same loss
        step_once(models[a], batches[0], 1, device)
        losses[a] = step_losses(models[a])
    times = interleaved_times(models, batches, iters, warmup, device)
    med = {a: statistics.median(v) for a, v in times.items()}
    res = {'config': {k: FAMILIES[family][k] for k in ('batch', 'patch')}, 'options': FAMILIES[family]['options'],
           'net_params': sum(p.numel() for p in models['ours'].net_g.parameters()), 'same_initial_weights': same,
           'first_step_loss': losses, 'same_loss': abs(losses['ours'] - losses['authors']) <= 1e-4 * max(
               1.0, abs(losses['authors'])),
           'median_s': med, 'q1_q3_s': {a: _quartiles(v) for a, v in times.items()}, 'samples': iters,
           'times_s': times, 'ratio': med['ours'] / med['authors'],
           'ratio_interval90': bootstrap_ratio(times, 'ours', 'authors')}
    if 'ours_nograd' in med:
        res['prompter_backward_s'] = med['ours'] - med['ours_nograd']
    if profile:
        res['profile'] = {a: top_ops(lambda m=m: step_once(m, batches[0], warmup + iters + 1, device), device)
                          for a, m in models.items()}
    return res


def _quartiles(v):
    q = statistics.quantiles(v, n=4) if len(v) >= 2 else [v[0], v[0], v[0]]
    return [q[0], q[2]]


def verdict(res):
    out = {'time': {'value': res['ratio'], 'target': f'<= {TARGETS["time"]:g}',
                    'pass': res['ratio'] <= TARGETS['time'], 'interval90': res['ratio_interval90']}}
    for key in ('memory', 'memory_fixed_mmap'):
        mem = res.get(key, {})
        if 'ours' in mem and 'authors' in mem:
            ratio = mem['ours']['peak_delta_bytes'] / mem['authors']['peak_delta_bytes']
            res[f'{key}_ratio'] = ratio
            extra = (mem['ours']['peak_delta_bytes'] - mem['authors']['peak_delta_bytes']) / 2**20
            out[key] = {'value': ratio, 'target': f'<= {TARGETS[key]:g}', 'pass': ratio <= TARGETS[key],
                        'ours_minus_authors_mib': extra}
    return out


def print_report(results):
    log('\n| family | batch x patch | ours s/step | authors\' s/step | ratio [90% interval] | ours MiB | authors\' MiB '
        '| ours MiB, fixed mmap | authors\' MiB, fixed mmap |')
    log('|---|---|---|---|---|---|---|---|---|')
    for family, res in results.items():
        m, ci = res['median_s'], res['ratio_interval90']
        mib = {f'{key}/{a}': f'{res[key][a]["peak_delta_bytes"] / 2 ** 20:.0f}' if a in res.get(key, {}) else '-'
               for key in ('memory', 'memory_fixed_mmap') for a in ('ours', 'authors')}
        interval = f' [{ci[0]:.3f}-{ci[1]:.3f}]' if ci else ''
        log(f'| {family} | {res["config"]["batch"]} x {res["config"]["patch"]} | {m["ours"]:.4f} | '
            f'{m["authors"]:.4f} | {res["ratio"]:.3f}{interval} | ' + ' | '.join(mib.values()) + ' |')
    for family, res in results.items():
        line = ', '.join(f'{k} {v["value"]:.3f} ({v["target"]}: {"PASS" if v["pass"] else "FAIL"}' +
                         (f', {v["ours_minus_authors_mib"]:+.1f} MiB)' if 'ours_minus_authors_mib' in v else ')')
                         for k, v in res['verdict'].items())
        loss = res['first_step_loss']
        log(f'  [{family}] {line}; same initial weights: {res["same_initial_weights"]}; first step\'s loss: ours '
            f'{loss["ours"]:.6g}, authors\' {loss["authors"]:.6g} ({"same" if res["same_loss"] else "DIFFERENT"})')
        if 'prompter_backward_s' in res:
            m = res['median_s']
            mem = res.get('memory', {}).get('ours_nograd')
            log(f'    ours_nograd {m["ours_nograd"]:.4f} s: back-propagating through the frozen prompter costs '
                f'{1e3 * res["prompter_backward_s"]:.1f} ms = {100 * res["prompter_backward_s"] / m["ours"]:.0f}% '
                f'of our step' + (f'; ours_nograd peak {mem["peak_delta_bytes"] / 2 ** 20:.0f} MB' if mem else ''))
        for arm, top in res.get('profile', {}).items():
            log(f'    profile {arm}: ' + ', '.join(f'{t["op"]} {t["self_ms"]:.1f} ms ({t["calls"]}x)' for t in top[:6]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--families', default=','.join(FAMILIES), help=f'comma-separated, of {", ".join(FAMILIES)}')
    parser.add_argument('--iters', type=int, default=20, help='timed rounds per family')
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds first')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory subprocesses')
    parser.add_argument('--no-profile', action='store_true', help='skip torch.profiler')
    parser.add_argument('--mem-repeats', type=int, default=3,
                        help='memory processes per arm (arms alternating); the median peak is reported')
    add_machine_arguments(parser)
    args = parser.parse_args(argv)
    args.out = args.out or OUT_DIR
    device = machine_setup(args)
    if args._memory:
        family, arm = args._memory.split(':')
        memory_child(family, arm, args.mem_steps, device, build=build_family_arm, batches_of=family_batches)
        return None
    families = [f.strip() for f in args.families.split(',') if f.strip()]
    for f in families:
        if f not in FAMILIES:
            parser.error(f'unknown family {f!r}; choose from {", ".join(FAMILIES)}')
    cpu = cpu_model()
    log_machine(device)
    t0 = time.time()
    results = OrderedDict()
    with tempfile.TemporaryDirectory() as workdir:
        for family in families:
            res = time_family(family, args.iters, args.warmup, device, workdir, not args.no_profile)
            if not args.no_memory:
                res['memory'] = measure_memory(family, family_arms(family), args.mem_steps, device, args.threads,
                                               script=SCRIPT, repeats=args.mem_repeats)
                if device == 'cpu':
                    res['memory_fixed_mmap'] = measure_memory(
                        family, family_arms(family), args.mem_steps, device, args.threads, script=SCRIPT,
                        repeats=args.mem_repeats, env=FIXED_MMAP_ENV, label=' (fixed mmap threshold)')
            res['verdict'] = verdict(res)
            results[family] = res
    print_report(results)
    took = time.time() - t0
    log(f'\ntotal {took:.0f} s; load average {os.getloadavg()[0]:.2f} at the end')
    summary = {'command': command_line(SCRIPT, argv), 'device': device, 'cpu': cpu, 'torch': torch.__version__,
               'threads': torch.get_num_threads(), 'python': platform.python_version(), 'seconds': took,
               'targets': TARGETS, 'arms': ARM_LABELS, 'results': results}
    path = osp.join(args.out, f'{SCRIPT}.json')
    write_json(path, summary, indent=1)
    log(f'wrote {path}')
    return summary


if __name__ == '__main__':
    main()
