"""The arms of ``step_cost_families``: for DCPT, DSRIR and ConStyle, our model class (``build_model`` from the demo
option file) and a step written here from the authors' published training loops, on the same network class,
weights (same seed), batch and patch.

The authors' loops, as their repositories train (read, not copied; written here in plain PyTorch):

* DCPT (MILab-PKU/dcpt, ``DCPTModel.optimize_parameters``): ``net_g(gt)`` against GT (L1); a second pass of
  ``lq`` up to the decoders (their ``hook=True`` stops before ``ending``) with forward hooks on the decoders; the
  classifier on the hooked features (last first); one backward of the sum; ``optimizer_g`` and ``optimizer_dc`` step;
* DSRIR (xfwang23/DSRIR, ``train.py``): one pass with the stage outputs; the uncertainty loss per stage (mean), the
  PSNR loss ``P(r3) + 0.5 (P(r2) + P(r1)) / 2`` and the positive-contrast loss with VGG19 called once per tensor
  (anchor, gt, two earlier stages, lq: five calls, gradients through three); ``loss.item()`` every step;
* ConStyle (Dongqi-Fan/IRConStyle, ``ConStyleModel.optimize_parameters`` and ``ConStyle.train_forward``): every step
  the contrastive pass (query encoder; momentum update by a loop over the parameters; key encoder of gt; logits
  against a clone of the queue; enqueue that deep-copies two queue slices, each copying the whole queue), then the
  restorer on the query's code and features; L1, and up to ``ConStyle_iter`` InfoNCE, content (MSE of query and key)
  and style (minus the MSE of the codes' Gram matrices and the queue slices'). After ``ConStyle_iter`` the
  prompter's parameters are set ``requires_grad=False`` and only L1 remains, but the contrastive pass still runs.
"""
import copy
import os
import os.path as osp

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models import build_model

from benchmarks.common import read_options

SEED = 0  # both arms' networks are built right after torch.manual_seed(SEED): the same weights
DEMO = 'options/train'
FAMILIES = {
    # family: option file, batch, patch (GT = LQ, scale 1), ConStyle_iter, arms
    'dcpt': dict(options='dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml', batch=8, patch=64),
    'dsrir': dict(options='all_in_one/demo/train_DSRIR_AIO3_demo.yml', batch=3, patch=64),
    'constyle': dict(options='all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml', batch=8, patch=64,
                     constyle_iter=10 ** 6),
    'constyle_frozen': dict(options='all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml', batch=8, patch=64,
                            constyle_iter=0, extra=['ours_nograd']),
    # the joint phase with the paper's queue (65760 codes, 33.7 MB) instead of the demo's 512
    'constyle_queue65760': dict(options='all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml', batch=8, patch=64,
                                constyle_iter=10 ** 6, queue_size=65760),
}
TINY = dict(batch=2, patch=32)  # the unit test's size
ARM_LABELS = {'ours': 'our model class (build_model)', 'authors': "the authors' loop, written in the benchmark",
              'ours_nograd': 'ours with the frozen prompter set requires_grad=False from the benchmark (what not '
                             'back-propagating through it would save; the package is unchanged)'}


def family_arms(family):
    return ['ours', 'authors'] + FAMILIES[family].get('extra', [])


def family_opt(family, workdir, device):
    """The demo option file of ``family`` as an in-process option dict (no data, no validation, no logger)."""
    cfg = FAMILIES[family]
    demo = read_options(osp.join(DEMO, cfg['options']))
    opt = {k: copy.deepcopy(demo[k]) for k in ('model_type', 'network_g', 'network_dc', 'hook_names', 'train')
           if k in demo}
    opt.update(name=f'bench_{family}', scale=1, num_gpu=1 if device == 'cuda' else 0, manual_seed=SEED,
               is_train=True, dist=False, rank=0, world_size=1, datasets={'train': demo['datasets']['train']},
               path={'pretrain_network_g': None, 'strict_load_g': True, 'pretrain_network_dc': None,
                     'resume_state': None, 'models': osp.join(workdir, 'models'),
                     'training_states': osp.join(workdir, 'training_states'), 'experiments_root': workdir,
                     'visualization': osp.join(workdir, 'vis')})
    if 'constyle_iter' in cfg:
        opt['train']['ConStyle_iter'] = cfg['constyle_iter']
    if 'queue_size' in cfg:
        opt['network_g']['constyle']['queue_size'] = cfg['queue_size']
    return opt


def optimizer(opt, key, params):
    cfg = dict(opt['train'][key])
    return getattr(torch.optim, cfg.pop('type'))([p for p in params if p.requires_grad], **cfg)


