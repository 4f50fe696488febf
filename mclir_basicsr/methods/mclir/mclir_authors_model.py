"""The MCLIR authors' model class names, with their semantics, so their option files train as they are.

Facts from the authors' code (Aitical/MCLIR, commit e42fb40), and what each alias does with them:

* ``perceptual_opt`` IS the negative term: ``L = L1(out, gt) - mean_k Percep(out, neg_k)``. Here it becomes
  ``spn_opt`` (SPNLoss, form subtract, ``loss_weight = perceptual_weight``, same layers, VGG type, input
  normalisation and criterion; ImageNet VGG weights from the standard places, as BasicSR's PerceptualLoss, or
  from ``perceptual_opt.vgg_weights``: this plugin's key, a path or ``random``, as for SPNLoss).
  ``perceptual_pos_opt`` (FFA-Net classes: ``+ Percep(out, gt)``) becomes BasicSR's positive ``perceptual_opt``.
* ``neg_iter``/``neg_decay``: copy ``i`` is refreshed every ``neg_iter[N-1-i]`` iterations with ``neg_decay[i]``
  (the authors' reversed pairing, reproduced; a warning when the decays differ, i.e. when it matters).
* ``neg_start`` default: 0.01 for the ``_Multi``/FFA-Net classes, 0.999 for ``SRNegModel``/``SwinIRNegModel``.
* Fixed, not reproduced: copies average buffers too (theirs: parameters only), are saved in the training state and
  restored on resume (theirs: lost), and the adaptive decision is all-reduced under DDP (theirs: per rank).
* ``use_grad_clip: v`` clips to max norm ``v``. ``use_grad_norm`` and ``update_scaling`` are read by no code of
  theirs: accepted, with a warning that they do nothing. ``path_neg`` with any value set, ``network_g_net``,
  ``complie`` and their contrastive keys are refused with a message (no silent ignoring).
* FFA-Net classes normalise the input inside the model (``(lq - mean) / std``, mean 0.64/0.6/0.58, std
  0.14/0.15/0.152, in training and validation alike), as their released weights expect.
* ``..._Adaptive_DDP``: no periodic refresh; after a step where the batch mean of ``std(2 (out - gt))`` over
  (C, H, W) exceeds ``neg_t`` (default 0.022), the next copy, round robin, is refreshed with decay 0.001.
"""
import copy
import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ...checks.options import OptionError, check_number
from ...losses.vgg_weights import resolve_vgg_weights
from .history import AdaptiveRefresh
from .mclir_model import MCLIRModel, MCLIRSwinIRModel
from .options import (AUTHORS_ADAPTIVE_DECAY, AUTHORS_ADAPTIVE_THRESHOLD, MCLIR_TOP_KEYS, MCLIR_TRAIN_KEYS,
                      check_mclir_train_options, parse_history)

UNREAD_BY_AUTHORS = ('use_grad_norm', 'update_scaling')  # in their files, read by none of their code
REFUSED = {'perceptual_contrastive_opt': 'no contrastive loss class exists in the authors\' code either',
           'contrastive_opt': 'no contrastive loss class exists in the authors\' code either'}
FFA_MEAN, FFA_STD = (0.64, 0.6, 0.58), (0.14, 0.15, 0.152)


def perceptual_to_spn(perc):
    """SPNLoss options equal to the authors' use of a BasicSR ``PerceptualLoss`` block as the negative term."""
    if not isinstance(perc, dict) or perc.get('type') != 'PerceptualLoss':
        raise OptionError('train.perceptual_opt must be a PerceptualLoss block: in the authors\' classes it is the '
                          'negative term (L = L1 - mean_k Percep(out, neg_k)).')
    spn = {'type': 'SPNLoss', 'form': 'subtract', 'loss_weight': perc.get('perceptual_weight', 1.0),
           'vgg_type': perc.get('vgg_type', 'vgg19'), 'use_input_norm': perc.get('use_input_norm', True),
           'range_norm': perc.get('range_norm', False), 'criterion': perc.get('criterion', 'l1')}
    weights = perc.get('vgg_weights')
    if weights is not None and not isinstance(weights, str):
        raise OptionError(f'train.perceptual_opt.vgg_weights must be a file path or "random", got {weights!r}.')
    for key in ('layer_weights', 'vgg_weights'):  # vgg_weights: this plugin's key, as SPNLoss's
        if key in perc:
            spn[key] = perc[key]
    return spn


