"""DCPTTransferModel: adapt a restorer to a degradation with a frozen DCPT classifier (the authors' ``DCDistModel``).

One forward pass per iteration: ``output = net_g(lq)``; the frozen ``net_dc`` classifies the hooked features of that
same pass; ``train.pixel_opt`` (output vs GT) plus ``train.classify_opt`` (logits vs the label) is backpropagated
into ``net_g`` through the frozen classifier, so the restorer's features keep telling the degradation apart. Only
``optim_g`` steps. The label is the batch's (``AllInOneDataset``) or, with top-level ``transfer_label: k`` (alias
``dataset_idx``, the authors' key), the class ``k`` for every sample. Validation and test are SRModel's (PSNR/SSIM
from ``val.metrics``; their metrics get the float images: :mod:`.dcpt_metrics`). ``path.pretrain_network_dc`` (the
DCPT classifier) is required.
"""
import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY

from ...checks.options import OptionError, check_int
from ...training.step import STEP_KEYS
from .dcpt_metrics import validate
from .dcpt_model import DCPTModel
from .options import DCPT_TOP_KEYS, check_dcpt_options

LABEL_KEYS = ('transfer_label', 'dataset_idx')


def fixed_label(opt):
    """The ``transfer_label`` (or ``dataset_idx``) class index, or None."""
    given = [k for k in LABEL_KEYS if opt.get(k) is not None]
    if len(given) > 1:
        raise OptionError('transfer_label and dataset_idx name the same thing; keep transfer_label.')
    if not given:
        return None
    num_classes = opt['network_dc'].get('num_classes', 3)
    label = check_int(opt[given[0]], given[0], low=0)
    if label >= num_classes:
        raise OptionError(f'{given[0]} is {label} but network_dc has {num_classes} classes (0 to {num_classes - 1}).')
    return label


@MODEL_REGISTRY.register()
class DCPTTransferModel(DCPTModel):
    """SRModel trained with an extra classification loss through a frozen degradation classifier (module doc)."""

    plugin_option_keys = {'train': ('classify_opt', 'progressive') + STEP_KEYS, 'top': DCPT_TOP_KEYS + LABEL_KEYS}
    state_key = 'dcpt_transfer'
    trains_classifier = False

    @classmethod
    def check_options(cls, opt, path=''):
        check_dcpt_options(opt, transfer=True)
        if (opt.get('path') or {}).get('pretrain_network_dc') is None:
            raise OptionError('path.pretrain_network_dc is required: the classifier trained by DCPTModel '
                              '(experiments/<name>/models/net_dc_<iter>.pth), frozen during transfer.')
        fixed_label(opt)

    def init_training_settings(self):
        self._build_classifier()
        for p in self.net_dc.parameters():
            p.requires_grad_(False)
        self.fixed_label = fixed_label(self.opt)
        super().init_training_settings()

    def setup_optimizers(self):
        SRModel.setup_optimizers(self)  # optim_g only: the classifier stays frozen

    def training_losses(self, current_iter):
        """The restoration of ``lq`` against GT, and the frozen classifier's verdict on its features."""
        label = self.label if self.fixed_label is None else torch.full((self.lq.shape[0], ), self.fixed_label,
                                                                       dtype=torch.long, device=self.device)
        if label is None:
            raise OptionError('DCPTTransferModel needs a degradation label: set transfer_label: <class index>, or '
                              'train on AllInOneDataset (its task labels).')
        logits = self.classify(self.train_net_g, self.hooks, self.lq)  # sets self.output
        losses = self.reconstruction_losses(self.output)
        losses['l_cls'] = self.cri_classify(logits, label)
        return losses

    def step_diagnostics(self):
        return {}

    test = SRModel.test

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        validate(self, dataloader, current_iter, tb_logger, save_img)
