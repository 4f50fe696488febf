"""Per-iteration cost of an MCLIR (SPN) training step against BasicSR baselines, and its peak memory.

    python benchmarks/step_cost.py [--nets tiny,edsr_light,swinir_light] [--iters N] [--quick]

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

Writes benchmarks/out/step_cost.json and (with matplotlib) benchmarks/out/step_cost.png.
"""
import argparse
import copy
import gc
import json
import logging
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from collections import OrderedDict

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
import torch  # noqa: E402
from basicsr.archs import build_network  # noqa: E402
from basicsr.losses import build_loss  # noqa: E402
from basicsr.models import build_model  # noqa: E402
from basicsr.models.sr_model import SRModel  # noqa: E402
from basicsr.utils import get_root_logger  # noqa: E402
from basicsr.utils.registry import MODEL_REGISTRY  # noqa: E402

from mclir_basicsr.vgg_weights import vgg_source  # noqa: E402

OUT_DIR = osp.join(HERE, 'out')

# ------------------------------------------------------------------------------------------------ configuration
EDSR_COMMON = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'res_scale': 1, 'img_range': 255.,
               'rgb_mean': [0.4488, 0.4371, 0.4040]}
NETS = OrderedDict([
    # name: network, scale, batch, GT patch (LQ = GT / scale), base and MCLIR model types
    ('tiny', dict(network=dict(EDSR_COMMON, num_feat=32, num_block=4, upscale=2), scale=2, batch=4, gt=64,
                  base='SRModel', mclir='MCLIRModel')),
    ('edsr_light', dict(network=dict(EDSR_COMMON, num_feat=64, num_block=16, upscale=4), scale=4, batch=2, gt=96,
                        base='SRModel', mclir='MCLIRModel')),
    ('swinir_light', dict(network={'type': 'SwinIR', 'upscale': 4, 'in_chans': 3, 'img_size': 24, 'window_size': 8,
                                   'img_range': 1., 'depths': [6, 6, 6, 6], 'embed_dim': 60,
                                   'num_heads': [6, 6, 6, 6], 'mlp_ratio': 2, 'upsampler': 'pixelshuffledirect',
                                   'resi_connection': '1conv'},
                          scale=4, batch=2, gt=96, base='SwinIRModel', mclir='MCLIRSwinIRModel')),
])
LAYER_WEIGHTS = {'relu1_2': 0.2, 'relu2_2': 0.3, 'relu3_3': 0.5}  # the authors' SPN layers (vgg16)
VGG_TYPE = 'vgg16'
SPN_WEIGHT = 1e-3
PERIODS = {1: [100], 4: [100, 200, 500, 1000]}  # the authors' multi-negative schedule
DECAY = 0.1
INIT_DECAY = 0.01
ARMS = ['A', 'B', 'C', 'D', 'E1', 'E4']
# only with --arms: C and D with SPNLoss's NHWC trick off (SPNLoss before it); D with ONE of its 4 copies per step
# (train.history.negatives: round_robin)
EXTRA_ARMS = ['C0', 'D0', 'Ds', 'Cb', 'Cf', 'Cc', 'F', 'F0']
MCLIR_ARMS = ('C', 'D', 'C0', 'D0', 'Ds', 'Cb', 'Cf', 'Cc', 'F', 'F0')
ARM_LABELS = {'C0': 'C0: C, NHWC negatives off', 'D0': 'D0: D, NHWC negatives off',
              'Ds': 'Ds: D with history.negatives: round_robin', 'Cb': 'Cb: C under train.amp bf16',
              'Cf': 'Cf: C under train.amp fp16 + GradScaler', 'Cc': 'Cc: C with train.compile (inductor)',
              'F': 'F: C + perceptual_opt, one shared VGG pass', 'F0': 'F0: F with the VGG pass not shared',
              'A': 'A: L1', 'B': 'B: L1+Perceptual', 'C': 'C: MCLIR 1 copy', 'D': 'D: MCLIR 4 copies',
              'E1': "E1: authors' style, 1 copy", 'E4': "E4: authors' style, 4 copies"}
TARGETS = OrderedDict([('C/B', 1.10), ('D/B', 1.5), ('C/E1', 1.0), ('D/E4', 1.0), ('refresh_C', 0.02),
                       ('refresh_D', 0.02), ('mem_C', 1.10)])


