"""DSRIRModel: training a network that returns its stage outputs (``DSRIR``) with DSRIR's losses; MCLIRDSRIRModel adds
history copies and SPN.

One iteration (the paper's ``L = L_ul + L_psnr + 0.2 L_pocl``): ``images, log_vars = net_g(lq, with_stages=True)``
(final stage first); ``train.pixel_opt`` (``DSRIRPSNRLoss``: every stage; any other pixel loss: the final image),
``train.stage_uncertainty_opt`` (``DSRIRUncertaintyLoss``, logged ``l_ul``) and ``train.pocl_opt``
(``PositiveContrastLoss``, ``l_pocl``); ``perceptual_opt`` applies to the final image. Validation, test, EMA and
checkpoints are SRModel's: ``net_g(lq)`` is the final image (the network pads to its size multiple itself). A step
with a non-finite loss or gradient is skipped (``train.divergence_guard``); ``train.grad_clip`` applies.

SPN composes through the network's plain forward: history copies are snapshots of the whole network and their
negatives are their final images, against the final output (``model_type: MCLIRDSRIRModel``, or ``MCLIRModel`` with
``base_model_type: DSRIRModel``).
"""
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY

from ...checks.options import OptionError, check_loss_blocks, check_network_trait
from ...training.progressive import check_progressive
from ...training.reconstruction import reconstruction_losses
from ...training.step import STEP_KEYS, TrainingStep
from ..mclir.mclir_model import mclir_model_class

STAGE_LOSSES = {'stage_uncertainty_opt': 'l_ul', 'pocl_opt': 'l_pocl'}  # option key -> logged name
DSRIR_TRAIN_KEYS = tuple(STAGE_LOSSES) + ('progressive', )


def check_dsrir_options(opt, model_type):
    """The keys DSRIR's model classes read: a stage network, the loss blocks, ``train.progressive``."""
    check_network_trait(opt, 'returns_stages', model_type, 'a network that returns its stage outputs (DSRIR)')
    train_opt = opt.get('train') or {}
    if not train_opt.get('pixel_opt') and not train_opt.get('perceptual_opt'):
        raise OptionError('train.pixel_opt is required: DSRIR\'s PSNR loss on every stage, {type: DSRIRPSNRLoss} '
                          '(or any pixel loss, on the final image).')
    check_loss_blocks(train_opt, _EXAMPLES)
    _check_stage_weights(opt, train_opt.get('pixel_opt'))
    check_progressive(opt)


def _check_stage_weights(opt, pixel_opt):
    """A stage-weighted pixel loss has one weight per stage of the network."""
    weights = (pixel_opt or {}).get('stage_weights')
    stages = getattr(ARCH_REGISTRY.get(opt['network_g']['type']), 'num_stages', None)
    if weights is not None and stages is not None and len(weights) != stages:
        raise OptionError(f'train.pixel_opt.stage_weights has {len(weights)} entries but {opt["network_g"]["type"]} '
                          f'returns {stages} stages: give one weight per stage, final stage first (DSRIR\'s '
                          f'[1, 0.25, 0.25]).')


_EXAMPLES = {'pixel_opt': 'DSRIRPSNRLoss', 'stage_uncertainty_opt': 'DSRIRUncertaintyLoss',
             'pocl_opt': 'PositiveContrastLoss'}


class StageLosses:
    """Mixin for a model class whose ``net_g`` returns its stages: builds the stage losses after the class's own
    set-up and computes every loss of a step in :meth:`training_losses`."""

    def init_training_settings(self):
        super().init_training_settings()
        train_opt = self.opt['train']
        self.stage_losses = {name: build_loss(dict(train_opt[key])).to(self.device)
                             for key, name in STAGE_LOSSES.items() if train_opt.get(key) is not None}

    def training_losses(self, current_iter):
        images, log_vars = self.train_net_g(self.lq, with_stages=True)
        self.output = images[0]
        losses = reconstruction_losses(self, self.output, stages=images)
        for name, loss in self.stage_losses.items():
            losses[name] = loss(images, log_vars, self.gt) if name == 'l_ul' else loss(images, self.gt, self.lq)
        return losses


@MODEL_REGISTRY.register()
class DSRIRModel(StageLosses, TrainingStep, SRModel):
    """SRModel whose training step uses every stage of a DSRIR-style network (see the module doc)."""

    plugin_option_keys = {'train': DSRIR_TRAIN_KEYS + STEP_KEYS, 'top': ()}
    state_key = 'dsrir'

    @classmethod
    def check_options(cls, opt, path=''):
        check_dsrir_options(opt, cls.__name__)


# SPN on DSRIR: the same composition as every base class (MCLIRModel with base_model_type: DSRIRModel)
MCLIRDSRIRModel = mclir_model_class(DSRIRModel)