class AuthorsDCPT:
    """DCPT pre-training as the authors' ``DCPTModel`` steps (module doc)."""

    def __init__(self, opt, device):
        torch.manual_seed(SEED)
        self.net_g = build_network(copy.deepcopy(opt['network_g'])).to(device).train()
        self.net_dc = build_network(copy.deepcopy(opt['network_dc'])).to(device).train()
        self.cri_pix = build_loss(dict(opt['train']['pixel_opt'])).to(device)
        self.cri_classify = build_loss(dict(opt['train']['classify_opt'])).to(device)
        self.optimizer_g = optimizer(opt, 'optim_g', self.net_g.parameters())
        self.optimizer_dc = optimizer(opt, 'optim_dc', self.net_dc.parameters())
        self.hook_outputs = []
        for decoder in self.net_g.decoders:  # their hooks stay on: they also fire in the generation pass
            decoder.register_forward_hook(lambda module, inputs, output: self.hook_outputs.append(output))
        self.device = device

    def feed_data(self, data):
        self.lq, self.gt = data['lq'].to(self.device), data['gt'].to(self.device)
        self.dataset_idx = data['label'].to(self.device)

    def features_pass(self, x):
        """Their ``net_g(lq, hook=True)``: the U-Net up to the last decoder, no ``ending``, no residual."""
        net = self.net_g
        feat = net.intro(net._pad(x))
        skips = []
        for encoder, down in zip(net.encoders, net.downs):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = net.middle_blks(feat)
        for decoder, up, skip in zip(net.decoders, net.ups, reversed(skips)):
            feat = decoder(up(feat) + skip)

    def optimize_parameters(self, current_iter):
        self.net_g.train()
        self.net_dc.eval()
        self.optimizer_g.zero_grad()
        pix_output = self.net_g(self.gt)
        self.hook_outputs = []
        l_pix = self.cri_pix(pix_output, self.gt)
        self.net_dc.train()
        self.optimizer_dc.zero_grad()
        self.features_pass(self.lq)
        logits = self.net_dc(self.hook_outputs[::-1])
        l_classify = self.cri_classify(logits, self.dataset_idx)
        (l_pix + l_classify).backward()
        self.optimizer_g.step()
        self.optimizer_dc.step()
        self.hook_outputs = []
        self.log_dict = {'l_pix': l_pix.item(), 'l_classify': l_classify.item()}  # their reduce_loss_dict


class AuthorsDSRIR:
    """DSRIR as the authors' ``train.py`` steps (module doc); VGG19 is our PositiveContrastLoss's (same weights)."""

    PSNR_SCALE = 10 / torch.log(torch.tensor(10.)).item()

    def __init__(self, opt, device):
        torch.manual_seed(SEED)
        self.net_g = build_network(copy.deepcopy(opt['network_g'])).to(device).train()
        pocl = build_loss(dict(opt['train']['pocl_opt'])).to(device)
        self.vgg, self.layers = pocl.vgg.eval(), list(pocl.layer_weights.items())
        self.optimizer = optimizer(opt, 'optim_g', self.net_g.parameters())
        self.device = device

    def feed_data(self, data):
        self.target, self.input = data['gt'].to(self.device), data['lq'].to(self.device)

    def uncertainty(self, target, restored, log_var):
        s = torch.exp(-log_var)
        return F.l1_loss(restored * s, target * s) + 2 * log_var.mean()

    def psnr(self, pred, target):
        return self.PSNR_SCALE * torch.log(((pred - target) ** 2).mean(dim=(1, 2, 3)) + 1e-8).mean()

    def pocl(self, a, p0, p1, p2, n):
        feats = [self.vgg(x) for x in (a, p0, p1, p2, n)]  # one VGG call per tensor, as theirs
        loss = 0
        for name, weight in self.layers:
            fa, f0, f1, f2, fn = (f[name] for f in feats)
            d_ap = F.l1_loss(fa, f0.detach()) + 0.25 * F.l1_loss(fa, f1) + 0.125 * F.l1_loss(fa, f2)
            loss = loss + weight * d_ap / (F.l1_loss(fa, fn.detach()) + 1e-7)
        return loss

    def optimize_parameters(self, current_iter):
        for param in self.net_g.parameters():
            param.grad = None
        self.optimizer.zero_grad()
        restored, log_vars = self.net_g(self.input, with_stages=True)
        t = self.target
        loss_ul = sum(self.uncertainty(t, r, v) for r, v in zip(restored, log_vars)) / 3
        loss_psnr = self.psnr(t, restored[0]) + 0.5 * (self.psnr(t, restored[1]) + self.psnr(t, restored[2])) / 2
        loss_pocl = self.pocl(restored[0], t, restored[1], restored[2], self.input)
        loss = loss_ul + loss_psnr + 0.2 * loss_pocl
        loss.backward()
        self.optimizer.step()
        self.epoch_loss = loss.item()  # and the progress bar prints each term
        self.log_dict = {'l_ul': loss_ul.item(), 'l_psnr': loss_psnr.item(), 'l_pocl': 0.2 * loss_pocl.item()}


