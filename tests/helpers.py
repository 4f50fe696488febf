"""Helpers shared by the test modules (fixtures are in conftest.py). Test modules import from here, never from
each other.

Sections: tiny in-process option dicts (MCLIR and every method); option files for the entry points; subprocesses
(``python -m``, the instrumented trainer, torchrun); training files compared tensor by tensor; the entry points'
refusal cases; image and file measures.
"""
import copy
import glob
import json
import math
import os
import os.path as osp
import importlib
import multiprocessing
import shutil
import signal
import subprocess
import sys
import tempfile

import mclir_basicsr  # noqa: F401  (must precede basicsr)
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from basicsr.models import build_model

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_DATA = osp.join(ROOT, 'tests', 'data')  # verbatim option files of other repositories, reference values


# ------------------------------------------------------------------- tiny option dicts and batches, in process, on CPU
TINY_EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 2,
             'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}

SPN_RANDOM = {'type': 'SPNLoss', 'loss_weight': 0.01, 'vgg_type': 'vgg11', 'layer_weights': {'relu1_1': 0.5,
                                                                                             'relu2_1': 0.5},
              'vgg_weights': 'random'}


def make_opt(tmp_path, model_type='MCLIRModel', network=None, history=None, spn=None, extra_train=None, **top):
    """An in-process BasicSR option dict for a tiny model on CPU."""
    opt = {
        'name': 'unit', 'model_type': model_type, 'scale': 2, 'num_gpu': 0, 'manual_seed': 0, 'is_train': True,
        'dist': False, 'rank': 0, 'world_size': 1,
        'network_g': copy.deepcopy(network or TINY_EDSR),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                 'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'training_states'),
                 'experiments_root': str(tmp_path), 'visualization': str(tmp_path / 'vis')},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'total_iter': 10,
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2}}},
    }
    if model_type.startswith('MCLIR'):
        opt['train']['history'] = copy.deepcopy(history or {'init_decay': 0.1, 'copies': [
            {'period': 2, 'decay': 0.5}, {'period': 3, 'decay': 0.25}]})
        opt['train']['spn_opt'] = copy.deepcopy(spn or SPN_RANDOM)
    opt['train'].update(copy.deepcopy(extra_train or {}))
    opt.update(top)
    os.makedirs(opt['path']['models'], exist_ok=True)
    os.makedirs(opt['path']['training_states'], exist_ok=True)
    return opt


def batch(seed=0, n=2, lq=16, scale=2):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(n, 3, lq * scale, lq * scale, generator=g)
    return {'lq': torch.nn.functional.avg_pool2d(gt, scale) if scale > 1 else gt.clone(), 'gt': gt}


def fed_mclir_model(tmp_path, **train):
    opt = make_opt(tmp_path, extra_train=train)
    model = build_model(opt)
    model.feed_data(batch())
    return model


def net_g_params(model):
    return {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}


