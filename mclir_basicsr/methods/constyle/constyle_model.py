"""ConStyleModel / IRConStyleModel: a restorer prompted by ConStyle (Fan et al.); MCLIRConStyleModel adds SPN.

One iteration of ConStyleModel (the authors' v1 joint training):

* up to ``train.ConStyle_iter``: ``net_g(lq, gt=gt)`` runs the prompter's contrastive pass (query codes of ``lq``,
  momentum key of ``gt``, queue update) and restores ``lq``; the loss is ``pixel_opt`` (+ ``perceptual_opt``) plus
  the configured ``CrossEntropy_opt`` (InfoNCE, positive at 0), ``content_opt`` (query vs key) and ``style_opt``
  (Gram similarities vs the oldest queue slices);
* after it: the prompter is frozen (its weights never change again, its BatchNorms use their running statistics):
  ``net_g(lq)`` and the restoration loss only. Frozen = no gradient reaches it (single process: it needs none, so no
  backward runs through it; under DDP its gradients are dropped before each optimiser step), so
  the optimiser (AdamW's weight decay included) never touches it and DDP still sees every parameter used.

IRConStyleModel loads a trained prompter from ``path.pretrain_constyle`` and keeps it frozen from the first step.
Validation, test and EMA are SRModel's: ``net_g(lq)`` restores. A step with a non-finite loss or gradient is
skipped (``train.divergence_guard``); ``train.grad_clip`` applies. The queue, its position and the key encoder are
part of ``net_g`` (saved with it); the guard's count is in the training state.

SPN (``model_type: MCLIRConStyleModel``, or ``MCLIRModel`` with ``base_model_type: ConStyleModel``; with a frozen
pre-trained prompter ``MCLIRIRConStyleModel`` / ``base_model_type: IRConStyleModel``): history copies are snapshots of
the whole network, prompter included; their negatives are their restorations of ``lq``.
"""
import torch
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DistributedDataParallel

from ...training.reconstruction import reconstruction_losses
from ...training.step import STEP_KEYS, TrainingStep
from ...utils import bare_module
from ..mclir.mclir_model import mclir_model_class
from .constyle_authors_keys import rename_authors_state
from .mixing import MixingAugment, parse_mixing
from .options import AUX_LOSSES, PATH_KEYS, check_constyle_options
from .prompted_restorer import PROMPTER_PREFIX

CONSTYLE_TRAIN_KEYS = tuple(AUX_LOSSES) + ('ConStyle_iter', 'mixing_augs', 'progressive')
IR_TRAIN_KEYS = ('mixing_augs', 'progressive')  # IRConStyleModel: no prompter losses, no ConStyle_iter


def load_pretrained_prompter(net_g, path_opt):
    """The prompter of ``path.pretrain_constyle`` (a ConStyleModel checkpoint) into ``net_g``'s."""
    src, key = path_opt['pretrain_constyle'], path_opt.get('param_key_constyle', 'params_ema')
    state = torch.load(src, map_location='cpu', weights_only=True)
    if key not in state:
        raise KeyError(f'path.pretrain_constyle: {src} has no {key!r} entry (it has {", ".join(state)}); set '
                       f'path.param_key_constyle.')
    state = rename_authors_state(dict(state[key]))  # the authors' files load as they are
    weights = {k[len(PROMPTER_PREFIX):]: v for k, v in state.items() if k.startswith(PROMPTER_PREFIX)}
    if not weights:
        raise KeyError(f'path.pretrain_constyle: {src} ({key}) holds no {PROMPTER_PREFIX}* weights: it must be a '
                       f'checkpoint of a network with a ConStyle prompter (ConStyleModel\'s net_g_<iter>.pth).')
    bare_module(net_g).prompter.encoder_q.load_state_dict(weights, strict=path_opt.get('strict_load_constyle', True))
    get_root_logger().info(f'ConStyle prompter loaded from {src} ({key}, {len(weights)} tensors), frozen.')