class AuthorsConStyle:
    """ConStyle joint training as the authors' ``ConStyleModel`` steps (module doc). The queue is a view of our
    network's in their layout (dim x K); the enqueue deep-copies as theirs."""

    def __init__(self, opt, device):
        torch.manual_seed(SEED)
        self.net_g = build_network(copy.deepcopy(opt['network_g'])).to(device).train()
        self.prompter = self.net_g.prompter
        self.queue = self.prompter.queue.t()
        self.constyle_iter = int(opt['train']['ConStyle_iter'])
        self.cri_pix = build_loss(dict(opt['train']['pixel_opt'])).to(device)
        self.optimizer_g = optimizer(opt, 'optim_g', self.net_g.parameters())
        self.device = device

    def feed_data(self, data):
        self.lq, self.gt = data['lq'].to(self.device), data['gt'].to(self.device)

    def contrast(self, im_q, im_k):
        p = self.prompter
        q, feas = p.encoder_q(im_q)
        with torch.no_grad():
            for param_q, param_k in zip(p.encoder_q.parameters(), p.encoder_k.parameters()):
                param_k.data = param_k.data * p.momentum + param_q.data * (1.0 - p.momentum)
            k = p.encoder_k(im_k)[0][1]
        l_pos = torch.einsum('nc,nc->n', q[1], k).unsqueeze(-1)
        l_neg = torch.einsum('nc,ck->nk', q[1], self.queue.clone().detach())
        logits = torch.cat([l_pos, l_neg], dim=1) / p.temperature
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=self.device)
        return q, k, self.dequeue_and_enqueue(q[1]), logits, labels, feas

    @torch.no_grad()
    def dequeue_and_enqueue(self, codes):
        n, size = codes.shape[0], self.queue.shape[1]
        ptr1 = int(self.prompter.queue_ptr)
        oldest = copy.deepcopy(self.queue[:, ptr1:ptr1 + n].detach())  # copies the whole queue's storage
        ptr2 = (ptr1 + n) % size
        nxt = copy.deepcopy(self.queue[:, ptr2:ptr2 + n].detach())
        self.queue[:, ptr1:ptr1 + n] = codes.T
        self.prompter.queue_ptr.fill_((ptr1 + n) % size)
        return [nxt.T, oldest.T]

    def optimize_parameters(self, current_iter):
        use_constyle = current_iter <= self.constyle_iter
        if not use_constyle:
            for param_q, param_k in zip(self.prompter.encoder_q.parameters(), self.prompter.encoder_k.parameters()):
                param_k.requires_grad = False
                param_q.requires_grad = False
        self.optimizer_g.zero_grad()
        query, pos, neg, logits, labels, feas = self.contrast(self.lq, self.gt)
        output = self.net_g.restore(self.lq, query[1], feas)
        losses = {'l_pix': self.cri_pix(output, self.gt)}
        if use_constyle:
            losses['l_CrossEntropy'] = F.cross_entropy(logits, labels)
            losses['l_content'] = (query[1] - pos).pow(2).mean()
            n = query[0].shape[-1] * query[0].shape[-2]
            losses['l_style'] = -sum((q @ q.T / n - o @ o.T / n).pow(2).mean() for q, o in zip(query, neg))
        sum(losses.values()).backward()
        self.optimizer_g.step()
        self.log_dict = {k: v.item() for k, v in losses.items()}


AUTHORS = {'dcpt': AuthorsDCPT, 'dsrir': AuthorsDSRIR, 'constyle': AuthorsConStyle, 'constyle_frozen': AuthorsConStyle,
           'constyle_queue65760': AuthorsConStyle}


def build_family_arm(family, arm, workdir, device):
    """``arm`` of ``family``: an object with ``feed_data`` and ``optimize_parameters``; files under ``workdir``."""
    opt = family_opt(family, workdir, device)
    if arm == 'authors':
        return AUTHORS[family](opt, device)
    os.makedirs(opt['path']['models'], exist_ok=True)
    os.makedirs(opt['path']['training_states'], exist_ok=True)
    torch.manual_seed(SEED)
    model = build_model(opt)
    if arm == 'ours_nograd':
        model.prompter.requires_grad_(False)
    return model


def family_batches(family, device, count=4, seed=123, tiny=False):
    """``count`` batches of ``family``'s size: GT, LQ = GT + noise (scale 1), a degradation label (DCPT)."""
    size = TINY if tiny else FAMILIES[family]
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        gt = torch.rand(size['batch'], 3, size['patch'], size['patch'], generator=g)
        lq = (gt + 0.1 * torch.randn(gt.shape, generator=g)).clamp(0, 1)
        label = torch.randint(0, 3, (size['batch'], ), generator=g)
        out.append({'lq': lq.to(device), 'gt': gt.to(device), 'label': label.to(device)})
    return out


def step_losses(model):
    """The sum of the losses an arm logged in its last step (ours: the ``l_*`` entries of ``log_dict``)."""
    return sum(v for k, v in model.log_dict.items() if k.startswith('l_'))


def same_weights(a, b):
    """Both arms start from the same network weights (``net_g``; DCPT also ``net_dc``)."""
    nets = ['net_g'] + (['net_dc'] if hasattr(a, 'net_dc') else [])
    return all(torch.equal(x, y) for n in nets
               for x, y in zip(getattr(a, n).state_dict().values(), getattr(b, n).state_dict().values()))
