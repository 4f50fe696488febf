"""DSRIR's three losses on the stage outputs of a progressive network (Wang et al., IPM 2025; see
:mod:`mclir_basicsr.archs.dsrir_arch`). Each takes the lists the network returns with ``with_stages=True``, final
stage first: ``images = [r3, r2, r1]``, ``log_vars = [s3, s2, s1]``.

* ``DSRIRUncertaintyLoss``: ``mean_i [ L1(r_i * exp(-s_i), gt * exp(-s_i)) + var_weight * mean(s_i) ]``;
* ``DSRIRPSNRLoss``: ``sum_i w_i P(r_i)`` with ``P(x) = 10 / ln 10 * mean_b log(mean_chw (x - gt)^2 + eps)``
  (per image, then the batch mean), stage weights ``[1, 0.25, 0.25]`` (the paper's ``P(r3) + 0.5 (P(r2) + P(r1)) / 2``);
* ``PositiveContrastLoss``: ``sum_l w_l [ sum_j a_j |phi_l(r3) - phi_l(p_j)| ] / (|phi_l(r3) - phi_l(lq)| + eps)``
  with positives ``p = [gt, r2, r1]``, ``a = [1, 0.25, 0.125]``, VGG19 relu1_1..relu5_1 with ``w = [1/32, 1/16,
  1/8, 1/4, 1]``, no input normalisation; gt and lq carry no gradient, r2 and r1 do.
"""
import math
import torch
from basicsr.archs.vgg_arch import NAMES, VGGFeatureExtractor
from basicsr.utils import get_root_logger
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F

from ...checks.options import OptionError, check_bool, check_known_keys, check_number
from ...losses.vgg_weights import RANDOM, resolve_vgg_weights, vgg_source

PAPER_LAYER_WEIGHTS = {'relu1_1': 1 / 32, 'relu2_1': 1 / 16, 'relu3_1': 1 / 8, 'relu4_1': 1 / 4, 'relu5_1': 1.0}
RANDOM_VGG_SEED = 0


def _stages(images):
    return list(images) if isinstance(images, (list, tuple)) else [images]


def _check_stage_weights(weights, path):
    if not isinstance(weights, (list, tuple)) or not weights:
        raise OptionError(f'{path} must be a non-empty list of numbers (final stage first), got {weights!r}.')
    return [check_number(w, f'{path}[{i}]', low=0) for i, w in enumerate(weights)]


class _CheckedLoss(nn.Module):
    """``OPTION_DEFAULTS`` checked by :meth:`check_options` (also called by the option checks, with the key path)."""

    OPTION_DEFAULTS = {}

    @classmethod
    def check_options(cls, args, path):
        check_known_keys(args, list(cls.OPTION_DEFAULTS), path)
        out = dict(cls.OPTION_DEFAULTS, **{k: v for k, v in args.items() if v is not None})
        out['loss_weight'] = check_number(out['loss_weight'], f'{path}.loss_weight', low=0)
        return cls.check_own(out, path)

    @classmethod
    def check_own(cls, out, path):
        return out


@LOSS_REGISTRY.register()
class DSRIRUncertaintyLoss(_CheckedLoss):
    """Uncertainty-weighted L1 of each stage, averaged over stages (see the module doc).

    Args:
        loss_weight (float): Default: 1.
        var_weight (float): weight of the mean log-variance. Default: 2 (the paper's).
    """

    OPTION_DEFAULTS = {'loss_weight': 1.0, 'var_weight': 2.0}

    def __init__(self, loss_weight=1.0, var_weight=2.0):
        super().__init__()
        args = self.check_options(dict(loss_weight=loss_weight, var_weight=var_weight), 'DSRIRUncertaintyLoss')
        self.loss_weight, self.var_weight = args['loss_weight'], args['var_weight']

    @classmethod
    def check_own(cls, out, path):
        out['var_weight'] = check_number(out['var_weight'], f'{path}.var_weight', low=0)
        return out

    def forward(self, images, log_vars, gt):
        images, log_vars = _stages(images), _stages(log_vars)
        if len(images) != len(log_vars):
            raise ValueError(f'DSRIRUncertaintyLoss: {len(images)} images but {len(log_vars)} log-variance maps.')
        total = 0
        for image, log_var in zip(images, log_vars):
            scale = torch.exp(-log_var)
            total = total + (image * scale - gt * scale).abs().mean() + self.var_weight * log_var.mean()
        return self.loss_weight * total / len(images)


@LOSS_REGISTRY.register()
class DSRIRPSNRLoss(_CheckedLoss):
    """Negative-PSNR loss of each stage, weighted (see the module doc). A single image uses the first weight, so
    it also works as ``pixel_opt`` of any network.

    Args:
        loss_weight (float): Default: 1.
        stage_weights (list[float]): final stage first. Default: [1, 0.25, 0.25].
        eps (float): inside the log. Default: 1e-8.
    """

    OPTION_DEFAULTS = {'loss_weight': 1.0, 'stage_weights': [1.0, 0.25, 0.25], 'eps': 1e-8}
    takes_stages = True  # as train.pixel_opt of a multi-output network it gets every stage's image
    negative_values = True  # a log: SPN's automatic weight, a fraction of the reconstruction loss, cannot follow it

    def __init__(self, loss_weight=1.0, stage_weights=(1.0, 0.25, 0.25), eps=1e-8):
        super().__init__()
        args = self.check_options(dict(loss_weight=loss_weight, stage_weights=list(stage_weights), eps=eps),
                                  'DSRIRPSNRLoss')
        self.loss_weight, self.stage_weights, self.eps = args['loss_weight'], args['stage_weights'], args['eps']

    @classmethod
    def check_own(cls, out, path):
        out['stage_weights'] = _check_stage_weights(out['stage_weights'], f'{path}.stage_weights')
        out['eps'] = check_number(out['eps'], f'{path}.eps', low=0, low_open=True)
        return out

    def forward(self, images, gt):
        images = _stages(images)
        if len(images) > len(self.stage_weights):
            raise ValueError(f'DSRIRPSNRLoss: {len(images)} stage outputs but stage_weights has '
                             f'{len(self.stage_weights)} entries.')
        total = 0
        for weight, image in zip(self.stage_weights, images):
            mse = (image - gt).pow(2).mean(dim=tuple(range(1, image.dim())))
            total = total + weight * torch.log(mse + self.eps).mean()
        return self.loss_weight * (10 / math.log(10)) * total


