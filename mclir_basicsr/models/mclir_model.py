"""MCLIRModel: BasicSR's SRModel plus history-copy negatives and the SPN loss.

Any BasicSR model class whose training step is SRModel's (SwinIRModel, HAT-style models that only change
``test``, a class of your own) gains the same behaviour through :func:`mclir_model_class`, either by name
(``model_type: MCLIRSwinIRModel``) or with ``model_type: MCLIRModel`` and ``base_model_type: <YourModel>``.
"""
import contextlib
import os
import signal
from collections import OrderedDict

import torch

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.models.swinir_model import SwinIRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

from ..dist import all_ranks_agree, world_size
from ..history import HistoryBank, bare_module
from ..losses.shared_vgg import share_vgg_features
from ..options import OptionError, nearest, parse_amp, parse_compile, parse_guard, parse_history
from ..precision import MIN_HEALTHY_SCALE, StepPrecision
from ..resume import capture_rng_state, restore_rng_state
from ..utils import atomic_torch_save

FRESH_SEED_OFFSET = 7919  # copies' fresh initialisations use manual_seed + offset + index, on a forked RNG
STATE_FORMAT = 2
# Fault injection for the reliability tests (README, "Reliability"): SIGKILL this process when iteration N starts.
_KILL_AT_ITER = int(os.environ.get('MCLIR_DEBUG_SIGKILL_AT_ITER') or 0)


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps with a non-finite loss or gradient (``train.divergence_guard``)."""


@MODEL_REGISTRY.register()
class MCLIRModel(SRModel):
    """SRModel trained with the Self-Prior guided Negative loss against frozen history copies of ``net_g``.

    Adds to SRModel (whose behaviour is otherwise unchanged: pixel_opt, perceptual_opt, ema_decay, validation,
    metrics, saving):

    * ``self.history`` (:class:`~mclir_basicsr.history.HistoryBank`): copies configured by ``train.history``
      (or the authors' ``neg_iter``/``neg_decay``/``neg_start``), refreshed after the optimiser step;
    * ``self.cri_spn``: the loss built from ``train.spn_opt`` (``SPNLoss``), called as
      ``cri_spn(output, negatives, gt=gt, lq=lq)`` and logged as ``l_spn``;
    * the copies (and the random-number states) in every training state, restored on resume;
    * a divergence guard (``train.divergence_guard``): a step whose loss or gradient is not finite is skipped
      (no optimiser step, no EMA, no refresh), logged, and too many in a row stop training.

    ``base_model_type: X`` (top-level option) builds ``MCLIR<X>`` instead: the same additions on top of X.
    """

    def __new__(cls, opt=None, *args, **kwargs):
        base = (opt or {}).get('base_model_type') if isinstance(opt, dict) else None
        if cls is MCLIRModel and base not in (None, 'SRModel'):
            cls = mclir_model_class(base)
        return super().__new__(cls)

    # ------------------------------------------------------------------ set-up
    def init_training_settings(self):
        super().init_training_settings()
        train_opt = self.opt['train']
        cfg = parse_history(train_opt)
        if not isinstance(train_opt.get('spn_opt'), dict):
            raise OptionError('train.spn_opt is required by MCLIR models (see README, option reference).')
        self.guard = parse_guard(train_opt)
        self.bad_steps = 0
        self.last_saved = None
        self._sync_logged = False
        self.history = HistoryBank(self.net_g, cfg.copies, cfg.init_decay, self._fresh_network)
        self.negatives_mode = cfg.negatives
        self.cri_spn = build_loss(train_opt['spn_opt']).to(self.device)
        logger = get_root_logger()
        schedule = ', '.join(f'(period {c.period}, decay {c.decay:g})' for c in cfg.copies)
        logger.info(f'History copies from {cfg.source}: {len(cfg.copies)} [{schedule}], init_decay '
                    f'{cfg.init_decay:g}, negatives: {cfg.negatives}.')
        self.shared_vgg = None
        if self.cri_perceptual is not None:
            self.shared_vgg = share_vgg_features(self.cri_perceptual, self.cri_spn)
            logger.info('perceptual_opt and spn_opt share one VGG pass of the output (same feature space).'
                        if self.shared_vgg is not None else
                        'perceptual_opt and spn_opt use different VGG feature spaces: each runs its own VGG pass.')
        self.precision = StepPrecision(parse_amp(train_opt), self.device)
        self.train_net_g = self.net_g  # what the training step calls; net_g (saved, validated) stays as it is
        self._compile(parse_compile(train_opt), logger)
        logger.info(f'MCLIR training step: {self.precision.describe()}.')

    def _compile(self, cfg, logger):
        """``train.compile``: compiled callables for the training step only. ``self.net_g``, the copies' modules and
        the losses keep their plain modules, so checkpoints, averaging and validation never see ``_orig_mod``."""
        self.compile_cfg = cfg
        if not cfg.enabled:
            return

        def compiled(module):
            kwargs = dict(backend=cfg.backend, dynamic=cfg.dynamic, fullgraph=cfg.fullgraph)
            if cfg.mode is not None:
                kwargs['mode'] = cfg.mode
            return torch.compile(module, **kwargs)

        if 'net_g' in cfg.targets:
            self.train_net_g = compiled(self.net_g)
        if 'history' in cfg.targets:
            self.history.compile(compiled)
        if 'vgg' in cfg.targets:
            if self.shared_vgg is not None:
                self.shared_vgg.extractor = compiled(self.shared_vgg.extractor)
            elif hasattr(self.cri_spn, 'vgg'):
                self.cri_spn.vgg = compiled(self.cri_spn.vgg)
        logger.info(f'torch.compile (backend {cfg.backend}, mode {cfg.mode or "default"}) for the training step of: '
                    f'{", ".join(cfg.targets)}. The first steps include compilation time.')

    def _fresh_network(self, index):
        """A freshly initialised network_g for copy ``index``, built on a forked, seeded RNG."""
        seed = int(self.opt.get('manual_seed') or 0) + FRESH_SEED_OFFSET + index
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = build_network(self.opt['network_g'])
        return fresh.to(self.device)

    # ------------------------------------------------------------------ training step
    def spn_loss(self, output, negatives=None):
        """The SPN term for ``output`` = net_g(self.lq): negatives from the copies on the same LQ batch."""
        if negatives is None:
            negatives = self.history.negatives(self.lq)
        return self.cri_spn(output, negatives, gt=getattr(self, 'gt', None), lq=self.lq)

    def optimize_parameters(self, current_iter):
        if current_iter == _KILL_AT_ITER:
            os.kill(os.getpid(), signal.SIGKILL)
        self.optimizer_g.zero_grad()
        with self.precision.autocast(), self._sharing():
            # the copies run first, so their activations never sit on top of the training graph's
            negatives = self.history.negatives(self.lq, current_iter, self.negatives_mode)
            self.output = self.train_net_g(self.lq)
            loss_dict = OrderedDict()
            if self.cri_pix:
                loss_dict['l_pix'] = self.cri_pix(self.output, self.gt)
            if self.cri_perceptual:
                l_percep, l_style = self.cri_perceptual(self.output, self.gt)
                if l_percep is not None:
                    loss_dict['l_percep'] = l_percep
                if l_style is not None:
                    loss_dict['l_style'] = l_style
            loss_dict['l_spn'] = self.spn_loss(self.output, negatives)
            l_total = sum(loss_dict.values())
        # backward also for a bad loss: under DDP every rank must join the gradient all-reduce
        self.precision.backward(l_total)
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.guard.enabled or self.precision.scaler is not None:
            self.precision.unscale_(self.optimizer_g)  # fp16: check the gradients at their true size
            if not self._step_is_finite(l_total):
                self._bad_step(current_iter, l_total)
                return
        self.bad_steps = 0
        self.precision.step(self.optimizer_g)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        if self.history.step(current_iter) and self.history.ranks_verified > 1 and not self._sync_logged:
            self._sync_logged = True
            get_root_logger().info(f'History copies refreshed at iter {current_iter} are identical on '
                                   f'{self.history.ranks_verified} ranks (checked at every refresh).')

    def _sharing(self):
        return self.shared_vgg.sharing() if self.shared_vgg is not None else contextlib.nullcontext()

    def _step_is_finite(self, l_total):
        """Loss and all gradients finite, on every rank (one device sync; one all-reduce under DDP)."""
        grads = [p.grad for p in self.net_g.parameters() if p.grad is not None]
        values = [l_total.detach().float().reshape(1)]  # float32 also under autocast (fp16 overflows at 65504)
        if grads:
            values.append(torch.stack(torch._foreach_norm(grads)).float())
        finite = bool(torch.isfinite(torch.cat(values)).all().item())
        return all_ranks_agree(finite, self.device)

    def _bad_step(self, current_iter, l_total):
        """A step with a non-finite gradient or loss: the weights, EMA and copies stay as they are.

        With fp16 and a finite loss it is a gradient overflow, which the scaler handles by halving its scale; the
        guard counts it only once the scale is below MIN_HEALTHY_SCALE (the gradients overflow even unscaled).
        """
        overflow = self.precision.scaler is not None and all_ranks_agree(
            self.precision.is_overflow_only(l_total), self.device)
        self.precision.skip(self.optimizer_g)
        if overflow and self.precision.scale >= MIN_HEALTHY_SCALE or not self.guard.enabled:
            self.optimizer_g.zero_grad(set_to_none=True)
            if overflow:
                get_root_logger().info(f'iter {current_iter}: fp16 gradient overflow, step skipped; loss scale now '
                                       f'{self.precision.scale:g}.')
            return
        self._skip_step(current_iter)

    def _skip_step(self, current_iter):
        self.optimizer_g.zero_grad(set_to_none=True)
        self.bad_steps += 1
        terms = ', '.join(f'{k}={v:.4g}' for k, v in self.log_dict.items())
        limit = self.guard.max_consecutive_bad_steps
        get_root_logger().warning(f'iter {current_iter}: non-finite loss or gradient ({terms}); step skipped, weights '
                                  f'and history copies unchanged ({self.bad_steps}/{limit} in a row).')
        if self.bad_steps >= limit:
            last = self.last_saved or 'none saved yet in this run'
            raise TrainingDiverged(
                f'training stopped at iter {current_iter}: {self.bad_steps} consecutive steps with a non-finite loss '
                f'or gradient (train.divergence_guard.max_consecutive_bad_steps = {limit}). Last checkpoint: {last}. '
                f'Lower train.spn_opt.loss_weight (the subtract form is unbounded) or the learning rate, or use '
                f'form: ratio; then resume with --auto_resume.')

    # ------------------------------------------------------------------ checkpoints
    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's save_network, written atomically (a crash never leaves a half-written file)."""
        label = 'latest' if current_iter == -1 else current_iter
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        assert len(nets) == len(keys), 'The lengths of net and param_key should be the same.'
        save_dict = {}
        for net_, key in zip(nets, keys):
            state = bare_module(net_).state_dict()
            save_dict[key] = OrderedDict((k[7:] if k.startswith('module.') else k, v.cpu()) for k, v in state.items())
        atomic_torch_save(save_dict, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        """BasicSR's training state plus ``mclir``: the history copies. Written atomically."""
        if current_iter == -1:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'mclir': {
                'format': STATE_FORMAT,
                'history': self.history.state_dict(),
                'rng': capture_rng_state(),
                'bad_steps': self.bad_steps,
                'amp': self.precision.state_dict(),
            },
        }
        path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        atomic_torch_save(state, path)
        self.last_saved = path

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        source = self.opt['path'].get('resume_state') or 'resume state'
        logger = get_root_logger()
        mclir = resume_state.get('mclir')
        if mclir is None:
            logger.warning(f'{source} holds no history copies (a plain BasicSR state?): the copies start from the '
                           f'resumed network_g instead.')
            return
        if not isinstance(mclir, dict) or mclir.get('format') != STATE_FORMAT:
            raise ValueError(f'{source} was written by another version of mclir-basicsr (state format '
                             f'{mclir.get("format") if isinstance(mclir, dict) else "?"}, expected {STATE_FORMAT}).')
        self.history.load_state_dict(mclir['history'], source=source)
        self.bad_steps = int(mclir.get('bad_steps', 0))
        self.precision.load_state_dict(mclir.get('amp'), source=source)
        self.last_saved = source
        ranks = self.history.verify_across_ranks(f'history copies restored from {source}')
        if world_size() == 1:
            restore_rng_state(mclir['rng'])  # the uninterrupted run's random stream continues exactly
        checksum = self.history.checksums().sum().item()
        logger.info(f'Restored {len(self.history)} history copies from {source} (checksum {checksum!r}'
                    + (f', identical on {ranks} ranks).' if ranks > 1 else ').'))


_FACTORY_CACHE = {}


def mclir_model_class(base):
    """Return the class ``MCLIR<Base>``: ``base`` (a BasicSR model class or its registered name) with
    history copies and SPN, registered in MODEL_REGISTRY under that name. Cached.

    ``base`` must be SRModel or a subclass that keeps SRModel's training step (it may change ``test``,
    ``feed_data``, validation, ...). A class with its own ``optimize_parameters`` (GAN models) is refused,
    since MCLIR's step would replace it.
    """
    if isinstance(base, str):
        if base not in MODEL_REGISTRY:
            hint = nearest(base, list(MODEL_REGISTRY._obj_map))
            raise OptionError(f'base_model_type {base!r} is not registered in BasicSR\'s MODEL_REGISTRY.' +
                              (f' Did you mean {hint}?' if hint else '') +
                              ' Import the module that registers it before building the model.')
        base = MODEL_REGISTRY.get(base)
    if base is SRModel or base is MCLIRModel:
        return MCLIRModel
    if not (isinstance(base, type) and issubclass(base, SRModel)):
        raise OptionError(f'base_model_type {getattr(base, "__name__", base)} is not a subclass of SRModel; MCLIR '
                          f'extends SRModel-style models (net_g, lq, gt).')
    if issubclass(base, MCLIRModel):
        return base
    if base.optimize_parameters is not SRModel.optimize_parameters:
        raise OptionError(f'base_model_type {base.__name__} has its own optimize_parameters; MCLIR\'s training step '
                          f'would replace it. Subclass MCLIRModel instead and add self.spn_loss(output) to your '
                          f'loss and self.history.step(current_iter) after the optimiser step.')
    if base in _FACTORY_CACHE:
        return _FACTORY_CACHE[base]
    name = f'MCLIR{base.__name__}'
    if name in MODEL_REGISTRY:
        existing = MODEL_REGISTRY.get(name)
        if isinstance(existing, type) and issubclass(existing, MCLIRModel) and issubclass(existing, base):
            _FACTORY_CACHE[base] = existing
            return existing
        raise OptionError(f'cannot register {name}: the name is already taken in MODEL_REGISTRY by {existing}.')
    cls = type(name, (MCLIRModel, base), {
        '__doc__': f'{base.__name__} with history-copy negatives and the SPN loss (see MCLIRModel).',
        '__module__': __name__,
    })
    MODEL_REGISTRY.register(cls)
    _FACTORY_CACHE[base] = cls
    return cls


def resolve_model_class(opt):
    """The class BasicSR's ``build_model(opt)`` will instantiate (honours ``base_model_type``)."""
    cls = MODEL_REGISTRY.get(opt['model_type'])
    if cls is MCLIRModel and opt.get('base_model_type') not in (None, 'SRModel'):
        return mclir_model_class(opt['base_model_type'])
    return cls


MCLIRSwinIRModel = mclir_model_class(SwinIRModel)
