"""Bad input through the console entry points, as a user runs them: every case in a subprocess, in a fresh
folder of its own, and what came of it.

    python -m benchmarks.bad_input_sweep [--out benchmarks/results/bad_input_sweep_cpu.json] [--keep DIR]
                                         [--only SUBSTRING] [--timeout 300]

Each case runs ``python -m <module> ...`` (the module of the console script: ``mclir-train`` =
``mclir_basicsr.train``, ``mclir-probe-degradation`` = ``mclir_basicsr.probe`` or ``mclir_basicsr.cli.probe``,
``mclir-fetch-vgg`` = ``mclir_basicsr.fetch_vgg`` or ``mclir_basicsr.cli.fetch_vgg``, ``mclir-make-lmdb`` =
``mclir_basicsr.data.lmdb_tools``) with the case folder as the working directory and the package of the checkout
that holds this script (``PYTHONPATH``). A training case starts from a
shipped demo file (``num_gpu: 0``, ``total_iter: 2``, ``val_freq: 2``, ``print_freq: 1``,
``save_checkpoint_freq: 2``, no tensorboard, the first validation set only) and changes one thing. The demo data is
built once (``build_demo_data``, all tasks) and linked into every case folder as ``datasets``; random VGG16 weights
under torchvision's name are linked in where a case needs ImageNet weights.

Recorded per case: the command, the exit code, whether stdout/stderr hold a ``Traceback``, what the run wrote (a
listing of the case folder and of the shared demo data before and after; files the case prepared are not counted
unless changed), the first line of the message, and the outcome:

- ``refused``: non-zero exit, no traceback, nothing written;
- ``traceback``: a traceback on stdout or stderr;
- ``written_before_error``: non-zero exit after something was written;
- ``silent``: exit 0 where a refusal was expected;
- ``accepted_as_intended``: exit 0 where the input is valid or meant to be accepted (for the two shipped paths, also
  a log ``experiments/<name>/train_<name>_*.log`` with a loss line and a ``# psnr`` line).

Prints a Markdown table and the counts; writes the whole record as JSON. The cases are in ``bad_input_cases.py``,
the option files, images and lmdbs they start from in ``bad_input_inputs.py``, running and judging a case in
``bad_input_runner.py``.
"""
import argparse
import json
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
import time

import torch

from benchmarks.bad_input_cases import CASES
from benchmarks.bad_input_inputs import ENTRY
from benchmarks.bad_input_runner import OUTCOMES, code_version, make_shared, run_case, table
from benchmarks.common import BENCH_DIR


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=osp.join(BENCH_DIR, 'results', 'bad_input_sweep_cpu.json'))
    p.add_argument('--keep', help='work in this (new) folder and keep it (default: a temporary folder, removed)')
    p.add_argument('--only', help='run only the cases whose id contains this')
    p.add_argument('--timeout', type=int, default=300, help='seconds per entry-point run')
    p.add_argument('--note', help='a note stored with the result (e.g. which code was run)')
    args = p.parse_args()
    start = time.perf_counter()
    if args.keep:
        os.makedirs(args.keep)
        work = osp.abspath(args.keep)
    else:
        work = tempfile.mkdtemp(prefix='bad_input_sweep_')
    shared = osp.join(work, '_shared')
    try:
        make_shared(shared)
        shared_seconds = round(time.perf_counter() - start, 1)
        records = []
        for spec in CASES:
            if args.only and args.only not in spec['id']:
                continue
            r = run_case(spec, work, shared, args.timeout)
            records.append(r)
            print(f'{r["id"]}: {r["outcome"]} (exit {r.get("exit", "-")}, {r.get("seconds", "-")} s)', flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    counts = {k: sum(r['outcome'] == k for r in records) for k in OUTCOMES}
    other = {r['outcome'] for r in records} - set(OUTCOMES)
    total = round(time.perf_counter() - start, 1)
    result = {'cases': records, 'counts': counts, 'not_as_expected': [r['id'] for r in records if not r['as_expected']],
              'seconds_total': total, 'seconds_shared_data': shared_seconds,
              'machine': {'python': platform.python_version(), 'torch': torch.__version__,
                          'platform': platform.platform(), 'cpus': os.cpu_count()},
              'command': 'python -m benchmarks.bad_input_sweep' + (f' --only {args.only}' if args.only else ''),
              'code': code_version(), 'entry_modules': ENTRY, 'note': args.note}
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    print()
    print(table(records))
    print()
    if other:
        print('other outcomes: ' + ', '.join(f'{k}: {sum(r["outcome"] == k for r in records)}' for k in sorted(other)))
    print(f'{len(records)} cases in {total} s (shared data {shared_seconds} s); not as expected: '
          f'{result["not_as_expected"] or "none"}; written to {args.out}')
    print(f'refused: {counts["refused"]}, accepted as intended: {counts["accepted_as_intended"]}, traceback: '
          f'{counts["traceback"]}, written before error: {counts["written_before_error"]}, silent: {counts["silent"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
