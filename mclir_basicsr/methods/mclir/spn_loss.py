"""Self-Prior guided Negative loss (SPN) of Wu et al., "Learning from History: Task-agnostic Model Contrastive
Learning for Image Restoration", AAAI 2024 (arXiv 2309.06023)."""
import torch
from basicsr.archs.vgg_arch import NAMES, VGGFeatureExtractor
from basicsr.utils import get_root_logger
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F

from ...checks.options import OptionError, check_bool, check_known_keys, check_number
from ...losses.vgg_weights import RANDOM, resolve_vgg_weights, vgg_source

FORMS = ('subtract', 'ratio')
CRITERIA = ('l1', 'l2', 'fro')
VGG_TYPES = tuple(f'{n}{bn}' for n in NAMES for bn in ('', '_bn'))
AUTHORS_LAYER_WEIGHTS = {'relu1_2': 0.2, 'relu2_2': 0.3, 'relu3_3': 0.5}
RANDOM_VGG_SEED = 0


def _feature_distance(x, y, criterion):
    """Distance between ``x`` (B,C,H,W) and each of ``y`` (K,B,C,H,W): a (K,) tensor.

    l1: mean absolute difference; l2: mean squared difference; fro: Frobenius norm of the difference.
    """
    diff = x.unsqueeze(0) - y
    dims = tuple(range(1, diff.dim()))
    if criterion == 'l1':
        return diff.abs().mean(dim=dims)
    if criterion == 'l2':
        return diff.pow(2).mean(dim=dims)
    return torch.linalg.vector_norm(diff, dim=dims)


AUTO = 'auto'


