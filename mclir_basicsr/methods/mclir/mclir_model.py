"""MCLIRModel: BasicSR's SRModel plus history-copy negatives and the SPN loss.

Any BasicSR model class whose training step is SRModel's (SwinIRModel, HAT-style models that only change
``test``, a class of your own) gains the same behaviour through :func:`mclir_model_class`, either by name
(``model_type: MCLIRSwinIRModel``) or with ``model_type: MCLIRModel`` and ``base_model_type: <YourModel>``.
"""
import contextlib
import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.models.swinir_model import SwinIRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ...checks.options import OptionError, check_no_hard_coded_cuda, registered_name
from ...losses.shared_vgg import share_vgg_features
from ...training.compile_step import compile_training_step
from ...training.options import parse_compile
from ...training.step import TrainingStep
from .history import AdaptiveRefresh, HistoryBank
from .options import MCLIR_TOP_KEYS, MCLIR_TRAIN_KEYS, check_mclir_train_options, parse_history
from .spn_diagnostics import SPNDiagnostics
from .spn_weight import AutoSPNWeight

_PACKAGE = __name__.split('.')[0] + '.'
FRESH_SEED_OFFSET = 7919  # copies' fresh initialisations use manual_seed + offset + index, on a forked RNG
STATE_FORMAT = 3  # 3: history copies as torch's state dict of the HistoryBank; 2: a list of per-copy dicts