@LOSS_REGISTRY.register()
class PositiveContrastLoss(_CheckedLoss):
    """DSRIR's positive contrastive regularisation (see the module doc).

    Args:
        loss_weight (float): Default: 0.2 (the paper's).
        positive_weights (list[float]): weights of gt, then the earlier stages (second-to-last stage first).
            Default: [1, 0.25, 0.125].
        layer_weights (dict): VGG layer -> weight. Default: relu1_1..relu5_1 -> 1/32, 1/16, 1/8, 1/4, 1.
        vgg_type (str): Default: vgg19.
        use_input_norm (bool): ImageNet normalisation of the inputs. Default: false (the authors' code).
        vgg_weights (str | None): torchvision's ImageNet weights file; None looks in the standard places
            (experiments/pretrained_models/) and fails at once if absent; ``random``: random VGG features on purpose.
        eps (float): added to the negative distance. Default: 1e-7.
    """

    OPTION_DEFAULTS = {'loss_weight': 0.2, 'positive_weights': [1.0, 0.25, 0.125], 'layer_weights': None,
                       'vgg_type': 'vgg19', 'use_input_norm': False, 'vgg_weights': None, 'eps': 1e-7}

    def __init__(self, loss_weight=0.2, positive_weights=(1.0, 0.25, 0.125), layer_weights=None, vgg_type='vgg19',
                 use_input_norm=False, vgg_weights=None, eps=1e-7):
        super().__init__()
        args = self.check_options(dict(loss_weight=loss_weight, positive_weights=list(positive_weights),
                                       layer_weights=layer_weights, vgg_type=vgg_type, use_input_norm=use_input_norm,
                                       vgg_weights=vgg_weights, eps=eps), 'PositiveContrastLoss')
        self.loss_weight, self.eps = args['loss_weight'], args['eps']
        self.positive_weights, self.layer_weights = args['positive_weights'], args['layer_weights']
        self.vgg_weights = resolve_vgg_weights(args['vgg_weights'], args['vgg_type'],
                                               'PositiveContrastLoss.vgg_weights')
        if self.vgg_weights == RANDOM:
            get_root_logger().warning('PositiveContrastLoss uses RANDOM VGG features (vgg_weights: random): not the '
                                      'paper\'s ImageNet feature space.')
        with torch.random.fork_rng(devices=[]), vgg_source(self.vgg_weights):
            torch.manual_seed(RANDOM_VGG_SEED)  # building VGG leaves the training run's random stream alone
            self.vgg = VGGFeatureExtractor(list(self.layer_weights), vgg_type=args['vgg_type'],
                                           use_input_norm=args['use_input_norm'], requires_grad=False)

    @classmethod
    def check_own(cls, out, path):
        out['positive_weights'] = _check_stage_weights(out['positive_weights'], f'{path}.positive_weights')
        out['layer_weights'] = dict(out['layer_weights'] or PAPER_LAYER_WEIGHTS)
        if out['vgg_type'] not in NAMES or 'bn' in out['vgg_type']:
            raise OptionError(f'{path}.vgg_type must be one of vgg11, vgg13, vgg16, vgg19, got {out["vgg_type"]!r}.')
        for name, weight in out['layer_weights'].items():
            if name not in NAMES[out['vgg_type']]:
                raise OptionError(f'{path}.layer_weights.{name} is not a layer of {out["vgg_type"]}.')
            check_number(weight, f'{path}.layer_weights.{name}', low=0)
        check_bool(out['use_input_norm'], f'{path}.use_input_norm')
        if out['vgg_weights'] is not None and not isinstance(out['vgg_weights'], str):
            raise OptionError(f'{path}.vgg_weights must be a file path or "random", got {out["vgg_weights"]!r}.')
        out['eps'] = check_number(out['eps'], f'{path}.eps', low=0, low_open=True)
        return out

    def train(self, mode=True):
        super().train(mode)
        self.vgg.eval()  # a fixed feature space
        return self

    def forward(self, images, gt, lq):
        """``images``: final stage first (the anchor), then the earlier stages (positives with gradient)."""
        images = _stages(images)
        anchor, earlier = images[0], images[1:len(self.positive_weights)]
        if lq.shape[-2:] != anchor.shape[-2:]:  # SR: the input at the output's size
            lq = F.interpolate(lq, size=anchor.shape[-2:], mode='bicubic', align_corners=False)
        batch = anchor.shape[0]
        feats = self.vgg(torch.cat([anchor] + earlier))
        with torch.no_grad():
            fixed = self.vgg(torch.cat([gt.detach(), lq.detach()]))
        total = 0
        for name, weight in self.layer_weights.items():
            a, *others = feats[name].split(batch)
            positive, negative = fixed[name].split(batch)
            pull = self.positive_weights[0] * (a - positive).abs().mean()
            for w, other in zip(self.positive_weights[1:], others):
                pull = pull + w * (a - other).abs().mean()
            total = total + weight * pull / ((a - negative).abs().mean() + self.eps)
        return self.loss_weight * total
