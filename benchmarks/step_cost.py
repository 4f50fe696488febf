"""Per-iteration cost of an MCLIR (SPN) training step against BasicSR baselines, and its peak memory.

    python -m benchmarks.step_cost [--nets tiny,edsr_light,swinir_light] [--iters N] [--quick]

Arms, all built with ``basicsr.models.build_model`` from option dicts, same network, batch and patch:

    A   SRModel (SwinIRModel for SwinIR), L1 only
    B   the same + BasicSR's PerceptualLoss against GT, same VGG type and layers as SPN
    C   MCLIRModel (MCLIRSwinIRModel), L1 + SPN (subtract), 1 history copy
    D   the same with 4 history copies (the authors' periods 100/200/500/1000)
    E1  "authors' style" step (written here, for comparison only): L1 + for every negative one BasicSR
        PerceptualLoss call (VGG of the output AND of the negative, per negative), copies refreshed by a Python
        loop over named parameters (parameters only). 1 copy: the same losses as C
    E4  the same with 4 copies: the same losses as D

Extra arms (``--arms``): C0/D0 (C/D with SPNLoss's NHWC negatives pass off), Ds (D with
``history.negatives: round_robin``), Cb/Cf (C under ``train.amp`` bf16 / fp16 + GradScaler), Cc (C with
``train.compile``, inductor, all targets), F/F0 (C plus B's ``perceptual_opt``, both losses reading the same VGG
file, with the shared VGG pass of the output / with it switched off).

Timing: every round runs one step of every arm (order rotated each round), so drift from other processes on the
machine hits all arms alike; the first rounds are warm-up. Reported: median seconds per step and ratios of
medians. Iteration numbers never hit a refresh; the refresh (``model.history.step(it)`` at an ``it`` where every
copy is due) is timed separately and reported as a fraction of a step.

Peak memory: each arm in its own subprocess. CPU: peak RSS (VmHWM, reset through /proc/self/clear_refs) minus
the RSS before the model is built, over a few steps. CUDA: ``torch.cuda.max_memory_allocated``.

The arms are built in step_cost_arms.py, measured in step_cost_measure.py and reported in step_cost_report.py.
Writes benchmarks/out/step_cost.json and (with matplotlib) benchmarks/out/step_cost.png.
"""
import argparse
import os
import os.path as osp
import platform
import tempfile
import time
from collections import OrderedDict

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
import torch

from benchmarks.common import OUT_DIR, command_line, cpu_model, log, write_json
from benchmarks.step_cost_arms import ARM_LABELS, ARMS, EXTRA_ARMS, NETS, TARGETS
from benchmarks.step_cost_measure import (add_machine_arguments, log_machine, machine_setup, measure_memory,
                                          memory_child, profile_net, time_net)
from benchmarks.step_cost_report import evaluate, plot, print_report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nets', default=','.join(NETS), help=f'comma-separated, of {", ".join(NETS)}')
    parser.add_argument('--iters', type=int, default=None,
                        help='timed rounds per net (default 20 for tiny, 12 for the others, 4 with --quick)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds first')
    parser.add_argument('--quick', action='store_true', help='tiny net, few rounds, memory of B and C only (< 2 min)')
    parser.add_argument('--arms', default=','.join(ARMS),
                        help=f'comma-separated, of {",".join(ARMS + EXTRA_ARMS)} (default: {",".join(ARMS)})')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory subprocesses')
    parser.add_argument('--no-profile', action='store_true',
                        help='skip timing the parts of a step and torch.profiler (always skipped with --quick)')
    add_machine_arguments(parser, threads_help='torch CPU threads (default 1; 0 = torch default). On a shared '
                          'machine 2 OpenMP threads wait for each other whenever one is descheduled, inflating small '
                          'ops 4-8x')
    args = parser.parse_args(argv)
    args.out = args.out or OUT_DIR
    device = machine_setup(args)
    if args._memory:
        net, arm = args._memory.split(':')
        memory_child(net, arm, args.mem_steps, device)
        return None

    nets = ['tiny'] if args.quick else [n.strip() for n in args.nets.split(',') if n.strip()]
    for n in nets:
        if n not in NETS:
            parser.error(f'unknown net {n!r}; choose from {", ".join(NETS)}')
    wanted = args.arms.split(',')
    for a in wanted:
        if a not in ARMS + EXTRA_ARMS:
            parser.error(f'unknown arm {a!r}; choose from {", ".join(ARMS + EXTRA_ARMS)}')
    arms = [a for a in ARMS + EXTRA_ARMS if a in wanted]
    cpu = cpu_model()
    log_machine(device)
    t0 = time.time()
    results = OrderedDict()
    with tempfile.TemporaryDirectory() as workdir:
        for net in nets:
            iters = args.iters or (4 if args.quick else (20 if net == 'tiny' else 12))
            res = time_net(net, arms, iters, 1 if args.quick else args.warmup, device, workdir)
            res['device'] = device
            if not args.no_memory:
                mem_arms = ['B', 'C'] if args.quick else ['B', 'C', 'D'] + [a for a in ('F', 'F0') if a in arms]
                res['memory'] = measure_memory(net, mem_arms, args.mem_steps, device, args.threads)
            if not (args.quick or args.no_profile):
                res['profile'] = profile_net(net, min(iters, 8), device, workdir)
            res['ratios'], res['verdict'] = evaluate(res)
            results[net] = res
    print_report(results)
    took = time.time() - t0
    log(f'\ntotal {took:.0f} s; load average {os.getloadavg()[0]:.2f} at the end')
    summary = {'command': command_line('step_cost', argv), 'device': device, 'cpu': cpu, 'torch': torch.__version__,
               'threads': torch.get_num_threads(), 'python': platform.python_version(), 'seconds': took,
               'targets': dict(TARGETS), 'arms': ARM_LABELS, 'results': results}
    write_json(osp.join(args.out, 'step_cost.json'), summary, indent=1)
    png = plot(results, osp.join(args.out, 'step_cost.png'))
    log(f'wrote {osp.join(args.out, "step_cost.json")}' + (f' and {png}' if png else ''))
    return summary


if __name__ == '__main__':
    main()
