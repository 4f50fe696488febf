"""MCLIRModel: BasicSR's SRModel plus history-copy negatives and the SPN loss.

Any BasicSR model class whose training step is SRModel's (SwinIRModel, HAT-style models that only change
``test``, a class of your own) gains the same behaviour through :func:`mclir_model_class`, either by name
(``model_type: MCLIRSwinIRModel``) or with ``model_type: MCLIRModel`` and ``base_model_type: <YourModel>``.
"""
import os
from collections import OrderedDict

import torch

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.models.swinir_model import SwinIRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

from ..history import HistoryBank, bare_module
from ..options import OptionError, nearest, parse_history
from ..utils import atomic_torch_save

FRESH_SEED_OFFSET = 7919  # copies' fresh initialisations use manual_seed + offset + index, on a forked RNG


@MODEL_REGISTRY.register()
class MCLIRModel(SRModel):
    """SRModel trained with the Self-Prior guided Negative loss against frozen history copies of ``net_g``.

    Adds to SRModel (whose behaviour is otherwise unchanged: pixel_opt, perceptual_opt, ema_decay, validation,
    metrics, saving):

    * ``self.history`` (:class:`~mclir_basicsr.history.HistoryBank`): copies configured by ``train.history``
      (or the authors' ``neg_iter``/``neg_decay``/``neg_start``), refreshed after the optimiser step;
    * ``self.cri_spn``: the loss built from ``train.spn_opt`` (``SPNLoss``), called as
      ``cri_spn(output, negatives, gt=gt, lq=lq)`` and logged as ``l_spn``;
    * the copies in every training state, restored on resume.

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
        self.history = HistoryBank(self.net_g, cfg.copies, cfg.init_decay, self._fresh_network)
        self.cri_spn = build_loss(train_opt['spn_opt']).to(self.device)
        logger = get_root_logger()
        schedule = ', '.join(f'(period {c.period}, decay {c.decay:g})' for c in cfg.copies)
        logger.info(f'History copies from {cfg.source}: {len(cfg.copies)} [{schedule}], init_decay '
                    f'{cfg.init_decay:g}.')

    def _fresh_network(self, index):
        """A freshly initialised network_g for copy ``index``, built on a forked, seeded RNG."""
        seed = int(self.opt.get('manual_seed') or 0) + FRESH_SEED_OFFSET + index
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = build_network(self.opt['network_g'])
        return fresh.to(self.device)

    # ------------------------------------------------------------------ training step
    def spn_loss(self, output):
        """The SPN term for ``output`` = net_g(self.lq): negatives from the copies on the same LQ batch."""
        negatives = self.history.negatives(self.lq)
        return self.cri_spn(output, negatives, gt=getattr(self, 'gt', None), lq=self.lq)

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq)
        loss_dict = OrderedDict()
        if self.cri_pix:
            loss_dict['l_pix'] = self.cri_pix(self.output, self.gt)
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output, self.gt)
            if l_percep is not None:
                loss_dict['l_percep'] = l_percep
            if l_style is not None:
                loss_dict['l_style'] = l_style
        loss_dict['l_spn'] = self.spn_loss(self.output)
        l_total = sum(loss_dict.values())
        l_total.backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        self.history.step(current_iter)

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
            'mclir': self.history.state_dict(),
        }
        atomic_torch_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        source = self.opt['path'].get('resume_state') or 'resume state'
        if 'mclir' not in resume_state:
            get_root_logger().warning(f'{source} holds no history copies (a plain BasicSR state?): the copies start '
                                      f'from the resumed network_g instead.')
            return
        self.history.load_state_dict(resume_state['mclir'], source=source)
        get_root_logger().info(f'Restored {len(self.history)} history copies from {source}.')


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