# ------------------------------------------------------------------------------------------------ E: authors' style
@MODEL_REGISTRY.register()
class BenchAuthorsStyleModel(SRModel):
    """The authors' training step (their ``SRNegModel_Multi``), for timing comparison only.

    Copies are built with ``build_network`` and mixed in by a Python loop over ``named_parameters`` (parameters
    only); the negative term is one BasicSR ``PerceptualLoss(output, negative)`` call per negative, i.e. VGG of
    the output is recomputed for every negative and nothing is batched.
    """

    def init_training_settings(self):
        super().init_training_settings()
        train_opt = self.opt['train']
        self.neg_iter = list(train_opt['bench_neg_iter'])
        self.neg_decay = [float(train_opt['bench_neg_decay'])] * len(self.neg_iter)
        self.net_g_neg = [build_network(self.opt['network_g']).to(self.device) for _ in self.neg_iter]
        for net in self.net_g_neg:
            self.model_neg(net, float(train_opt['bench_neg_start']))
            net.eval()
            for p in net.parameters():
                p.requires_grad = False
        with torch.random.fork_rng(devices=[]), vgg_source('random'):
            torch.manual_seed(0)  # the same random VGG as SPNLoss (RANDOM_VGG_SEED)
            self.cri_neg = build_loss(copy.deepcopy(train_opt['bench_neg_opt'])).to(self.device)

    def model_neg(self, model, decay):
        net_g_params = dict(self.get_bare_model(self.net_g).named_parameters())
        for k, p in model.named_parameters():
            p.data.mul_(decay).add_(net_g_params[k].data, alpha=1 - decay)

    def refresh_all(self):
        for net, decay in zip(self.net_g_neg, self.neg_decay):
            self.model_neg(net, decay)

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq)
        with torch.no_grad():
            neg_out = [net(self.lq) for net in self.net_g_neg]
        loss_dict = OrderedDict()
        l_pix = self.cri_pix(self.output, self.gt)
        l_total = l_pix
        loss_dict['l_pix'] = l_pix
        l_neg = 0.0
        for n in neg_out:
            l_percep, _ = self.cri_neg(self.output, n)
            l_neg = l_neg + l_percep
        l_total = l_total - l_neg / len(neg_out)
        loss_dict['l_neg'] = l_neg
        l_total.backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        for idx, neg_iter in enumerate(self.neg_iter):
            if current_iter % neg_iter == 0:
                self.model_neg(self.net_g_neg[idx], decay=self.neg_decay[idx])


# ------------------------------------------------------------------------------------------------ building
def perceptual_opt(weight):
    return {'type': 'PerceptualLoss', 'layer_weights': dict(LAYER_WEIGHTS), 'vgg_type': VGG_TYPE,
            'use_input_norm': True, 'range_norm': False, 'perceptual_weight': weight, 'style_weight': 0.,
            'criterion': 'l1'}


def make_opt(net, arm, workdir, device):
    """An in-process BasicSR option dict (the shape of tests/conftest.make_opt) for ``arm`` on ``net``."""
    cfg = NETS[net]
    model_type = dict({a: cfg['mclir'] for a in MCLIR_ARMS}, A=cfg['base'], B=cfg['base'],
                      E1='BenchAuthorsStyleModel', E4='BenchAuthorsStyleModel')[arm]
    opt = {
        'name': f'bench_{net}_{arm}', 'model_type': model_type, 'scale': cfg['scale'],
        'num_gpu': 1 if device == 'cuda' else 0, 'manual_seed': 0, 'is_train': True, 'dist': False, 'rank': 0,
        'world_size': 1, 'network_g': copy.deepcopy(cfg['network']),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                 'models': osp.join(workdir, 'models'), 'training_states': osp.join(workdir, 'training_states'),
                 'experiments_root': workdir, 'visualization': osp.join(workdir, 'vis')},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]}, 'total_iter': 10 ** 6,
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 6], 'gamma': 0.5},
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': cfg['scale']}}},
    }
    if arm == 'B':
        opt['train']['perceptual_opt'] = perceptual_opt(1.0)
    if arm in MCLIR_ARMS:
        n = 4 if arm in ('D', 'D0', 'Ds') else 1
        opt['train']['history'] = {'init_decay': INIT_DECAY,
                                   'copies': [{'period': p, 'decay': DECAY} for p in PERIODS[n]]}
        if arm == 'Ds':  # one copy per step: history.negatives: round_robin
            opt['train']['history']['negatives'] = 'round_robin'
        opt['train']['spn_opt'] = {'type': 'SPNLoss', 'form': 'subtract', 'loss_weight': SPN_WEIGHT,
                                   'vgg_type': VGG_TYPE, 'layer_weights': dict(LAYER_WEIGHTS), 'criterion': 'l1',
                                   'use_input_norm': True, 'vgg_weights': 'random'}
        if arm == 'Cb':
            opt['train']['amp'] = {'enabled': True, 'dtype': 'bf16'}
        if arm == 'Cf':
            opt['train']['amp'] = {'enabled': True, 'dtype': 'fp16'}
        if arm == 'Cc':
            opt['train']['compile'] = {'enabled': True}
        if arm in ('F', 'F0'):  # B's perceptual loss too; both losses read the same VGG file
            opt['train']['perceptual_opt'] = perceptual_opt(1.0)
            opt['train']['spn_opt']['vgg_weights'] = random_vgg_file(workdir)
    if arm in ('E1', 'E4'):
        n = 1 if arm == 'E1' else 4
        opt['train'].update(bench_neg_iter=PERIODS[n], bench_neg_decay=DECAY, bench_neg_start=INIT_DECAY,
                            bench_neg_opt=perceptual_opt(SPN_WEIGHT))
    return opt