class _AuthorsSemantics:
    """What the six alias classes share; mixed in before an MCLIR class."""

    default_neg_start = 0.01
    plugin_option_keys = {'train': MCLIR_TRAIN_KEYS + ('perceptual_pos_opt', ) + UNREAD_BY_AUTHORS,
                          'top': MCLIR_TOP_KEYS + ('path_neg', 'network_g_net', 'complie')}

    @classmethod
    def resolve_model_class(cls, opt):
        if opt.get('base_model_type') not in (None, 'SRModel'):
            raise OptionError(f'base_model_type does not apply to model_type: {cls.__name__}, the authors\' class '
                              f'name; use model_type: MCLIRModel with base_model_type instead.')
        return cls

    @classmethod
    def check_options(cls, opt, path=''):
        check_mclir_train_options(cls.ours(opt, warn=False))

    @classmethod
    def ours(cls, opt, warn=True):
        """A copy of ``opt`` in this plugin's terms (see the module docstring); warns where a file relies on a
        difference, if ``warn``."""
        for key in ('network_g_net', 'complie'):
            if opt.get(key):
                raise OptionError(f'{key} is not supported by {cls.__name__} here: remove it (compile: use '
                                  f'train.compile: {{enabled: true}}).')
        if any(v for k, v in (opt.get('path_neg') or {}).items() if k.startswith('pretrain_')):
            raise OptionError('path_neg: initialising the history copies from a file is not supported (the authors\' '
                              'SRNegModel loads it into net_g by mistake; their other classes ignore it). Remove the '
                              'values, or start from path.pretrain_network_g.')
        opt = copy.deepcopy(opt)
        train = opt['train']
        for key, why in REFUSED.items():
            if key in train:
                raise OptionError(f'train.{key} is not supported: {why}. Remove it.')
        for key in UNREAD_BY_AUTHORS:
            if train.pop(key, None) is not None and warn:
                get_root_logger().warning(f'train.{key} is read by no code of the authors\' {cls.__name__} and does '
                                          f'nothing here either; to clip gradients set train.grad_clip: '
                                          f'{{max_norm: ...}}.')
        if 'perceptual_opt' not in train:
            raise OptionError(f'train.perceptual_opt is required by {cls.__name__}: in the authors\' classes it is the '
                              f'negative term (L = L1 - mean_k Percep(out, neg_k)).')
        train['spn_opt'] = perceptual_to_spn(train.pop('perceptual_opt'))
        if 'perceptual_pos_opt' in train:
            train['perceptual_opt'] = train.pop('perceptual_pos_opt')
        if 'neg_iter' not in train:
            raise OptionError(f'train.neg_iter is required by {cls.__name__} (the refresh period of each copy).')
        train.pop('neg_t', None)  # the adaptive class reads it before translating
        train.setdefault('neg_start', cls.default_neg_start)
        cfg = parse_history(train)  # checks the authors' keys with their key paths
        n = len(cfg.copies)
        decays = [c.decay for c in cfg.copies]
        if warn and len(set(decays)) > 1:
            get_root_logger().warning(f'train.neg_decay pairs with train.neg_iter reversed, as in the authors\' code: '
                                      f'copy i uses neg_iter[{n - 1}-i] with neg_decay[i].')
        copies = [{'period': cfg.copies[n - 1 - i].period, 'decay': decays[i]} for i in range(n)]
        for key in ('neg_iter', 'neg_decay', 'neg_start'):
            train.pop(key, None)
        train['history'] = {'init_decay': cfg.init_decay, 'copies': copies}
        return opt

    def init_training_settings(self):
        self.opt = self.ours(self.opt)
        spn = self.opt['train']['spn_opt']
        # resolved here so that a missing file is named by the key of their file, not by our spn_opt
        spn['vgg_weights'] = resolve_vgg_weights(spn.get('vgg_weights'), spn['vgg_type'],
                                                 'train.perceptual_opt.vgg_weights')
        super().init_training_settings()


@MODEL_REGISTRY.register()
class SRNegModel(_AuthorsSemantics, MCLIRModel):
    """The authors' single-negative SR class: MCLIRModel with their keys and semantics."""
    default_neg_start = 0.999


@MODEL_REGISTRY.register()
class SRNegModel_Multi(_AuthorsSemantics, MCLIRModel):  # noqa: N801 - the authors' class name
    """The authors' multi-negative SR class."""


@MODEL_REGISTRY.register()
class SwinIRNegModel(_AuthorsSemantics, MCLIRSwinIRModel):
    """The authors' single-negative SwinIR class (SwinIRModel's window padding at test time)."""
    default_neg_start = 0.999


@MODEL_REGISTRY.register()
class SwinIRNegModel_Multi(_AuthorsSemantics, MCLIRSwinIRModel):  # noqa: N801
    """The authors' multi-negative SwinIR class."""


class _FFANetInput:
    """The authors' FFA-Net classes normalise the input inside the model, in training and validation."""

    def feed_data(self, data):
        super().feed_data(data)
        mean = torch.tensor(FFA_MEAN, device=self.lq.device).view(1, 3, 1, 1)
        std = torch.tensor(FFA_STD, device=self.lq.device).view(1, 3, 1, 1)
        self.lq = (self.lq - mean) / std


@MODEL_REGISTRY.register()
class ImageRestorationModel_FFANet_Neg_Multi(_FFANetInput, _AuthorsSemantics, MCLIRModel):  # noqa: N801
    """The authors' FFA-Net dehazing class."""


@MODEL_REGISTRY.register()
class ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP(_FFANetInput, _AuthorsSemantics, MCLIRModel):  # noqa: N801
    """The authors' adaptive FFA-Net class: a copy is refreshed when the residual is large (``train.neg_t``)."""

    plugin_option_keys = {'train': _AuthorsSemantics.plugin_option_keys['train'] + ('neg_t', ),
                          'top': _AuthorsSemantics.plugin_option_keys['top']}

    @classmethod
    def check_options(cls, opt, path=''):
        cls.threshold(opt)
        super().check_options(opt, path)

    @staticmethod
    def threshold(opt):
        return check_number(opt['train'].get('neg_t', AUTHORS_ADAPTIVE_THRESHOLD), 'train.neg_t', low=0)

    def init_training_settings(self):
        threshold = self.threshold(self.opt)  # before the translation, which drops train.neg_t
        super().init_training_settings()
        self.adaptive = AdaptiveRefresh(threshold, AUTHORS_ADAPTIVE_DECAY)

    def refresh_history(self, current_iter):
        """Adaptive refresh only (train.history.adaptive's trigger): no periodic refresh in this class."""
        self.refresh_adaptively(current_iter)

    @property
    def adaptive_refreshes(self):
        return self.adaptive.count