def same_tensors(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def adaptive_history(threshold=0.0, periods=(None, 100), **extra):
    return {'init_decay': 0.1, 'copies': [{'period': p, 'decay': 0.5} for p in periods],
            'adaptive': dict({'threshold': threshold, 'decay': 0.001}, **extra)}


# ------------------------------------------------------------------------------------------------------------ ConStyle
CONSTYLE_TINY = {'type': 'ConStyleNAFNet', 'dim': 8, 'left_blk_num': [1, 1, 1], 'bottom_blk_num': 1,
                 'right_blk_num': [1, 1, 1], 'constyle': {'queue_size': 32}}

CONSTYLE_AUX = {'CrossEntropy_opt': {'type': 'CrossEntropyLoss'}, 'content_opt': {'type': 'ContentLoss'},
                'style_opt': {'type': 'ConStyleStyleLoss'}}


def constyle_opt(tmp_path, model_type='ConStyleModel', constyle_iter=2, aux=True, **top):
    extra = dict(copy.deepcopy(CONSTYLE_AUX) if aux else {},
                 optim_g={'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 1e-4})
    if constyle_iter is not None:
        extra['ConStyle_iter'] = constyle_iter
    return make_opt(tmp_path, model_type=model_type, network=CONSTYLE_TINY, scale=1, extra_train=extra, **top)


def constyle_authors_state(value=None):
    """The authors' ConStyleNAFNet state dict: their names and shapes, random (or constant) values."""
    with open(osp.join(ROOT, 'tests', 'data', 'constyle_authors_keys.txt')) as f:
        rows = [line.split() for line in f if not line.startswith('#')]
    assert len(rows) == 1091
    gen = torch.Generator().manual_seed(0)
    shapes = {k: [] if s == '-' else [int(d) for d in s.split('x')] for k, s in rows}
    return {k: torch.full(s, value) if value is not None else torch.randn(s, generator=gen) if k != 'ConStyle.queue_ptr'
            else torch.tensor([6]) for k, s in shapes.items()}


def ffa_reference_layout(gps, blocks, dim=64):
    """(key, shape) of the reference FFA's state dict, in its order (modules g1..gN, ca, palayer, pre, post)."""

    def conv(name, i, o, k):
        return [(f'{name}.weight', (o, i, k, k)), (f'{name}.bias', (o, ))]

    keys = []
    for g in range(1, gps + 1):
        for b in range(blocks):
            p = f'g{g}.gp.{b}'
            keys += conv(f'{p}.conv1', dim, dim, 3) + conv(f'{p}.conv2', dim, dim, 3)
            keys += conv(f'{p}.calayer.ca.0', dim, dim // 8, 1) + conv(f'{p}.calayer.ca.2', dim // 8, dim, 1)
            keys += conv(f'{p}.palayer.pa.0', dim, dim // 8, 1) + conv(f'{p}.palayer.pa.2', dim // 8, 1, 1)
        keys += conv(f'g{g}.gp.{blocks}', dim, dim, 3)
    keys += conv('ca.1', gps * dim, dim // 16, 1) + conv('ca.3', dim // 16, gps * dim, 1)
    keys += conv('palayer.pa.0', dim, dim // 8, 1) + conv('palayer.pa.2', dim // 8, 1, 1)
    return keys + conv('pre.0', 3, dim, 3) + conv('post.0', dim, dim, 3) + conv('post.1', dim, 3, 3)


def ffa_reference_checkpoint(gps=3, blocks=2, seed=0):
    """A float64 checkpoint in the reference FFA-Net layout (zhilin007/FFA-Net, net/models/FFA.py at 6651bcf):
    weights N(0, 1/fan_in), biases N(0, 0.01), drawn in key order."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in ffa_reference_layout(gps, blocks):
        t = torch.randn(shape, generator=gen, dtype=torch.float64)
        state[name] = t / math.sqrt(math.prod(shape[1:])) if name.endswith('weight') else 0.1 * t
    return state


def dsrir_authors_state():
    """The DSRIR authors' state dict (xfwang23/DSRIR, model/DSRIR.py, defaults): their names and shapes, random."""
    with open(osp.join(ROOT, 'tests', 'data', 'dsrir_authors_keys.txt')) as f:
        rows = [line.split() for line in f if not line.startswith('#')]
    assert len(rows) == 316
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn([int(s) for s in shape.split('x')], generator=gen) for k, shape in rows}


# ---------------------------------------------------------------------------------------------------------------- DCPT
TINY_NAFNET = {'type': 'NAFNet', 'img_channel': 3, 'width': 8, 'middle_blk_num': 1, 'enc_blk_nums': [1, 1],
               'dec_blk_nums': [1, 1]}

AIO_TRAIN = {'type': 'AllInOneDataset', 'name': 'aio', 'phase': 'train', 'gt_size': 32,
             'tasks': [{'kind': 'denoise', 'dataroot_gt': 'x', 'sigma': 25}, {'kind': 'derain', 'dataroot': 'y'},
                       {'kind': 'dehaze', 'dataroot': 'z'}]}


def dcpt_opt(tmp_path, model_type='DCPTModel', **top):
    opt = make_opt(tmp_path, model_type=model_type, network=TINY_NAFNET, scale=1, hook_names='decoders',
                   network_dc={'type': 'DegradationClassifier', 'feature_dims': [8, 16], 'num_classes': 3,
                               'num_res_blocks': 1})
    opt['train'].update(optim_g={'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.0},
                        optim_dc={'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 1e-4},
                        classify_opt={'type': 'ClassFocalLoss', 'gamma': 2.0})
    opt['path']['pretrain_network_dc'] = None
    opt['datasets'] = {'train': copy.deepcopy(AIO_TRAIN)}
    del opt['val']
    opt.update(top)
    return opt


def labelled_batch(seed=0, n=6):
    """Three 'degradations' a classifier can learn: added noise, darkening, a blur."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(n, 3, 16, 16, generator=g)
    label = torch.arange(n) % 3
    lq = gt.clone()
    lq[label == 0] += 0.3 * torch.randn(lq[label == 0].shape, generator=g)
    lq[label == 1] *= 0.3
    lq[label == 2] = F.avg_pool2d(lq[label == 2], 3, 1, 1)
    return {'lq': lq, 'gt': gt, 'label': label}


def digest(net):
    return [p.detach().clone() for p in net.parameters()]


# --------------------------------------------------------------------------------------------------------------- DSRIR
TINY_DSRIR = {'type': 'DSRIR', 'widths': [8, 8, 8], 'width_steps': [8, 8], 'unet1_blocks': [1, 1, 1],
              'unet2_blocks': [1, 1], 'groups': 1, 'group_grids': [8, 4], 'reduction': 4}

DSRIR_LOSSES = {'pixel_opt': {'type': 'DSRIRPSNRLoss'}, 'stage_uncertainty_opt': {'type': 'DSRIRUncertaintyLoss'},
                'pocl_opt': {'type': 'PositiveContrastLoss', 'vgg_weights': 'random'}}


def dsrir_opt(tmp_path, model_type='DSRIRModel', extra_train=None, **top):
    opt = make_opt(tmp_path, model_type=model_type, network=TINY_DSRIR, scale=1,
                   extra_train=dict(copy.deepcopy(DSRIR_LOSSES), **(extra_train or {})), **top)
    opt['datasets'] = {'train': {'type': 'PairedImageDataset', 'gt_size': 32, 'batch_size_per_gpu': 4}}
    return opt


# ----------------------------------------------------------------------------------- option files for the entry points
def write_options(path, data_root, name='pipe', total_iter=6, extra=None):
    opt = yaml.safe_load(open(osp.join(ROOT, 'options', 'train', 'demo', 'train_MCLIR_EDSR_SRx2_demo.yml')))
    opt['name'] = name
    opt['num_gpu'] = 0
    train_set, val_set = opt['datasets']['train'], opt['datasets']['val']
    train_set.update(dataroot_gt=str(data_root / 'train_gt.lmdb'), dataroot_lq=str(data_root / 'train_lq.lmdb'),
                     gt_size=32, batch_size_per_gpu=2, dataset_enlarge_ratio=4)
    val_set.update(dataroot_gt=str(data_root / 'val_gt.lmdb'), dataroot_lq=str(data_root / 'val_lq.lmdb'))
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['train']['total_iter'] = total_iter
    opt['train']['history']['copies'] = [{'period': 2, 'decay': 0.5}, {'period': 3, 'decay': 0.1}]
    opt['train']['spn_opt'].update(vgg_type='vgg11', layer_weights={'relu1_1': 1.0})
    opt['val']['val_freq'] = 3
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3, use_tb_logger=True)
    for key, value in (extra or {}).items():
        target = opt
        *parents, leaf = key.split('.')
        for p in parents:
            target = target[p]
        target[leaf] = value
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path


def aio_demo_options(demo, data, name, total_iter):
    """An all-in-one demo training option file (``demo``) made small for a test: its training set only, on the
    ``aio_data`` folders, 32 px patches, batch 3, a checkpoint every 4 iterations, no validation."""
    with open(demo) as f:
        opt = yaml.safe_load(f)
    opt.update(name=name, num_gpu=0)
    train = opt['datasets']['train']
    train.update(gt_size=32, batch_size_per_gpu=3)
    for task in train['tasks']:
        task['dataroot_gt' if task['kind'] == 'denoise' else 'dataroot'] = str(data / 'train' / task['kind'])
    opt['datasets'] = {'train': train}
    opt.pop('val', None)
    opt['train']['total_iter'] = total_iter
    opt['logger'].update(save_checkpoint_freq=4, print_freq=1, use_tb_logger=False)
    return opt


DCPT_DEMO = osp.join(ROOT, 'options', 'train', 'dcpt', 'demo', 'train_DCPT_NAFNet_AIO3_demo.yml')


def dcpt_demo_options(path, data, total_iter, with_val=False):
    with open(DCPT_DEMO) as f:
        opt = yaml.safe_load(f)
    opt.update(name='dcpt', num_gpu=0)
    train = opt['datasets']['train']
    train.update(gt_size=32, batch_size_per_gpu=3)
    for ds in opt['datasets'].values():
        for task in ds['tasks']:
            key = 'dataroot_gt' if task['kind'] == 'denoise' else 'dataroot'
            task[key] = str(data / ('train' if ds is train else 'val') / task['kind'])
    if not with_val:
        opt['datasets'] = {'train': train}
        del opt['val']
    opt['train'].update(total_iter=total_iter)
    opt['logger'].update(save_checkpoint_freq=4, print_freq=1, use_tb_logger=False)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)


# -------------------------------------------------------------------------------------------------------- subprocesses
def run_module(module, args, cwd, timeout=600, env_extra=None):
    """Run ``python -m module args`` in ``cwd``; returns CompletedProcess (text)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '2')
    env.update(env_extra or {})
    return subprocess.run([sys.executable, '-m', module] + list(args), cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=timeout)


def _entry_point_child(module, args, cwd, out_path, err_path):
    """In a process forked from the warm server: what the console script does, output to two files."""
    os.chdir(cwd)
    for fd, path in ((1, out_path), (2, err_path)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = [module] + list(args)
    try:
        code = importlib.import_module(module).main(list(args))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)


_ENTRY_POINTS = multiprocessing.get_context('forkserver')
_ENTRY_POINTS.set_forkserver_preload(['mclir_basicsr.train', 'mclir_basicsr.test', 'tests.helpers'])


def run_entry_point(module, args, cwd, timeout=600):
    """``module.main(args)`` (the function ``mclir-train`` / ``mclir-test`` call) in a fresh process forked from a
    server that has imported torch, BasicSR and the plugin once: the same run as ``run_module``, without paying the
    imports (~5 s) per run. Each run gets its own process, so BasicSR's once-per-process logger set-up, the
    registries and the RNGs start as they do from the console. Returns a CompletedProcess (text)."""
    with tempfile.TemporaryDirectory() as folder:
        out, err = osp.join(folder, 'stdout'), osp.join(folder, 'stderr')
        for path in (out, err):
            open(path, 'w').close()
        child = _ENTRY_POINTS.Process(target=_entry_point_child, args=(module, list(args), str(cwd), out, err))
        child.start()
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
        with open(out) as f_out, open(err) as f_err:
            return subprocess.CompletedProcess([module] + list(args), child.exitcode, f_out.read(), f_err.read())


class KeptWeights(dict):
    """Weights later tests of a module start from, by key. A passing test's tmp_path is removed when it ends
    (pytest.ini), so a file put here moves to ``folder``, which lives as long as the session's temporary folder; the
    file it replaces is deleted (paper-sized weights add up). Give ``folder`` from a module-scoped fixture."""

    folder = None
    moved = 0  # numbers the kept files: never a name in use, whatever was deleted

    def __setitem__(self, key, path):
        self.moved += 1
        kept = osp.join(self.folder, f'{self.moved:03d}_{osp.basename(path)}')
        shutil.move(path, kept)
        if key in self:
            os.remove(self[key])
        super().__setitem__(key, kept)


def kept_weights_folder(kept, prefix):
    """A module-scoped autouse fixture: ``kept`` (a :class:`KeptWeights`) gets a folder for the module's tests, removed
    with what it holds after them. Assign it to a module-level name of the test module."""

    @pytest.fixture(scope='module', autouse=True)
    def fixture(tmp_path_factory):
        kept.folder = str(tmp_path_factory.mktemp(prefix))
        yield
        shutil.rmtree(kept.folder)
        kept.clear()

    return fixture


CONSOLE = ('import sys\nfrom importlib.metadata import entry_points\n'
           '(ep, ) = entry_points(group="console_scripts", name=sys.argv[1])\n'
           'sys.argv = sys.argv[1:]\nsys.exit(ep.load()())\n')


def console(name, args, cwd):
    """Run console script ``name`` exactly as its installed wrapper does: ``sys.exit(main())``."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='2')
    return subprocess.run([sys.executable, '-c', CONSOLE, name] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def instrumented(args, cwd, **kw):
    """``python -m tests.instrumented <args>``: mclir-train under test-side kill points and reports."""
    return run_module('tests.instrumented', args, cwd=cwd, **kw)


def read_report(path, rank=0):
    with open(f'{path}.rank{rank}.json') as f:
        return json.load(f)


def descendants(pid):
    """Every process below ``pid`` (children first found through /proc; torchrun's workers lead sessions of their
    own, so a process-group kill would miss them)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in glob.glob(f'/proc/{parent}/task/*/children'):
            try:
                with open(task) as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def kill_tree(proc):
    """SIGKILL ``proc`` (a Popen) and everything it started; reap it."""
    for pid in descendants(proc.pid) + [proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate()


def run_bounded(cmd, cwd, env, timeout=600):
    """``subprocess.run`` that, past ``timeout``, kills the command and every process it started (then fails)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def torchrun(tmp_path, args, port, launcher_args=('--nproc_per_node=2', )):
    """``python -m tests.instrumented args`` under torchrun (2 processes on one node unless ``launcher_args`` say
    otherwise), in ``tmp_path``, at most 10 minutes (then it and its workers are killed)."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    where = [] if any(a.startswith('--rdzv-endpoint') for a in launcher_args) else ['--master_port', str(port)]
    cmd = [sys.executable, '-m', 'torch.distributed.run', *launcher_args, *where, '-m', 'tests.instrumented'] + args
    return run_bounded(cmd, tmp_path, env)


def free_port():
    """A TCP port free on the loopback address right now (the OS picks it)."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def elastic_kill_and_resume(tmp_path, write, kill_args, run, names):
    """``write(path)`` writes one option file as ``train.yml`` in two folders; it trains under torchrun with 2
    processes straight, and with ``--max-restarts 2 --auto_resume`` while ``kill_args`` (tests.instrumented kill
    points, first attempt only) kill a worker, so torchrun restarts the group. The files ``names`` of
    ``experiments/<run>`` must be equal byte for byte. Returns the restarted run's resume report of rank 0."""
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    for root in (straight, killed):
        root.mkdir(exist_ok=True)
        write(root / 'train.yml')
    common = ['--', '-opt', 'train.yml', '--launcher', 'pytorch', '--auto_resume']
    res = torchrun(straight, ['--digests', 'run'] + common, free_port())  # (torchrun drops a leading --)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    elastic = ('--nnodes=1', '--nproc_per_node=2', '--max-restarts=2', '--monitor-interval=0.5',
               '--rdzv-backend=c10d', f'--rdzv-endpoint=127.0.0.1:{free_port()}', '--rdzv-id=elastic')
    res = torchrun(killed, ['--first-attempt', '--report', 'resume'] + kill_args + common, None, elastic)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'restart' in (res.stdout + res.stderr).lower()  # the agent restarted the group
    for name in names:
        assert_same_file(straight / 'experiments' / run / name, killed / 'experiments' / run / name)
    return read_report(killed / 'resume', 0)


def rank_lines(folder, rank):
    with open(folder / f'rank{rank}.jsonl') as f:
        return [json.loads(line) for line in f]


def run_straight_then_kill_and_resume(straight, killed, kill_args):
    """``train.yml`` trained straight in ``straight``; in ``killed``: killed (``kill_args``), then --auto_resume.
    Returns what the resume restored (``--report``)."""
    res = run_module('mclir_basicsr.train', ['-opt', 'train.yml'], cwd=straight)
    assert res.returncode == 0, res.stderr[-3000:]
    res = instrumented(kill_args + ['--', '-opt', 'train.yml'], cwd=killed)
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    res = instrumented(['--report', 'resume', '--', '-opt', 'train.yml', '--auto_resume'], cwd=killed)
    assert res.returncode == 0, res.stderr[-3000:]
    return read_report(killed / 'resume')


# ---------------------------------------------------------------------------- training files compared tensor by tensor
def load_state(path):
    return torch.load(path, weights_only=True, map_location='cpu')


def equal_files(a, b):
    sa, sb = load_state(a), load_state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        ta, tb = sa[k], sb[k]
        assert ta.keys() == tb.keys()
        for name in ta:
            assert torch.equal(ta[name], tb[name]), (a, k, name)


def equal_states(a, b):
    sa, sb = load_state(a), load_state(b)
    assert sa['iter'] == sb['iter'] and sa['epoch'] == sb['epoch']
    ha, hb = sa['mclir']['history'], sb['mclir']['history']
    assert ha.keys() == hb.keys() and all(torch.equal(ha[k], hb[k]) for k in ha)
    for oa, ob in zip(sa['optimizers'], sb['optimizers']):
        for pid, st in oa['state'].items():
            assert all(torch.equal(st[k], ob['state'][pid][k]) for k in st if torch.is_tensor(st[k]))


def torch_file_tensors(path):
    """Every tensor of a torch file, by a flat key path (nested dicts and lists walked)."""
    out = {}

    def walk(prefix, value):
        if torch.is_tensor(value):
            out[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f'{prefix}.{k}', v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f'{prefix}.{i}', v)
    walk('', torch.load(path, weights_only=True, map_location='cpu'))
    return out


def assert_same_file(a, b):
    ta, tb = torch_file_tensors(a), torch_file_tensors(b)
    assert ta.keys() == tb.keys() and ta
    for k in ta:
        assert torch.equal(ta[k], tb[k]), (a, k)


# --------------------------------------------------------------------------------- the entry points refusing bad input
def train_file_without_data(root):
    """A complete training option file; its data is never read (every case fails before that)."""
    return write_options(root / 'train.yml', root / 'no_data', name='bad')


def write_file(root, name, text):
    path = root / name
    path.write_text(text)
    return path


# (id, the option file's text (None: no such file) or --force_yml entries on a good file, what the message says)
FILE_CASES = [
    ('missing_file', None, ['-opt ', 'no such file']),
    ('empty_file', '', ['-opt ', 'is empty']),
    ('yaml_syntax_error', 'name: a\n  model_type: [1\n', ['-opt ', 'YAML syntax error at line 2, column 13']),
    ('top_level_list', '- name\n- a\n', ['-opt ', 'holds a list, not a mapping']),
    ('top_level_scalar', 'just words\n', ['-opt ', "holds a string ('just words'), not a mapping"]),
    ('no_num_gpu', 'name: a\ndatasets: {}\npath: {}\n', ['has no top-level key num_gpu']),
]

FORCE_CASES = [
    ('force_text_for_number', ['train:total_iter=abc'],
     ['--force_yml train:total_iter=abc', 'is a number', "reads 'abc' as a string"]),
    ('force_exponent_number', ['train:optim_g:lr=2e-4'],
     ['--force_yml train:optim_g:lr=2e-4', 'write !!float2e-4']),
    ('force_no_equals', ['train:total_iter'], ['--force_yml train:total_iter', 'exactly one "="']),
    ('force_two_equals', ['path:pretrain_network_g=a=b'],
     ['--force_yml path:pretrain_network_g=a=b', 'exactly one "="']),
    ('force_unknown_block', ['trian:total_iter=5'], ['--force_yml trian:total_iter=5', 'has no trian',
                                                     'Did you mean train?']),
    ('force_through_a_number', ['train:total_iter:x=5'], ['--force_yml train:total_iter:x=5',
                                                          'train:total_iter is a number']),
    ('force_block_replaced', ['train:scheduler=abc'], ['--force_yml train:scheduler=abc', 'is a mapping']),
    ('force_bad_list', ['train:scheduler:milestones=[10,x]'], ['--force_yml train:scheduler:milestones=[10,x]',
                                                               'NameError']),
]


def case_args(root, content):
    if content is None:
        return ['-opt', str(root / 'missing.yml')]
    if isinstance(content, str):
        return ['-opt', str(write_file(root, 'case.yml', content))]
    return ['-opt', str(train_file_without_data(root)), '--force_yml'] + content


def assert_refused(code, err, parts, prog='mclir-train'):
    assert code != 0
    assert 'Traceback' not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: '), err
    for part in parts:
        assert part in lines[0], (part, lines[0])


def assert_nothing_written(root):
    assert not any((root / d).exists() for d in ('experiments', 'tb_logger', 'results'))


# ---------------------------------------------------------------------------------------------------- images and files
def luminance(img):
    return img.astype(np.float64) @ [0.299, 0.587, 0.114]


def grad_energy(img):
    g = luminance(img)
    return float((cv2.Sobel(g, -1, 1, 0) ** 2 + cv2.Sobel(g, -1, 0, 1) ** 2).mean())


def dark_channel(img):
    return float(cv2.erode(img.min(-1), np.ones((15, 15), np.uint8)).mean())


def files_by_path(root):
    return {osp.relpath(osp.join(d, f), root): open(osp.join(d, f), 'rb').read()
            for d, _, fs in os.walk(root) for f in fs}


def truncate_file(path, keep=0.5):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:int(len(data) * keep)])


# ------------------------------------------------------------------------------------------- paired image data on disk
def random_image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def image_pairs(root, n=3, gt=(16, 16, 3), lq=(8, 8, 3), lq_tmpl='{}', ext='.png'):
    """GT/LQ folders ``root/gt``, ``root/lq`` with ``n`` random pairs named img0..; returns (gt_dir, lq_dir)."""
    gt_dir, lq_dir = osp.join(str(root), 'gt'), osp.join(str(root), 'lq')
    for folder in (gt_dir, lq_dir):
        os.makedirs(folder, exist_ok=True)
    for i in range(n):
        assert cv2.imwrite(osp.join(gt_dir, f'img{i}{ext}'), random_image(gt, seed=i))
        assert cv2.imwrite(osp.join(lq_dir, lq_tmpl.format(f'img{i}') + ext), random_image(lq, seed=100 + i))
    return gt_dir, lq_dir


def pair_lmdbs(root, **kw):
    """:func:`image_pairs` made into ``root/gt.lmdb`` and ``root/lq.lmdb`` with the project's lmdb tool."""
    from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
    gt_dir, lq_dir = image_pairs(root, **kw)
    gt_db, lq_db = osp.join(str(root), 'gt.lmdb'), osp.join(str(root), 'lq.lmdb')
    folders_to_lmdb(gt_dir, lq_dir, gt_db, lq_db, quiet=True)
    return gt_db, lq_db


def paired_dataset(gt, lq, backend='disk', phase='train', **kw):
    """A ``PairedImageDataset`` block (``gt_size`` 8 for training); its name appears in no message of the checks."""
    ds = {'name': 'the_name', 'type': 'PairedImageDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
          'io_backend': {'type': backend}, 'phase': phase}
    if phase == 'train':
        ds['gt_size'] = 8
    ds.update(kw)
    return ds


# ------------------------------------------------------------------------- reference weights of other repositories
INTEGER_BUFFERS = ('queue_ptr', 'num_batches_tracked')


def reference_state(entries, seed, scale, ints=None):
    """A state dict rebuilt from a reference's recipe (tests/data/*/README.md): ``entries`` ``[(name, shape)]`` in the
    authors' names; every floating tensor drawn in sorted-name order from one generator (``randn * scale``;
    ``running_var`` as ``|draw| + 1``); integer buffers from ``ints`` or 0. Returned in ``entries``' order."""
    gen = torch.Generator().manual_seed(seed)
    ints = ints or {}
    values = {}
    for name, shape in sorted(entries):
        if name in ints:
            values[name] = ints[name]
        elif name.endswith(INTEGER_BUFFERS):
            values[name] = torch.zeros(shape, dtype=torch.long)
        else:
            draw = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
            values[name] = (draw.abs() + 1 if name.endswith('running_var') else draw).float()
    return {name: values[name] for name, _ in entries}


def changed_option_keys(original, changed):
    """The key paths (``datasets.train.gt_size``) whose values differ between two option dicts."""
    def flat(tree, prefix=''):
        out = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                out.update(flat(value, f'{prefix}{key}.'))
            else:
                out[f'{prefix}{key}'] = value
        return out
    a, b = flat(original), flat(changed)
    return sorted(k for k in set(a) | set(b) if a.get(k, '<absent>') != b.get(k, '<absent>'))


def key_allowed(key, patterns):
    """``key`` matches one of ``patterns`` (key paths with ``*`` for one level: ``datasets.*.dataroot_gt``)."""
    parts = key.split('.')
    return any(len(p.split('.')) == len(parts) and all(x in ('*', y) for x, y in zip(p.split('.'), parts))
               for p in patterns)
