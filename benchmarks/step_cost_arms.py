"""The arms of ``step_cost.py``: networks, the option dict of every arm, the authors'-style model E, the batches.

A-D, F and the C/D variants are built with ``basicsr.models.build_model`` from option dicts shaped like
``tests/conftest.make_opt``; E1/E4 are :class:`BenchAuthorsStyleModel`, registered here for the comparison only.
"""
import copy
import os
import os.path as osp
from collections import OrderedDict

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models import build_model
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY

from mclir_basicsr.vgg_weights import vgg_source  # noqa: E402

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
# only with --arms: C and D with SPNLoss's NHWC negatives pass off; D with ONE of its 4 copies per step
# (train.history.negatives: round_robin); C under train.amp bf16 / fp16; C with train.compile; C + B's perceptual_opt
# with the VGG pass of the output shared / not shared
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


def perceptual_opt(weight):
    """BasicSR's ``PerceptualLoss`` on SPN's VGG layers: B's loss and E's negative term."""
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
    """The model of ``arm`` on ``net``, its files under ``workdir``; no VGG is ever downloaded."""
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
    """``count`` random GT batches of ``net``'s size and their LQ (average pooling by the scale)."""
    cfg = NETS[net]
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        gt = torch.rand(cfg['batch'], 3, cfg['gt'], cfg['gt'], generator=g)
        lq = torch.nn.functional.avg_pool2d(gt, cfg['scale'])
        out.append({'lq': lq.to(device), 'gt': gt.to(device)})
    return out


def copies_nbytes(model):
    """Bytes of the history copies' parameters and buffers (E: its ``net_g_neg`` networks)."""
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