class PromptedSteps:
    """Mixin: the training losses of a network with a ConStyle prompter, and its freezing (see the module doc)."""

    frozen_from_start = False

    def init_training_settings(self):
        if self.frozen_from_start:  # before anything copies net_g (EMA, history copies)
            load_pretrained_prompter(self.net_g, self.opt['path'])
        super().init_training_settings()
        train_opt = self.opt['train']
        self.constyle_iter = 0 if self.frozen_from_start else int(train_opt['ConStyle_iter'])
        self.aux_losses = {name: build_loss(dict(train_opt[key])).to(self.device)
                           for key, name in AUX_LOSSES.items() if train_opt.get(key) is not None}
        self.prompter = bare_module(self.net_g).prompter
        self.prompter_frozen = False
        self.optimizer_g.register_step_pre_hook(self._keep_frozen_prompter)
        mixing = parse_mixing(train_opt.get('mixing_augs'))
        self.mixing = MixingAugment(mixing) if mixing and mixing['mixup'] else None

    def progressive_batch(self, current_iter):
        super().progressive_batch(current_iter)
        if self.mixing is not None:  # training batches only (validation never reaches the step)
            self.gt, self.lq = self.mixing(self.gt, self.lq)

    def training_losses(self, current_iter):
        self.style_distance = None
        if current_iter > self.constyle_iter:
            self.freeze_prompter(current_iter)
            self.output = self.train_net_g(self.lq)
            return reconstruction_losses(self, self.output)
        out = self.train_net_g(self.lq, gt=self.gt)
        self.output = out['output']
        losses = reconstruction_losses(self, self.output)
        for name, loss in self.aux_losses.items():
            if name == 'l_CrossEntropy':
                target = torch.zeros(out['logits'].shape[0], dtype=torch.long, device=self.device)
                losses[name] = loss(out['logits'], target)
            elif name == 'l_content':
                losses[name] = loss(out['codes'][1], out['key'])
            else:
                losses[name] = loss(out['codes'], out['older'])
                self.style_distance = max(loss.last_distances)  # uncapped: what the cap holds back
        return losses

    def freeze_prompter(self, current_iter):
        if not self.prompter_frozen:
            self.prompter_frozen = True
            get_root_logger().info(f'ConStyle prompter frozen from iteration {current_iter}.')
            if not isinstance(self.net_g, DistributedDataParallel):
                # no backward through the prompter: its gradients would be dropped anyway. Under DDP they are still
                # computed (and dropped before the step): its reducer expects one for every parameter it was built with
                self.prompter.requires_grad_(False)
        self.prompter.eval()  # BatchNorm: running statistics, no more updates (net_g.train() resets it)

    def _keep_frozen_prompter(self, optimizer, args, kwargs):
        if self.prompter_frozen:
            for p in self.prompter.parameters():
                p.grad = None

    def step_diagnostics(self):
        return {'style_distance': self.style_distance} if self.style_distance is not None else {}


@MODEL_REGISTRY.register()
class ConStyleModel(PromptedSteps, TrainingStep, SRModel):
    """SRModel jointly training a ConStyle-prompted restorer and its prompter (see the module doc)."""

    plugin_option_keys = {'train': CONSTYLE_TRAIN_KEYS + STEP_KEYS, 'top': ()}
    state_key = 'constyle'

    @classmethod
    def check_options(cls, opt, path=''):
        check_constyle_options(opt, cls.__name__, frozen=cls.frozen_from_start)


@MODEL_REGISTRY.register()
class IRConStyleModel(ConStyleModel):
    """A restorer trained with a frozen, pre-trained ConStyle prompter (``path.pretrain_constyle``): L1 only."""

    plugin_option_keys = {'train': IR_TRAIN_KEYS + STEP_KEYS, 'top': (), 'path': PATH_KEYS}
    frozen_from_start = True


# SPN on ConStyle: the same composition as every base class (MCLIRModel with base_model_type: ConStyleModel)
MCLIRConStyleModel = mclir_model_class(ConStyleModel)
MCLIRIRConStyleModel = mclir_model_class(IRConStyleModel)