def random_vgg_file(workdir):
    """A torchvision-format VGG file holding SPNLoss's random VGG (seed 0): F and F0 give it to both losses."""
    from mclir_basicsr.vgg_weights import build_torchvision_vgg_features
    path = osp.join(osp.dirname(osp.abspath(workdir)), f'random_{VGG_TYPE}.pth')
    if not osp.isfile(path):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            feats = build_torchvision_vgg_features(VGG_TYPE)
        torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, path)
    return path


def build_arm(net, arm, workdir, device):
    opt = make_opt(net, arm, workdir, device)
    os.makedirs(opt['path']['models'], exist_ok=True)
    os.makedirs(opt['path']['training_states'], exist_ok=True)
    source = opt['train']['spn_opt']['vgg_weights'] if arm in ('F', 'F0') else 'random'
    from mclir_basicsr.models import mclir_model
    share = mclir_model.share_vgg_features
    if arm == 'F0':
        mclir_model.share_vgg_features = lambda *losses: None
    try:
        with vgg_source(source):  # B's PerceptualLoss: random VGG (F, F0: the file), never a download
            model = build_model(opt)
    finally:
        mclir_model.share_vgg_features = share
    if arm == 'F':
        assert model.shared_vgg is not None, 'F must share the VGG pass'
    if arm in ('C0', 'D0'):
        model.cri_spn.channels_last_on_cpu = False
    return model


def make_batches(net, device, count=4, seed=123):
    cfg = NETS[net]
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        gt = torch.rand(cfg['batch'], 3, cfg['gt'], cfg['gt'], generator=g)
        lq = torch.nn.functional.avg_pool2d(gt, cfg['scale'])
        out.append({'lq': lq.to(device), 'gt': gt.to(device)})
    return out


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def step_once(model, data, it, device):
    model.feed_data(data)
    sync(device)
    t0 = time.perf_counter()
    model.optimize_parameters(it)
    sync(device)
    return time.perf_counter() - t0


def copies_nbytes(model):
    mods = [c.module for c in model.history.copies] if hasattr(model, 'history') else getattr(model, 'net_g_neg', [])
    return sum(t.numel() * t.element_size() for m in mods for t in list(m.parameters()) + list(m.buffers()))


def check_same_loss(models, batches):
    """E's negative term equals SPNLoss's (same random VGG, same negative): the arms do the same work."""
    c, e = models['C'], models['E1']
    out = torch.rand_like(batches[0]['gt'])
    neg = torch.rand_like(out)
    with torch.no_grad():
        spn = c.cri_spn(out, [neg]).item()
        ref = -e.cri_neg(out, neg)[0].item()
    return abs(spn - ref) <= 1e-5 * max(1.0, abs(ref)), spn, ref


