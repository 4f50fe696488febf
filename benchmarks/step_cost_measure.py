"""How ``step_cost.py`` measures: interleaved timing of the arms' steps and of a refresh, the parts of a step in
isolation (profile), and each arm's peak memory in its own process."""
import argparse
import gc
import json
import logging
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
import torch
from basicsr.utils import get_root_logger

from benchmarks.common import ROOT, cpu_model, log
from benchmarks.step_cost_arms import MCLIR_ARMS, NETS, build_arm, check_same_loss, copies_nbytes, make_batches


def add_machine_arguments(parser, threads_help='torch CPU threads (default 1; 0 = torch default)'):
    """The options both step benchmarks share: memory steps, device, threads, output folder, the memory child."""
    parser.add_argument('--mem-steps', type=int, default=3)
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    parser.add_argument('--threads', type=int, default=1, help=threads_help)
    parser.add_argument('--out', default=None)
    parser.add_argument('--_memory', default=None, help=argparse.SUPPRESS)


def machine_setup(args):
    """The device to run on; torch's threads set, BasicSR's logger quiet."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    get_root_logger().setLevel(logging.ERROR)
    return ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device


def log_machine(device):
    """The run's first log line: device, torch, threads, load."""
    name = cpu_model() if device == 'cpu' else torch.cuda.get_device_name()
    log(f'device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, load average '
        f'{os.getloadavg()[0]:.2f} at start')


def sync(device):
    """Wait for the GPU's queued work (a no-op on CPU), so a timer reads what a step cost."""
    if device == 'cuda':
        torch.cuda.synchronize()


def step_once(model, data, it, device):
    model.feed_data(data)
    sync(device)
    t0 = time.perf_counter()
    model.optimize_parameters(it)
    sync(device)
    return time.perf_counter() - t0