@MODEL_REGISTRY.register()
class MCLIRModel(TrainingStep, SRModel):
    """SRModel trained with the Self-Prior guided Negative loss against frozen history copies of ``net_g``.

    Adds to SRModel (whose behaviour is otherwise unchanged: pixel_opt, perceptual_opt, ema_decay, validation,
    metrics, saving):

    * ``self.history`` (:class:`~mclir_basicsr.history.HistoryBank`): copies configured by ``train.history``
      (or the authors' ``neg_iter``/``neg_decay``/``neg_start``), refreshed after the optimiser step;
    * ``self.cri_spn``: the loss built from ``train.spn_opt`` (``SPNLoss``), logged as ``l_spn``;
    * the copies, the random-number states, the guard and the gradient scaler in every training state;
    * ``self.guard`` (``train.divergence_guard``): a step whose loss or gradient is not finite is skipped.

    ``base_model_type: X`` (top-level option) builds ``MCLIR<X>`` instead: the same additions on top of X.
    """

    plugin_option_keys = {'train': MCLIR_TRAIN_KEYS, 'top': MCLIR_TOP_KEYS}  # read by options.check_options
    state_key = 'mclir'  # the training state's entry (AtomicCheckpoints)
    step_reads_output = True  # SPN compares net_g(lq) with the copies' outputs

    @classmethod
    def resolve_model_class(cls, opt):
        """The class ``build_model(opt)`` instantiates: ``MCLIR<base_model_type>`` for ``MCLIRModel``."""
        base = opt.get('base_model_type')
        if base in (None, 'SRModel'):
            return cls
        if cls is not MCLIRModel:
            raise OptionError(f'base_model_type applies to model_type: MCLIRModel only; model_type {cls.__name__} '
                              f'already names its base. Remove base_model_type.')
        return mclir_model_class(base)

    @staticmethod
    def check_options(opt, path=''):
        check_mclir_train_options(opt)

    @staticmethod
    def refuses_base(base):
        """Why ``base`` cannot get history copies and SPN (a message), or None if :func:`mclir_model_class` can
        extend it."""
        if _composed_class(base) is not None:
            return None
        if not (isinstance(base, type) and issubclass(base, SRModel)):
            return (f'base_model_type {getattr(base, "__name__", base)} is not a subclass of SRModel; MCLIR extends '
                    f'SRModel-style models (net_g, lq, gt).')
        if base.optimize_parameters not in (SRModel.optimize_parameters, TrainingStep.optimize_parameters):
            return (f'base_model_type {base.__name__} has its own optimize_parameters; MCLIR\'s training step would '
                    f'replace it. Write its losses as the training_losses hook of TrainingStep '
                    f'(mclir_basicsr.training.step) instead, and MCLIR composes with it.')
        return None

    def __new__(cls, opt=None, *args, **kwargs):
        if isinstance(opt, dict):
            cls = cls.resolve_model_class(opt)
        return super().__new__(cls)

    # ------------------------------------------------------------------ the method (hooks of the one training step)
    def step_losses(self, current_iter):
        # the copies run first, so their activations never sit on top of the training graph's
        negatives = self.history.negatives(self.lq, current_iter)
        losses = self.training_losses(current_iter)  # sets self.output
        if self.cri_unc is not None:
            losses['l_unc'] = self.cri_unc(self.output, self.gt, negatives)
        losses['l_spn'] = self.spn_loss(self.output, negatives)
        return losses

    def loss_context(self):
        return self.shared_vgg.sharing() if self.shared_vgg is not None else contextlib.nullcontext()

    def step_log(self, losses, current_iter):
        log = self.diagnostics.step(self.log_dict, self.cri_spn, current_iter)
        log.update(super().step_log(losses, current_iter))
        if self.auto_weight is not None:  # the next step's lambda, from this step's rank-averaged losses
            log['spn_weight'] = self.cri_spn.loss_weight
            self.cri_spn.loss_weight = self.auto_weight.update(losses, current_iter)
        return log

    def after_step(self, current_iter):
        super().after_step(current_iter)
        self.refresh_history(current_iter)

    def refresh_history(self, current_iter):
        """After a good optimiser step: refresh the copies due at ``current_iter`` (their periods), then, with
        ``train.history.adaptive``, the next copy if the residual spread is large."""
        self.diagnostics.record_refreshes(self.history.step(current_iter))
        self.refresh_adaptively(current_iter)

    def refresh_adaptively(self, current_iter):
        if self.adaptive is not None:
            spread, refreshed = self.adaptive.step(self.history, self.output, self.gt, current_iter)
            self.log_dict['adaptive_spread'] = spread
            if refreshed is not None:
                self.log_dict['adaptive_refresh'] = float(refreshed)
                self.diagnostics.record_refreshes([refreshed])

    def spn_loss(self, output, negatives=None):
        """The SPN term for ``output`` = net_g(self.lq), for subclasses with their own step."""
        if negatives is None:
            negatives = self.history.negatives(self.lq)
        return self.cri_spn(output, negatives, gt=getattr(self, 'gt', None), lq=self.lq)

    # ------------------------------------------------------------------ set-up
    def init_training_settings(self):
        super().init_training_settings()
        train_opt = self.opt['train']
        if not isinstance(train_opt.get('spn_opt'), dict):
            raise OptionError('train.spn_opt is required by MCLIR models (see docs/mclir.md).')
        cfg = parse_history(train_opt)
        self.history = HistoryBank(self.net_g, cfg.copies, cfg.init_decay, self._fresh_network, cfg.negatives)
        self.adaptive = None if cfg.adaptive is None else AdaptiveRefresh(cfg.adaptive.threshold, cfg.adaptive.decay)
        self.cri_spn = build_loss(train_opt['spn_opt']).to(self.device)
        auto = getattr(self.cri_spn, 'auto_weight', None)
        self.auto_weight = None if auto is None else AutoSPNWeight(
            auto['target_ratio'], auto['auto_init_weight'], auto['auto_momentum'], auto['auto_max_change'])
        unc = train_opt.get('uncertainty_opt')
        self.cri_unc = None if unc is None else build_loss(unc).to(self.device)
        self.diagnostics = SPNDiagnostics(len(cfg.copies), cfg.negatives == 'round_robin',
                                          bool(getattr(self.cri_spn, 'lq_negative', False)))
        logger = get_root_logger()
        schedule = ', '.join(f'(period {c.period}, decay {c.decay:g})' for c in cfg.copies)
        adaptive = '' if cfg.adaptive is None else (f', adaptive refresh above a residual spread of '
                                                    f'{cfg.adaptive.threshold:g} (decay {cfg.adaptive.decay:g})')
        logger.info(f'History copies from {cfg.source}: {len(cfg.copies)} [{schedule}], init_decay '
                    f'{cfg.init_decay:g}, negatives: {cfg.negatives}{adaptive}.')
        self.shared_vgg = None
        if self.cri_perceptual is not None:
            self.shared_vgg = share_vgg_features(self.cri_perceptual, self.cri_spn)
            logger.info('perceptual_opt and spn_opt share one VGG pass of the output (same feature space).'
                        if self.shared_vgg is not None else
                        'perceptual_opt and spn_opt use different VGG feature spaces: each runs its own VGG pass.')
        self.compile_cfg = compile_training_step(self, parse_compile(train_opt), logger)
        logger.info(f'MCLIR training step: {self.precision.describe()}.')

    def _fresh_network(self, index):
        """A freshly initialised network_g for copy ``index``, built on a forked, seeded RNG."""
        seed = int(self.opt.get('manual_seed') or 0) + FRESH_SEED_OFFSET + index
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = build_network(self.opt['network_g'])
        return fresh.to(self.device)

    # ------------------------------------------------------------------ checkpoints
    def plugin_training_state(self):
        """The ``mclir`` entry of a training state: the history copies and the step's own state."""
        return dict(
            super().plugin_training_state(),  # bad_steps, amp
            format=STATE_FORMAT,
            history=self.history.training_state(),
            adaptive_refreshes=None if self.adaptive is None else self.adaptive.count,
            diagnostics=self.diagnostics.state_dict(),
            spn_weight=None if self.auto_weight is None else self.auto_weight.state_dict(),
        )

    def load_plugin_training_state(self, mclir, source):
        if mclir is None:
            get_root_logger().warning(f'{source} holds no history copies (a plain BasicSR state?): the copies start '
                                      f'from the resumed network_g instead.')
            return
        super().load_plugin_training_state(mclir, source)  # bad_steps, amp
        self.history.load_training_state(_history_tensors(mclir, source), source=source)
        if self.adaptive is not None:
            self.adaptive.count = int(mclir.get('adaptive_refreshes') or 0)
        self.diagnostics.load_state_dict(mclir.get('diagnostics'))
        if self.auto_weight is not None and mclir.get('spn_weight'):
            self.auto_weight.load_state_dict(mclir['spn_weight'])
            self.cri_spn.loss_weight = self.auto_weight.weight
        ranks = self.history.verify_across_ranks(f'history copies restored from {source}')
        digest = ''.join(d.hex()[:8] for d in self.history.digests())
        get_root_logger().info(f'Restored {len(self.history)} history copies from {source} (digest {digest}'
                               + (f', identical on {ranks} ranks).' if ranks > 1 else ').'))


