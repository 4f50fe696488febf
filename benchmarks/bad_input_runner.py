"""How ``bad_input_sweep`` runs a case and judges it: the shared demo data, the entry point in a subprocess in the
case's folder, what it wrote, its first message line, the outcome; and the Markdown table."""
import glob
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time

import torch
import yaml

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
from mclir_basicsr.data.demo_data import ALL_TASKS, build_demo_data  # noqa: E402

from benchmarks.bad_input_inputs import ENTRY, VGG16_FILE, build_torchvision_vgg_features
from benchmarks.common import ROOT

OUTCOMES = ('refused', 'accepted_as_intended', 'traceback', 'written_before_error', 'silent')
LOSS_LINE = re.compile(r'iter:\s*\d+.*\bl_\w+: [-+\d.e]+')
PSNR_LINE = re.compile(r'# psnr: [-\d.]+')


def make_shared(root):
    """The demo data (all tasks) and random VGG16 weights under torchvision's file name, made once."""
    build_demo_data(root=osp.join(root, 'datasets', 'demo'), tasks=ALL_TASKS, quiet=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        feats = build_torchvision_vgg_features('vgg16')
    torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, osp.join(root, VGG16_FILE))


def plant_vgg16(root, shared):
    target = osp.join(root, 'experiments', 'pretrained_models')
    os.makedirs(target, exist_ok=True)
    try:
        os.link(osp.join(shared, VGG16_FILE), osp.join(target, VGG16_FILE))
    except OSError:
        shutil.copy(osp.join(shared, VGG16_FILE), osp.join(target, VGG16_FILE))


def listing(root):
    """path -> (size, mtime) of every file, None for a folder; symbolic links are not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = osp.join(dirpath, name)
            rel = osp.relpath(path, root)
            if osp.islink(path) or name in filenames:
                st = os.lstat(path)
                out[rel] = (st.st_size, st.st_mtime_ns)
            else:
                out[rel] = None
    return out


def written(before, after, prefix=''):
    new = sorted(prefix + p for p in after if p not in before)
    changed = sorted(prefix + p for p in after if p in before and before[p] is not None and after[p] != before[p])
    removed = sorted(prefix + p for p in before if p not in after)
    return new + [f'{p} (changed)' for p in changed] + [f'{p} (removed)' for p in removed]


def run_entry(prog, args, cwd, timeout):
    """``python -m <the module of prog> args`` in ``cwd``, on this checkout's package (PYTHONPATH, as the tests'
    ``run_module``)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    start = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, '-m', ENTRY[prog]] + args, cwd=cwd, env=env, capture_output=True,
                             text=True, timeout=timeout)
        rc, out, err = res.returncode, res.stdout, res.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 'timeout'
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or '')
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or '')
    return {'rc': rc, 'stdout': out, 'stderr': err, 'seconds': round(time.perf_counter() - start, 2)}


def first_message(prog, out, err, traceback):
    lines = [line.rstrip() for line in err.splitlines() if line.strip()]
    if traceback:  # the exception line: the last line of the traceback block
        tb_lines = [line.rstrip() for line in (err + '\n' + out).splitlines() if line.strip()]
        start = max(i for i, line in enumerate(tb_lines) if line.startswith('Traceback'))
        exc = [line for line in tb_lines[start + 1:] if not line.startswith(' ')]
        return exc[0] if exc else tb_lines[-1]
    ours = [line for line in lines if line.startswith(f'{prog}: ')]
    if ours:
        return ours[0]
    warned = [line for line in lines if 'Warning' in line or 'warning' in line]
    return warned[0] if warned else (lines or [''])[-1]  # a run that ended: its last line


def check_log(root, args):
    with open(osp.join(root, args[args.index('-opt') + 1])) as f:
        name = yaml.safe_load(f)['name']
    logs = glob.glob(osp.join(root, 'experiments', name, f'train_{name}_*.log'))
    if not logs:
        return {'log': None, 'loss_line': False, 'psnr_line': False}
    with open(logs[0]) as f:
        text = f.read()
    return {'log': osp.relpath(logs[0], root), 'loss_line': bool(LOSS_LINE.search(text)),
            'psnr_line': bool(PSNR_LINE.search(text))}


