"""Generate reference outputs from the public NAFNet code
(megvii-research/NAFNet @ 2b4af71ebe098a92a75910c233a3965a3e93ede4).

Run from /tmp/nafnet_ref (the scratch package `basicsr` lives there).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import torch

torch.set_num_threads(1)

from basicsr.models.archs.NAFNet_arch import NAFNet, NAFNetLocal
from basicsr.models.archs.Baseline_arch import Baseline, BaselineLocal
from basicsr.models.archs.local_arch import AvgPool2d
from basicsr.models.losses.losses import PSNRLoss
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

OUT = sys.argv[1] if len(sys.argv) > 1 else '/work/main/tests/data/nafnet/reference_outputs.pt'
COMMIT = '2b4af71ebe098a92a75910c233a3965a3e93ede4'

CLASSES = dict(NAFNet=NAFNet, NAFNetLocal=NAFNetLocal, Baseline=Baseline, BaselineLocal=BaselineLocal)


@torch.no_grad()
def det_fill(net):
    g = torch.Generator().manual_seed(0)
    for name, t in sorted(net.state_dict().items()):
        t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64).float() * 0.2)


def make_input(shape):
    g = torch.Generator().manual_seed(1)
    return torch.rand(shape, generator=g)


def pool_kernels(net):
    out = []
    for n, m in net.named_modules():
        if isinstance(m, AvgPool2d):
            ks = m.kernel_size
            out.append([n, None if ks is None else [int(k) for k in ks]])
    return out


# ---------------------------------------------------------------- param counts
SIDD = dict(enc_blk_nums=[2, 2, 4, 8], middle_blk_num=12, dec_blk_nums=[2, 2, 2, 2])
GOPRO = dict(enc_blk_nums=[1, 1, 1, 28], middle_blk_num=1, dec_blk_nums=[1, 1, 1, 1])
full_cfgs = {
    'NAFNet-SIDD-width32': ('NAFNet', dict(width=32, **SIDD)),
    'NAFNet-SIDD-width64': ('NAFNet', dict(width=64, **SIDD)),
    'NAFNetLocal-GoPro-width32': ('NAFNetLocal', dict(width=32, **GOPRO)),
    'NAFNetLocal-GoPro-width64': ('NAFNetLocal', dict(width=64, **GOPRO)),
    'Baseline-SIDD-width32': ('Baseline', dict(width=32, dw_expand=1, ffn_expand=2, **SIDD)),
    'Baseline-SIDD-width64': ('Baseline', dict(width=64, dw_expand=2, ffn_expand=2, **SIDD)),
    'BaselineLocal-GoPro-width32': ('BaselineLocal', dict(width=32, dw_expand=1, ffn_expand=2, **GOPRO)),
    'BaselineLocal-GoPro-width64': ('BaselineLocal', dict(width=64, dw_expand=2, ffn_expand=2, **GOPRO)),
}
param_counts, state_dict_keys = {}, {}
for name, (cls, cfg) in full_cfgs.items():
    kw = dict(cfg)
    if cls.endswith('Local'):
        # train_size only affects the conversion forward pass (no parameters);
        # a small one keeps the CPU cost low.
        kw['train_size'] = (1, 3, 32, 32)
    net = CLASSES[cls](**kw)
    param_counts[name] = int(sum(p.numel() for p in net.parameters()))
    # cross-check: Local variant has exactly the params of the plain class
    if cls.endswith('Local'):
        plain = CLASSES[cls[:-len('Local')]](**cfg)
        assert sum(p.numel() for p in plain.parameters()) == param_counts[name]
        assert list(plain.state_dict().keys()) == list(net.state_dict().keys())
        del plain
    if 'width32' in name:
        # sys.intern: equal key strings shared across lists are pickled once (memo) -> smaller file
        state_dict_keys[name] = [sys.intern(k) for k in net.state_dict().keys()]
    print(name, param_counts[name], len(net.state_dict()), flush=True)
    del net

# ---------------------------------------------------------------- network outputs
SMALL = dict(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])
SMALL_B = dict(SMALL, dw_expand=2, ffn_expand=2)
out_cfgs = [
    ('NAFNet_37x29', 'NAFNet', dict(SMALL), (1, 3, 37, 29)),
    ('NAFNetLocal_64x48', 'NAFNetLocal', dict(SMALL, train_size=(1, 3, 32, 32), fast_imp=False), (1, 3, 64, 48)),
    ('NAFNetLocal_40x40', 'NAFNetLocal', dict(SMALL, train_size=(1, 3, 32, 32), fast_imp=False), (1, 3, 40, 40)),
    ('NAFNetLocal_fastimp_64x48', 'NAFNetLocal', dict(SMALL, train_size=(1, 3, 32, 32), fast_imp=True), (1, 3, 64, 48)),
    ('Baseline_37x29', 'Baseline', dict(SMALL_B), (1, 3, 37, 29)),
    ('BaselineLocal_64x48', 'BaselineLocal', dict(SMALL_B, train_size=(1, 3, 32, 32), fast_imp=False), (1, 3, 64, 48)),
]
outputs = {}
for name, cls, cfg, shape in out_cfgs:
    net = CLASSES[cls](**cfg)   # Local: conversion pass happens here
    det_fill(net)               # weights filled AFTER construction
    net.eval()
    x = make_input(shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape, (y.shape, x.shape)
    assert torch.isfinite(y).all()
    outputs[name] = {
        'arch': cls,
        'config': {k: (tuple(v) if isinstance(v, tuple) else (list(v) if isinstance(v, list) else v))
                   for k, v in cfg.items()},
        'input_shape': tuple(shape),
        'output': y.detach().float().cpu().contiguous(),
        'kernels': pool_kernels(net),
    }
    print(name, tuple(y.shape), float(y.mean()), float(y.std()), outputs[name]['kernels'][:2], flush=True)

# Sanity: at 40x40 every local pool covers the whole map -> equals plain NAFNet with same weights
_plain = NAFNet(**SMALL)
det_fill(_plain)
_plain.eval()
with torch.no_grad():
    _d40 = (_plain(make_input((1, 3, 40, 40))) - outputs['NAFNetLocal_40x40']['output']).abs().max().item()
    _d64 = (_plain(make_input((1, 3, 64, 48))) - outputs['NAFNetLocal_64x48']['output']).abs().max().item()
print('local(40x40) vs plain max|diff| =', _d40, '; local(64x48) vs plain =', _d64)

# ---------------------------------------------------------------- PSNRLoss
g = torch.Generator().manual_seed(2)
pred = torch.rand((2, 3, 16, 16), generator=g)
target = torch.rand((2, 3, 16, 16), generator=g)
p = pred.clone().requires_grad_(True)
loss = PSNRLoss(loss_weight=1, reduction='mean')(p, target)
loss.backward()
loss_y = PSNRLoss(loss_weight=1, reduction='mean', toY=True)(pred.clone(), target)
psnr_loss = {
    'pred_target_shape': (2, 3, 16, 16),
    'seed': 2,
    'loss': float(loss.item()),
    'loss_toY': float(loss_y.item()),
    'grad_pred': p.grad.detach().float().clone(),
}
print('psnr_loss', psnr_loss['loss'], psnr_loss['loss_toY'])

# ---------------------------------------------------------------- metrics
rng = np.random.default_rng(3)
img = rng.integers(0, 256, size=(48, 40, 3)).astype(np.uint8)
img2 = rng.integers(0, 256, size=(48, 40, 3)).astype(np.uint8)
g = torch.Generator().manual_seed(4)
ta = torch.rand((1, 3, 48, 40), generator=g)
tb = torch.rand((1, 3, 48, 40), generator=g)
metrics = {
    'uint8': {
        'shape': (48, 40, 3),
        'rng': 'np.random.default_rng(3).integers(0,256,size=(48,40,3)).astype(uint8), img then img2',
        'psnr': float(calculate_psnr(img, img2, crop_border=0)),
        'ssim': float(calculate_ssim(img, img2, crop_border=0)),
        'psnr_y': float(calculate_psnr(img, img2, crop_border=0, test_y_channel=True)),
        'ssim_y': float(calculate_ssim(img, img2, crop_border=0, test_y_channel=True)),
        'ssim_2d': float(calculate_ssim(img, img2, crop_border=0, ssim3d=False)),
    },
    'tensor': {
        'shape': (1, 3, 48, 40), 'rng': 'torch.Generator().manual_seed(4); a=torch.rand; b=torch.rand',
        'psnr': float(calculate_psnr(ta, tb, crop_border=0)),
        'ssim': float(calculate_ssim(ta, tb, crop_border=0)),
        'psnr_y': float(calculate_psnr(ta, tb, crop_border=0, test_y_channel=True)),
        'ssim_y': float(calculate_ssim(ta, tb, crop_border=0, test_y_channel=True)),
        'ssim_2d': float(calculate_ssim(ta, tb, crop_border=0, ssim3d=False)),
    },
}
print('metrics', metrics)

ref = {
    'source': f'megvii-research/NAFNet@{COMMIT}',
    'param_counts': param_counts,
    'state_dict_keys': state_dict_keys,
    'outputs': outputs,
    'psnr_loss': psnr_loss,
    'metrics': metrics,
}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
torch.save(ref, OUT)  # default protocol 2: loadable with weights_only=True
print('saved', OUT, os.path.getsize(OUT), 'bytes')
