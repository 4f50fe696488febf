"""``ConStyle`` and ``Origin``: the two model types of Dongqi-Fan/IRConStyle's option files, with what their
``train.py`` does around them (docs/repo_irconstyle.md).

* ``ConStyle``: :class:`~.constyle_model.ConStyleModel` (the prompter trains with the restorer up to
  ``train.ConStyle_iter`` with InfoNCE, content and style losses, then is frozen).
* ``Origin``: the network alone on ``net_g(lq)`` with ``pixel_opt`` (and BasicSR's ``perceptual_opt``). Their
  ``Origin`` ignores the ConStyle keys some of their files carry (``ConStyle_iter``, ``CrossEntropy_opt``,
  ``content_opt``, ``style_opt``, ``mixing_augs``); here each is named in one warning. A ConStyle network under
  ``Origin`` (three of their Maxim files, which crash in their code) restores with its prompter's query encoder,
  trained with the rest by ``pixel_opt``.

Both, as their ``train.py``: a network and training state are saved at a validation where any metric of any
validation set reaches or beats its best (``net_g_<iter>.pth`` with ``params`` and ``params_ema``, ``<iter>.state``),
not every ``logger.save_checkpoint_freq`` iterations (which they do not read); so validation is required and
``save_checkpoint_freq`` must divide ``val_freq``. ``path.param_key_g`` defaults to ``params_ema`` (their loader always
reads the EMA weights). Resume (``--auto_resume``) continues exactly from the newest saved state.
"""
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ...checks.options import OptionError, check_bool, check_int
from ...training.ranks import from_rank_zero
from ...training.step import STEP_KEYS, TrainingStep
from .constyle_model import CONSTYLE_TRAIN_KEYS, ConStyleModel
from .mixing import parse_mixing
from .options import AUX_LOSSES

IGNORED_BY_ORIGIN = ('ConStyle_iter', 'mixing_augs') + tuple(AUX_LOSSES)
TOP_KEYS = ('gpu_id', 'test')  # their scripts' top-level keys (suffix, crop_border: BasicSR's older ones)


def check_their_file(opt):
    """What their ``train.py`` needs: validation, and checkpoints at validations; their top-level keys."""
    if opt.get('gpu_id') is not None:
        check_int(opt['gpu_id'], 'gpu_id', low=0)
    if opt.get('test') is not None:  # their test files' switch; the entry point already says which it runs
        check_bool(opt['test'], 'test')
    for key in ('suffix', 'crop_border'):
        if opt.get(key) is not None:
            raise OptionError(f'{key}: IRConStyle\'s scripts do not read the top-level {key}; remove it (image names: '
                              f'val.suffix; metrics: val.metrics.<name>.crop_border).')
    if not opt.get('is_train', True):
        return
    val_freq = (opt.get('val') or {}).get('val_freq')
    vals = [k for k in (opt.get('datasets') or {}) if str(k).startswith('val')]
    if val_freq is None or not vals:
        raise OptionError(f'val.val_freq and datasets.val: model_type {opt.get("model_type")} saves its network at '
                          f'validations that set a new best (as IRConStyle\'s train.py), so it needs validation.')
    every = (opt.get('logger') or {}).get('save_checkpoint_freq')
    if every is not None and int(val_freq) % int(every):
        raise OptionError(f'logger.save_checkpoint_freq ({every}) must divide val.val_freq ({val_freq}): model_type '
                          f'{opt.get("model_type")} saves at validations that set a new best (as IRConStyle\'s '
                          f'train.py; their files set both to 5000).')


class SavedAtNewBest:
    """Mixin: checkpoints at validations that set a new best (module doc)."""

    def save(self, epoch, current_iter):
        if current_iter == -1:  # BasicSR's final net_g_latest.pth: kept
            return super().save(epoch, current_iter)
        self.save_point = (epoch, current_iter)  # written by this iteration's validation if it sets a new best

    def _update_best_metric_result(self, dataset_name, metric, val, current_iter):
        super()._update_best_metric_result(dataset_name, metric, val, current_iter)
        if self.best_metric_results[dataset_name][metric]['iter'] == current_iter:  # a tie counts, as theirs
            self.new_best = True

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        self.new_best = False
        super().validation(dataloader, current_iter, tb_logger, save_img)
        self.new_best = from_rank_zero(self.new_best)  # under DDP rank 0 validates; every rank saves (a collective)
        point = getattr(self, 'save_point', None)
        if self.opt['is_train'] and self.new_best and point is not None and point[1] == current_iter:
            get_root_logger().info('This is a new best record. Saving model and training state.')
            super().save(*point)
            self.save_point = None

    def warn_unused_gpu_id(self):
        if self.opt.get('gpu_id') is not None and self.opt.get('num_gpu', 0) != 0:
            get_root_logger().warning(f'gpu_id: {self.opt["gpu_id"]} (IRConStyle sets CUDA_VISIBLE_DEVICES from it) is '
                                      f'not applied: choose the GPU with CUDA_VISIBLE_DEVICES=<id> mclir-train ...')


@MODEL_REGISTRY.register()
class ConStyle(SavedAtNewBest, ConStyleModel):  # noqa: N801  (their model_type)
    """IRConStyle's ``model_type: ConStyle`` (module doc)."""

    plugin_option_keys = {'train': CONSTYLE_TRAIN_KEYS + STEP_KEYS, 'top': TOP_KEYS}

    @classmethod
    def check_eval_options(cls, opt):
        check_their_file(opt)

    def init_training_settings(self):
        self.warn_unused_gpu_id()
        super().init_training_settings()


@MODEL_REGISTRY.register()
class Origin(SavedAtNewBest, TrainingStep, SRModel):  # noqa: N801  (their model_type)
    """IRConStyle's ``model_type: Origin`` (module doc)."""

    plugin_option_keys = {'train': IGNORED_BY_ORIGIN + ('progressive', ) + STEP_KEYS, 'top': TOP_KEYS}
    state_key = 'origin'

    @classmethod
    def check_eval_options(cls, opt):
        check_their_file(opt)

    @classmethod
    def check_options(cls, opt, path=''):
        train_opt = opt.get('train') or {}
        if not train_opt.get('pixel_opt') and not train_opt.get('perceptual_opt'):
            raise OptionError('train.pixel_opt is required: the restoration loss, e.g. {type: L1Loss, loss_weight: 1}.')
        parse_mixing(train_opt.get('mixing_augs'))

    def init_training_settings(self):
        self.warn_unused_gpu_id()
        ignored = [f'train.{k}' for k in IGNORED_BY_ORIGIN if self.opt['train'].get(k) is not None]
        if ignored:
            get_root_logger().warning(f'{", ".join(ignored)}: not read by model_type Origin (as in IRConStyle): '
                                      f'the network trains with pixel_opt alone. Use model_type: ConStyle for them.')
        super().init_training_settings()