def run_case(spec, work, shared, timeout):
    root = osp.join(work, spec['id'])
    os.makedirs(root)
    os.symlink(osp.join(shared, 'datasets'), osp.join(root, 'datasets'))
    prog = spec['prog']
    record = {k: spec[k] for k in ('id', 'group', 'change', 'expect')}
    record['entry_point'] = prog
    start = time.perf_counter()
    try:
        args = spec['prepare'](root, shared)
    except Exception as exc:  # a preparation that fails is recorded, not hidden
        record.update(outcome='preparation_failed', message=f'{type(exc).__name__}: {exc}', as_expected=False)
        return record
    record['prepare_seconds'] = round(time.perf_counter() - start, 2)
    before, shared_before = listing(root), listing(osp.join(shared, 'datasets'))
    res = run_entry(prog, args, root, timeout)
    after, shared_after = listing(root), listing(osp.join(shared, 'datasets'))
    wrote = written(before, after) + written(shared_before, shared_after, prefix='<shared datasets>/')
    traceback = 'Traceback' in res['stdout'] + res['stderr']
    message = first_message(prog, res['stdout'], res['stderr'], traceback)
    for path, label in ((root, '<case>'), (work, '<sweep>'), (ROOT, '<repo>')):
        message = message.replace(path, label)
    record.update(command=f'python -m {ENTRY[prog]} ' + ' '.join(args), cwd='<case>', exit=res['rc'],
                  seconds=res['seconds'], traceback=traceback, written=wrote[:40], written_count=len(wrote),
                  message=message, stderr_lines=len([line for line in res['stderr'].splitlines() if line.strip()]))
    if traceback:
        outcome = 'traceback'
    elif res['rc'] != 0:
        outcome = 'written_before_error' if wrote else 'refused'
    else:
        outcome = 'accepted_as_intended' if spec['expect'] == 'accepted' else 'silent'
    notes = []
    if spec['expect'] == 'refused':
        missing = [w for w in spec['words'] if w not in message]
        if missing and outcome == 'refused':
            notes.append(f'message lacks {missing}')
    if spec['stderr_has'] is not None:
        record['expected_warning_seen'] = spec['stderr_has'] in res['stderr']
        if not record['expected_warning_seen']:
            notes.append(f'no warning {spec["stderr_has"]!r} on stderr')
    if spec['log_check'] and outcome == 'accepted_as_intended':
        record.update(check_log(root, args))
        if not (record['log'] and record['loss_line'] and record['psnr_line']):
            outcome = 'accepted_without_log'
            notes.append('log missing, or no loss line or no # psnr line')
    record['outcome'] = outcome
    expected = 'accepted_as_intended' if spec['expect'] == 'accepted' else 'refused'
    record['as_expected'] = outcome == expected and not notes
    record['notes'] = notes
    if not record['as_expected'] or outcome == 'traceback':
        record['stderr_tail'] = res['stderr'][-3000:].replace(work, '<sweep>')
        record['stdout_tail'] = res['stdout'][-1500:].replace(work, '<sweep>')
    return record


def code_version():
    """The commit of the checkout and how many paths differ from it (or why not known)."""
    def git(*a):
        return subprocess.run(['git', '-C', ROOT] + list(a), capture_output=True, text=True).stdout.strip()
    try:
        commit = git('rev-parse', 'HEAD')
    except OSError:
        commit = ''
    if not commit:
        return {'root': ROOT, 'commit': None}
    return {'root': ROOT, 'commit': commit, 'paths_differing': len(git('status', '--porcelain').splitlines())}


def table(records):
    rows = ['| case | entry point | exit | outcome | first line of message |', '|---|---|---|---|---|']
    for r in records:
        msg = r.get('message', '')
        msg = (msg if len(msg) <= 150 else msg[:147] + '...').replace('|', '\\|')
        flag = '' if r.get('as_expected') else ' (!)'
        rows.append(f'| {r["id"]} | {r["entry_point"]} | {r.get("exit", "-")} | {r["outcome"]}{flag} | {msg} |')
    return '\n'.join(rows)