# ------------------------------------------------------------------------------------------------ timing
def time_net(net, arms, iters, warmup, device, workdir, log):
    log(f'\n[{net}] building {", ".join(arms)} ...')
    torch._dynamo.reset()  # Cc: compiled code of the previous net is not reused
    torch.manual_seed(0)
    models = OrderedDict((a, build_arm(net, a, osp.join(workdir, net, a), device)) for a in arms)
    batches = make_batches(net, device)
    same = check_same_loss(models, batches) if {'C', 'E1'} <= set(models) else None
    times = {a: [] for a in arms}
    t_start = time.time()
    for r in range(warmup + iters):
        order = arms[r % len(arms):] + arms[:r % len(arms)]  # rotate: no arm always runs first
        it = r + 1  # < 100: never a refresh inside the timed steps
        for a in order:
            dt = step_once(models[a], batches[r % len(batches)], it, device)
            if r >= warmup:
                times[a].append(dt)
        if r == warmup - 1 or (r >= warmup and (r - warmup + 1) % max(1, iters // 4) == 0):
            log(f'  round {r + 1}/{warmup + iters} ({time.time() - t_start:.0f} s)')
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


# ------------------------------------------------------------------------------------------------ profile
def profile_net(net, iters, device, workdir, log):
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
    top = []
    try:
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
        with profile(activities=acts) as prof:
            step_once(d_model, batch, 1, device)
        key = 'self_cuda_time_total' if device == 'cuda' else 'self_cpu_time_total'
        events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
        total = sum(getattr(e, key, 0) for e in events) or 1
        for e in events[:8]:
            top.append({'op': e.key, 'share': getattr(e, key) / total, 'calls': e.count})
        log('    torch.profiler, one D step, top operators by self time: ' + ', '.join(
            f'{t["op"]} {100 * t["share"]:.0f}% ({t["calls"]}x)' for t in top))
    except Exception as err:  # the profiler is a nice-to-have
        log(f'    torch.profiler failed: {err}')
    del models
    gc.collect()
    return {'parts_median_s': med, 'cost_model_s': model, 'top_ops': top}


# ------------------------------------------------------------------------------------------------ memory
def _rss_kb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return None


def memory_child(net, arm, steps, device):
    """Run in a subprocess: build ``arm`` and take ``steps`` steps; print one JSON line with the peak."""
    import tempfile
    get_root_logger().setLevel(logging.ERROR)
    batches = make_batches(net, device)
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
        model = build_arm(net, arm, workdir, device)
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


def measure_memory(net, arms, steps, device, threads, log):
    out = {}
    for arm in arms:
        cmd = [sys.executable, osp.abspath(__file__), '--_memory', f'{net}:{arm}', '--mem-steps', str(steps),
               '--device', device, '--threads', str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith('MEMORY_JSON ')), None)
        if proc.returncode != 0 or line is None:
            log(f'  memory {net}/{arm}: FAILED ({proc.returncode})\n{proc.stderr[-2000:]}')
            continue
        out[arm] = json.loads(line[len('MEMORY_JSON '):])
        log(f'  memory {net}/{arm}: peak +{out[arm]["peak_delta_bytes"] / 2 ** 20:.1f} MiB '
            f'(copies {out[arm]["copies_nbytes"] / 2 ** 20:.2f} MiB)')
    return out


# ------------------------------------------------------------------------------------------------ report
def bootstrap_ratio(times, num, den, reps=2000, seed=0):
    """90% interval of median(num)/median(den), resampling whole rounds (the arms of a round ran together)."""
    import random
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


def print_report(results, log):
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


def plot(results, path, log):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        log('matplotlib is not installed: no PNG (pip install matplotlib, or the "bench" extra).')
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
    parser.add_argument('--mem-steps', type=int, default=3)
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1; 0 = torch default). On a shared machine 2 OpenMP threads '
                             'wait for each other whenever one is descheduled, inflating small ops 4-8x')
    parser.add_argument('--out', default=OUT_DIR)
    parser.add_argument('--_memory', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    get_root_logger().setLevel(logging.ERROR)
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
    os.makedirs(args.out, exist_ok=True)
    lines = []

    def log(msg):
        print(msg, flush=True)
        lines.append(msg)

    import tempfile
    cpu = _cpu_model()
    log(f'device {device} ({cpu if device == "cpu" else torch.cuda.get_device_name()}), torch {torch.__version__}, '
        f'{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f} at start')
    t0 = time.time()
    results = OrderedDict()
    with tempfile.TemporaryDirectory() as workdir:
        for net in nets:
            iters = args.iters or (4 if args.quick else (20 if net == 'tiny' else 12))
            res = time_net(net, arms, iters, 1 if args.quick else args.warmup, device, workdir, log)
            res['device'] = device
            if not args.no_memory:
                mem_arms = ['B', 'C'] if args.quick else ['B', 'C', 'D'] + [a for a in ('F', 'F0') if a in arms]
                res['memory'] = measure_memory(net, mem_arms, args.mem_steps, device, args.threads, log)
            if not (args.quick or args.no_profile):
                res['profile'] = profile_net(net, min(iters, 8), device, workdir, log)
            res['ratios'], res['verdict'] = evaluate(res)
            results[net] = res
    print_report(results, log)
    took = time.time() - t0
    log(f'\ntotal {took:.0f} s; load average {os.getloadavg()[0]:.2f} at the end')
    summary = {'command': ' '.join([osp.relpath(sys.argv[0], ROOT) if sys.argv and sys.argv[0] else 'step_cost.py']
                                   + (sys.argv[1:] if argv is None else list(argv))),
               'device': device, 'cpu': cpu, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
               'python': platform.python_version(), 'seconds': took, 'targets': dict(TARGETS),
               'arms': ARM_LABELS, 'results': results}
    with open(osp.join(args.out, 'step_cost.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    png = plot(results, osp.join(args.out, 'step_cost.png'), log)
    log(f'wrote {osp.join(args.out, "step_cost.json")}' + (f' and {png}' if png else ''))
    return summary


def _cpu_model():
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith('Model name:'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


if __name__ == '__main__':
    main()