@LOSS_REGISTRY.register()
class SPNLoss(nn.Module):
    """SPN loss: push the restored image away from the history copies' outputs in VGG feature space.

    ``form: subtract`` (the paper's and the authors' code)::

        L = - loss_weight * (1/N) * sum_i sum_l w_l * d(phi_l(out), phi_l(neg_i))

    ``form: ratio`` (bounded, contrastive, as AECR-Net's CR)::

        L = loss_weight * sum_l w_l * d(phi_l(out), phi_l(gt)) / (max((1/N) sum_i d(phi_l(out), phi_l(neg_i)),
                                                                       denominator_floor) + eps)

    The output goes through VGG once (with grad); GT and all negatives go through it in one batched no-grad call.

    Args:
        loss_weight (float | 'auto'): lambda, >= 0. Authors: 0.001 (pick it so the negative term is ~0.01-0.1x the
            reconstruction loss). ``auto``: set by the model every step to keep that ratio at ``target_ratio``
            (:mod:`mclir_basicsr.spn_weight`; keys ``target_ratio`` 0.03, ``auto_init_weight`` 1e-3,
            ``auto_momentum`` 0.9, ``auto_max_change`` 0.05 per step).
        form (str): 'subtract' | 'ratio'.
        vgg_type (str): vgg11|vgg13|vgg16|vgg19 (+ '_bn'). Authors: vgg16.
        layer_weights (dict): VGG layer name -> weight >= 0. Authors: relu1_2 0.2, relu2_2 0.3, relu3_3 0.5.
        use_input_norm (bool): ImageNet mean/std normalisation of [0, 1] inputs.
        range_norm (bool): map [-1, 1] inputs to [0, 1] first.
        criterion (str): 'l1' | 'l2' | 'fro' feature distance.
        vgg_weights (str | None): path of a torchvision VGG state dict; None looks in the standard places
            (experiments/pretrained_models/, $TORCH_HOME/hub/checkpoints/) and fails at once if absent;
            'random' uses random VGG features on purpose (seeded, deterministic; results differ from the paper).
        lq_negative (bool): add the degraded input, resized to the output size (bicubic), as one more negative.
        denominator_floor (float): ratio form: lower bound on the mean distance to the negatives.
        eps (float): ratio form: added to the denominator, > 0.
    """

    channels_last_on_cpu = True  # see forward; not an option (benchmarks/step_cost.py measures it)

    OPTION_DEFAULTS = dict(loss_weight=1e-3, form='subtract', vgg_type='vgg16', layer_weights=AUTHORS_LAYER_WEIGHTS,
                           use_input_norm=True, range_norm=False, criterion='l1', vgg_weights=None,
                           lq_negative=False, denominator_floor=0.0, eps=1e-7, target_ratio=None,
                           auto_init_weight=None, auto_momentum=None, auto_max_change=None)
    AUTO_DEFAULTS = dict(target_ratio=0.03, auto_init_weight=1e-3, auto_momentum=0.9, auto_max_change=0.05)

    def __init__(self, loss_weight=1e-3, form='subtract', vgg_type='vgg16', layer_weights=None, use_input_norm=True,
                 range_norm=False, criterion='l1', vgg_weights=None, lq_negative=False, denominator_floor=0.0,
                 eps=1e-7, target_ratio=None, auto_init_weight=None, auto_momentum=None, auto_max_change=None,
                 **unknown):
        super().__init__()
        args = dict(loss_weight=loss_weight, form=form, vgg_type=vgg_type, layer_weights=layer_weights,
                    use_input_norm=use_input_norm, range_norm=range_norm, criterion=criterion,
                    vgg_weights=vgg_weights, lq_negative=lq_negative, denominator_floor=denominator_floor, eps=eps,
                    target_ratio=target_ratio, auto_init_weight=auto_init_weight, auto_momentum=auto_momentum,
                    auto_max_change=auto_max_change, **unknown)  # unknown keys: an error naming the nearest valid one
        args = self.check_options(args, 'SPNLoss')
        # loss_weight: auto -> the model's AutoSPNWeight sets loss_weight every step, from auto_init_weight on
        self.auto_weight = {k: args[k] for k in self.AUTO_DEFAULTS} if args['loss_weight'] == AUTO else None
        self.loss_weight = args['auto_init_weight'] if self.auto_weight else args['loss_weight']
        self.form = args['form']
        self.criterion = args['criterion']
        self.layer_weights = dict(args['layer_weights'])
        self.lq_negative = args['lq_negative']
        self.denominator_floor = args['denominator_floor']
        self.eps = args['eps']
        self.vgg_weights = resolve_vgg_weights(args['vgg_weights'], args['vgg_type'], 'train.spn_opt.vgg_weights')
        logger = get_root_logger()
        if self.vgg_weights == RANDOM:
            logger.warning('SPNLoss uses RANDOM VGG features (vgg_weights: random): the feature space is not '
                           'the paper\'s ImageNet one, so results differ from the paper.')
        if self.form == 'ratio' and not self.lq_negative and self.denominator_floor == 0:
            logger.warning('SPNLoss form: ratio with the history copies as the only negatives and no '
                           'denominator_floor: the copies sit close to the network, the ratio can become large '
                           'and degrade training. Consider lq_negative: true or a denominator_floor.')
        # Build VGG without consuming the global RNG (keeps runs with and without SPN on the same random stream).
        with torch.random.fork_rng(devices=[]), vgg_source(self.vgg_weights):
            torch.manual_seed(RANDOM_VGG_SEED)
            self.vgg = VGGFeatureExtractor(
                layer_name_list=list(self.layer_weights),
                vgg_type=args['vgg_type'],
                use_input_norm=args['use_input_norm'],
                range_norm=args['range_norm'],
                requires_grad=False)

    @classmethod
    def check_options(cls, args, path):
        """Check SPNLoss keyword arguments; return them with defaults filled in. Messages name ``path.key``."""
        check_known_keys(args, list(cls.OPTION_DEFAULTS), path)
        out = dict(cls.OPTION_DEFAULTS)
        out.update({k: v for k, v in args.items() if v is not None or k == 'vgg_weights'})
        if out['layer_weights'] is None:
            out['layer_weights'] = AUTHORS_LAYER_WEIGHTS
        if out['loss_weight'] == AUTO:
            for key, default in cls.AUTO_DEFAULTS.items():
                out[key] = default if out[key] is None else out[key]
            out['target_ratio'] = check_number(out['target_ratio'], f'{path}.target_ratio', low=0, low_open=True)
            out['auto_init_weight'] = check_number(out['auto_init_weight'], f'{path}.auto_init_weight', low=0,
                                                   low_open=True)
            out['auto_momentum'] = check_number(out['auto_momentum'], f'{path}.auto_momentum', 0, 1, high_open=True)
            out['auto_max_change'] = check_number(out['auto_max_change'], f'{path}.auto_max_change', low=0,
                                                  low_open=True)
        else:
            given = [k for k in cls.AUTO_DEFAULTS if out[k] is not None]
            if given:
                raise OptionError(f'{path}.{given[0]} applies with {path}.loss_weight: auto (the weight is then set to '
                                  f'keep |l_spn| at target_ratio x the reconstruction loss); loss_weight is '
                                  f'{out["loss_weight"]!r}.')
            if isinstance(out['loss_weight'], str):
                raise OptionError(f'{path}.loss_weight must be a number or auto, got {out["loss_weight"]!r}.')
            out['loss_weight'] = check_number(out['loss_weight'], f'{path}.loss_weight', low=0)
        for key, choices in (('form', FORMS), ('criterion', CRITERIA), ('vgg_type', VGG_TYPES)):
            if out[key] not in choices:
                raise OptionError(f'{path}.{key} must be one of {", ".join(choices)}, got {out[key]!r}.')
        for key in ('use_input_norm', 'range_norm', 'lq_negative'):
            check_bool(out[key], f'{path}.{key}')
        out['denominator_floor'] = check_number(out['denominator_floor'], f'{path}.denominator_floor', low=0)
        out['eps'] = check_number(out['eps'], f'{path}.eps', low=0, low_open=True)
        lw = out['layer_weights']
        if not isinstance(lw, dict) or not lw:
            raise OptionError(f'{path}.layer_weights must be a non-empty mapping such as {AUTHORS_LAYER_WEIGHTS}, '
                              f'got {lw!r}.')
        names = NAMES[out['vgg_type'].replace('_bn', '')]
        for name, w in lw.items():
            if name not in names:
                raise OptionError(f'{path}.layer_weights.{name} is not a layer of {out["vgg_type"]}; valid names '
                                  f'are e.g. {", ".join(n for n in names if n.startswith("relu"))}.')
            check_number(w, f'{path}.layer_weights.{name}', low=0)
        vw = out['vgg_weights']
        if vw is not None and not isinstance(vw, str):
            raise OptionError(f'{path}.vgg_weights must be a file path or "random", got {vw!r}.')
        return out

    def train(self, mode=True):
        super().train(mode)
        self.vgg.eval()  # VGG is a fixed feature space
        return self

    def forward(self, output, negatives, gt=None, lq=None):
        """
        Args:
            output (Tensor): (B, C, H, W) restored image, with grad.
            negatives (list[Tensor] | Tensor): N tensors (B, C, H, W) or one (N, B, C, H, W); no grad needed.
            gt (Tensor): (B, C, H, W) ground truth; required by the ratio form.
            lq (Tensor): (B, C, h, w) degraded input; required when ``lq_negative``.
        Returns:
            Tensor: scalar loss (already multiplied by ``loss_weight``).
        """
        negs = list(negatives) if isinstance(negatives, (list, tuple)) else list(negatives.unbind(0))
        if self.lq_negative:
            if lq is None:
                raise ValueError('SPNLoss(lq_negative=True) needs lq=')
            if lq.shape[-2:] != output.shape[-2:]:
                lq = F.interpolate(lq, size=output.shape[-2:], mode='bicubic', align_corners=False)
            negs.append(lq)
        if not negs:
            raise ValueError('SPNLoss needs at least one negative')
        refs = negs
        if self.form == 'ratio':
            if gt is None:
                raise ValueError('SPNLoss(form="ratio") needs gt=')
            refs = [gt] + negs
        batch = output.shape[0]
        out_feats = self.vgg(output)
        with torch.no_grad():
            refs = torch.cat([r.detach() for r in refs], dim=0)
            if self.channels_last_on_cpu and refs.device.type == 'cpu':
                # oneDNN's convolutions run ~15-20% faster on NHWC input (same values up to float rounding);
                # this no-grad pass is the part of the step that grows with the number of negatives
                refs = refs.contiguous(memory_format=torch.channels_last)
            ref_feats = self.vgg(refs)
        loss, distances = 0, 0
        for name, weight in self.layer_weights.items():
            f_out = out_feats[name]
            f_ref = ref_feats[name].view(-1, batch, *f_out.shape[1:])
            if self.form == 'subtract':
                d_neg = _feature_distance(f_out, f_ref, self.criterion)
                loss = loss + weight * d_neg.mean()
            else:
                d_pos = _feature_distance(f_out, f_ref[:1], self.criterion)[0]
                d_neg = _feature_distance(f_out, f_ref[1:], self.criterion)
                loss = loss + weight * d_pos / (d_neg.mean().clamp_min(self.denominator_floor) + self.eps)
            distances = distances + weight * d_neg.detach()
        self.last_distances = distances  # (N,): layer-weighted feature distance of the output to each negative
        sign = -1.0 if self.form == 'subtract' else 1.0
        return sign * self.loss_weight * loss