def _history_tensors(mclir, source):
    """The HistoryBank state dict in a training state's ``mclir`` entry (format 3, or format 2 converted)."""
    fmt = mclir.get('format') if isinstance(mclir, dict) else None
    if fmt == STATE_FORMAT:
        return mclir['history']
    if fmt == 2 and isinstance(mclir.get('history'), dict) and 'copies' in mclir['history']:
        return {f'copies.{i}.module.{k}': v for i, sd in enumerate(mclir['history']['copies']) for k, v in sd.items()}
    raise ValueError(f'{source} was written by another version of mclir-basicsr (state format {fmt}, expected '
                     f'{STATE_FORMAT} or 2). Resume with the version that wrote it, or start a new experiment from '
                     f'its network (path.pretrain_network_g).')


def mclir_model_class(base):
    """Return the class ``MCLIR<Base>``: ``base`` (a BasicSR model class or its registered name) with
    history copies and SPN, registered in MODEL_REGISTRY (under ``MCLIR<Base>``, or ``MCLIR<Base>_<module>`` when
    another class already took that name). Built once per base class.

    ``base`` must be SRModel or a subclass that keeps SRModel's training step (it may change ``test``,
    ``feed_data``, validation, ...). A class with its own ``optimize_parameters`` (GAN models) is refused,
    since MCLIR's step would replace it.
    """
    if isinstance(base, str):
        extendable = [n for n, c in MODEL_REGISTRY if isinstance(c, type) and MCLIRModel.refuses_base(c) is None]
        base = registered_name(MODEL_REGISTRY, base, 'model in BasicSR\'s MODEL_REGISTRY', 'base_model_type',
                               candidates=extendable, otherwise=' It must be SRModel or a subclass keeping its step.')
    if base is SRModel or base is MCLIRModel:
        return MCLIRModel
    composed = _composed_class(base)
    if composed is not None:
        return composed
    refusal = MCLIRModel.refuses_base(base)
    if refusal is not None:
        raise OptionError(refusal)
    if issubclass(base, MCLIRModel):
        return base
    check_no_hard_coded_cuda(base, 'base_model_type')
    cls = type(f'MCLIR{base.__name__}', (MCLIRModel, base), {
        '__doc__': f'{base.__name__} with history-copy negatives and the SPN loss (see MCLIRModel).',
        '__module__': base.__module__ if base.__module__.startswith(_PACKAGE) else __name__,
        'mclir_base': base,
        'plugin_option_keys': _merged_keys(MCLIRModel, base),
        'check_options': classmethod(_checks_of_both(base)),
    })
    taken = cls.__name__ in MODEL_REGISTRY
    MODEL_REGISTRY.register(cls, suffix=base.__module__.replace('.', '_') if taken else None)
    return cls


def _merged_keys(*classes):
    """The union of the ``plugin_option_keys`` of ``classes``, per section."""
    merged = {}
    for c in classes:
        for section, keys in (getattr(c, 'plugin_option_keys', None) or {}).items():
            merged[section] = tuple(dict.fromkeys(merged.get(section, ()) + tuple(keys)))
    return merged


def _checks_of_both(base):
    """``check_options`` of ``MCLIR<base>``: MCLIR's keys, then the base class's own check."""

    def check_options(cls, opt, path=''):
        MCLIRModel.check_options(opt, path)
        base_check = getattr(base, 'check_options', None)
        if base_check is not None:
            base_check(opt, path)

    return check_options


def _composed_class(base):
    """The registered MCLIR class built on ``base`` (its ``mclir_base``), or None."""
    return next((cls for _, cls in MODEL_REGISTRY if getattr(cls, 'mclir_base', None) is base), None)


MCLIRSwinIRModel = mclir_model_class(SwinIRModel)