def interleaved_times(models, batches, iters, warmup, device):
    """``{arm: [seconds per step]}``: every round one step of every model (order rotated, so no arm always runs
    first) at iteration ``round + 1``; the first ``warmup`` rounds are not kept."""
    arms = list(models)
    times = {a: [] for a in arms}
    t_start = time.time()
    for r in range(warmup + iters):
        order = arms[r % len(arms):] + arms[:r % len(arms)]
        for a in order:
            dt = step_once(models[a], batches[r % len(batches)], r + 1, device)
            if r >= warmup:
                times[a].append(dt)
        if r == warmup - 1 or (r >= warmup and (r - warmup + 1) % max(1, iters // 4) == 0):
            log(f'  round {r + 1}/{warmup + iters} ({time.time() - t_start:.0f} s)')
    return times


def time_net(net, arms, iters, warmup, device, workdir):
    """Every round one step of every arm (order rotated), then the refresh of all copies; medians and samples."""
    log(f'\n[{net}] building {", ".join(arms)} ...')
    torch._dynamo.reset()  # Cc: compiled code of the previous net is not reused
    torch.manual_seed(0)
    models = OrderedDict((a, build_arm(net, a, osp.join(workdir, net, a), device)) for a in arms)
    batches = make_batches(net, device)
    same = check_same_loss(models, batches) if {'C', 'E1'} <= set(models) else None
    times = interleaved_times(models, batches, iters, warmup, device)  # it < 100: never a refresh
    # refresh: every copy due (it = lcm of the periods); interleaved between the arms
    refresh = {a: [] for a in arms if a in MCLIR_ARMS + ('E1', 'E4')}
    for _ in range(max(10, iters)):
        for a in refresh:
            m = models[a]
            sync(device)
            t0 = time.perf_counter()
            if hasattr(m, 'history'):
                due = m.history.step(1000)
                assert len(due) == len(m.history)
            else:
                m.refresh_all()
            sync(device)
            refresh[a].append(time.perf_counter() - t0)
    res = {'config': {k: NETS[net][k] for k in ('batch', 'gt', 'scale')},
           'lq_patch': NETS[net]['gt'] // NETS[net]['scale'],
           'net_params': sum(p.numel() for p in models[arms[0]].net_g.parameters()),
           'median_s': {a: statistics.median(v) for a, v in times.items()},
           'q1_q3_s': {a: _quartiles(v) for a, v in times.items()},
           'samples': len(next(iter(times.values()))),
           'times_s': times,
           'refresh_median_s': {a: statistics.median(v) for a, v in refresh.items()},
           'copies_nbytes': {a: copies_nbytes(models[a]) for a in arms if a in refresh},
           'same_loss_check': None if same is None else {'ok': same[0], 'spn': same[1], 'authors_style': same[2]}}
    del models
    gc.collect()
    return res


def _quartiles(v):
    q = statistics.quantiles(v, n=4) if len(v) >= 2 else [v[0], v[0], v[0]]
    return [q[0], q[2]]


def profile_net(net, iters, device, workdir):
    """What a step is made of: its parts timed in isolation (interleaved, medians), a cost model of B, C and D
    from them, and torch.profiler's top operators for one D step."""
    torch.manual_seed(0)
    models = OrderedDict((a, build_arm(net, a, osp.join(workdir, 'profile', net, a), device)) for a in ('A', 'D'))
    a_model, d_model = models['A'], models['D']
    batch = make_batches(net, device, count=1)[0]
    lq, gt = batch['lq'], batch['gt']
    vgg = d_model.cri_spn.vgg
    weights = d_model.cri_spn.layer_weights
    copy0 = d_model.history.copies[0]
    k = len(d_model.history)

    def net_step():
        a_model.feed_data(batch)
        a_model.optimize_parameters(1)

    def vgg_grad():
        x = gt.clone().requires_grad_(True)
        f = vgg(x)
        sum(w * f[n].abs().mean() for n, w in weights.items()).backward()

    nhwc = getattr(d_model.cri_spn, 'channels_last_on_cpu', False) and device == 'cpu'

    def vgg_nograd(n):
        def run():  # as SPNLoss runs it (NHWC on CPU)
            with torch.no_grad():
                x = gt.repeat(n, 1, 1, 1)
                vgg(x.contiguous(memory_format=torch.channels_last) if nhwc else x)
        return run

    def copy_fwd():
        with torch.no_grad():
            copy0(lq)

    parts = OrderedDict([('net fwd+bwd+Adam+L1 (= A)', net_step), ('VGG(output) fwd+bwd', vgg_grad),
                         ('VGG no-grad, 1 batch', vgg_nograd(1)),
                         (f'VGG no-grad, {k} batches in one call', vgg_nograd(k)),
                         ('one copy forward (no grad)', copy_fwd),
                         ('step D (whole)', lambda: step_once(d_model, batch, 1, device))])
    times = {p: [] for p in parts}
    names = list(parts)
    for r in range(iters + 1):
        for p in names[r % len(names):] + names[:r % len(names)]:
            sync(device)
            t0 = time.perf_counter()
            parts[p]()
            sync(device)
            if r:
                times[p].append(time.perf_counter() - t0)
    med = {p: statistics.median(v) for p, v in times.items()}
    t_net, t_vg, t_n1, t_nk, t_cp = (med[p] for p in names[:5])
    model = {'B': t_net + t_vg + t_n1, 'C': t_net + t_vg + t_n1 + t_cp, 'D': t_net + t_vg + t_nk + k * t_cp}
    log(f'\n[{net}] profile: parts of a step, timed alone (median of {iters}, seconds):')
    for p in names:
        log(f'    {p:<38} {med[p]:.4f}')
    log(f'    cost model: B = net + VGG(out) + VGG(gt) = {model["B"]:.3f}; C = B + copy = {model["C"]:.3f}; '
        f'D = net + VGG(out) + VGG({k} negs) + {k} copies = {model["D"]:.3f}')
    log(f'    -> C/B {model["C"] / model["B"]:.3f}, D/B {model["D"] / model["B"]:.3f} if every part costs what it '
        f'costs alone; VGG is {100 * (t_vg + t_nk) / model["D"]:.0f}% of D, the {k} copies '
        f'{100 * k * t_cp / model["D"]:.0f}%')
    top = top_ops(lambda: step_once(d_model, batch, 1, device), device)
    if top:
        log('    torch.profiler, one D step, top operators by self time: ' + ', '.join(
            f'{t["op"]} {100 * t["share"]:.0f}% ({t["calls"]}x)' for t in top))
    del models
    gc.collect()
    return {'parts_median_s': med, 'cost_model_s': model, 'top_ops': top}


def top_ops(run, device, count=8):
    """torch.profiler's ``count`` operators with the most self time in one call of ``run``: ``[{op, share, calls,
    self_ms}]`` (empty, with a note, if the profiler fails)."""
    try:
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
        with profile(activities=acts) as prof:
            run()
        key = 'self_cuda_time_total' if device == 'cuda' else 'self_cpu_time_total'
        events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
        total = sum(getattr(e, key, 0) for e in events) or 1
        return [{'op': e.key, 'share': getattr(e, key) / total, 'calls': e.count, 'self_ms': getattr(e, key) / 1e3}
                for e in events[:count]]
    except Exception as err:  # the profiler is a nice-to-have
        log(f'    torch.profiler failed: {err}')
        return []


def _rss_kb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return None


def memory_child(net, arm, steps, device, build=build_arm, batches_of=make_batches):
    """Run in a subprocess: build ``arm`` (``build(net, arm, workdir, device)``, any object with ``feed_data`` and
    ``optimize_parameters``) and take ``steps`` steps on ``batches_of(net, device)``; print one JSON line with the
    peak."""
    get_root_logger().setLevel(logging.ERROR)
    batches = batches_of(net, device)
    gc.collect()
    with tempfile.TemporaryDirectory() as workdir:
        if device == 'cuda':
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        else:
            try:
                with open('/proc/self/clear_refs', 'w') as f:
                    f.write('5')  # reset VmHWM (peak RSS) to the current RSS
                reset = True
            except OSError:
                reset = False
            base = _rss_kb('VmRSS') * 1024
        model = build(net, arm, workdir, device)
        for i in range(steps):
            model.feed_data(batches[i % len(batches)])
            model.optimize_parameters(i + 1)
        if device == 'cuda':
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
            how = 'cuda max_memory_allocated'
        else:
            peak = _rss_kb('VmHWM') * 1024
            how = 'peak RSS (VmHWM, reset)' if reset else 'peak RSS (VmHWM, not reset: includes imports)'
        print('MEMORY_JSON ' + json.dumps({'net': net, 'arm': arm, 'peak_delta_bytes': peak - base,
                                           'copies_nbytes': copies_nbytes(model), 'how': how}), flush=True)


def measure_memory(net, arms, steps, device, threads, script='step_cost', repeats=1, env=None, label=''):
    """Each arm's peak memory over ``steps`` steps, each in its own ``python -m benchmarks.<script> --_memory``
    process (the script calls :func:`memory_child` with its own arms), with ``env`` added to its environment. With
    ``repeats`` > 1 every arm runs that many times (arms alternating) and its entry is the run with the median peak,
    plus ``peak_delta_bytes_samples``."""
    runs = {arm: [] for arm in arms}
    child_env = dict(os.environ, **(env or {}))
    for _ in range(repeats):
        for arm in arms:
            cmd = [sys.executable, '-m', f'benchmarks.{script}', '--_memory', f'{net}:{arm}', '--mem-steps',
                   str(steps), '--device', device, '--threads', str(threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=child_env)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith('MEMORY_JSON ')), None)
            if proc.returncode != 0 or line is None:
                log(f'  memory {net}/{arm}: FAILED ({proc.returncode})\n{proc.stderr[-2000:]}')
                continue
            runs[arm].append(json.loads(line[len('MEMORY_JSON '):]))
    out = {}
    for arm, found in runs.items():
        if not found:
            continue
        out[arm] = sorted(found, key=lambda r: r['peak_delta_bytes'])[(len(found) - 1) // 2]
        if repeats > 1:
            out[arm]['peak_delta_bytes_samples'] = [r['peak_delta_bytes'] for r in found]
        log(f'  memory{label} {net}/{arm}: peak +{out[arm]["peak_delta_bytes"] / 2 ** 20:.1f} MiB '
            f'(copies {out[arm]["copies_nbytes"] / 2 ** 20:.2f} MiB)' + (
                f', median of {len(found)}' if repeats > 1 else ''))
    return out
