"""``DCPTSRModel``: what ``model_type: SRModel`` means in the DCPT repository's files (their fine-tuning and test
files): BasicSR's SRModel (L1, EMA initialised from the pretrained file's ``params_ema``) with the top-level
``grad_clip`` their SRModel reads (read as ``train.grad_clip``), on this plugin's training step. Their files'
``SRModel`` is read as this class (:mod:`.dcpt_files`); elsewhere ``SRModel`` stays BasicSR's. Validation feeds their
metrics the float images (:mod:`.dcpt_metrics`)."""
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY

from ...training.step import STEP_KEYS, TrainingStep
from .dcpt_metrics import validate


@MODEL_REGISTRY.register()
class DCPTSRModel(TrainingStep, SRModel):
    """BasicSR's SRModel on the one training step (module doc)."""

    plugin_option_keys = {'train': STEP_KEYS + ('progressive', ), 'top': ()}
    state_key = 'dcpt_sr'

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        validate(self, dataloader, current_iter, tb_logger, save_img)
