"""The keys of MCLIR model classes: history copies (ours or the authors' spelling), SPN, the uncertainty loss.

* ``train.history``: ``init_decay`` (float in [0, 1], default 0.1), ``copies`` (non-empty list of
  ``{period: int >= 1, decay: float in [0, 1)}``) and ``negatives`` (``all``, default: every copy's output is a
  negative at every step; ``round_robin``: one copy per step, copy ``current_iter % N``); ``adaptive`` (the MCLIR
  authors' trigger): ``{threshold: 0.022 (alias neg_t), decay: 0.001}``: after a step whose batch mean of
  ``std(2 (output - gt))`` over (C, H, W), averaged over ranks, exceeds ``threshold``, copy ``count % N`` is refreshed
  with ``decay`` and ``count`` grows. With ``adaptive``, a copy's ``period`` may be null (adaptive refresh only).
* The authors' spelling, as an alternative to ``train.history`` (never both): ``train.neg_iter`` (int or list of
  ints -> one copy per entry, its ``period``), ``train.neg_decay`` (float or list -> ``decay`` of each copy) and
  ``train.neg_start`` (float -> ``init_decay``).
* ``train.spn_opt``: a loss option dict (``type: SPNLoss`` and its keyword arguments).
* ``train.uncertainty_opt`` (optional): ``type: HistoryUncertaintyLoss`` (``loss_weight``, ``beta``, ``criterion``),
  a reconstruction loss weighted by the copies' spread around the output (:mod:`.uncertainty_loss`).
* ``train.divergence_guard``, ``train.grad_clip``, ``train.amp``, ``train.compile``: the step's keys, as every model
  class of this plugin reads them (:mod:`mclir_basicsr.training.options`).
* top level ``base_model_type``: the BasicSR model class that ``MCLIRModel`` extends (default ``SRModel``).
"""
from basicsr.utils.registry import LOSS_REGISTRY
from dataclasses import dataclass, field
from typing import List, Optional

from ...checks.options import OptionError, check_int, check_known_keys, check_loss_options, check_number
from ...training.options import parse_amp, parse_compile, parse_grad_clip, parse_guard
from ...training.progressive import check_progressive
from .history import NEGATIVE_MODES

HISTORY_KEYS = ('init_decay', 'copies', 'negatives', 'adaptive')
ADAPTIVE_KEYS = ('threshold', 'neg_t', 'decay')
AUTHORS_ADAPTIVE_THRESHOLD, AUTHORS_ADAPTIVE_DECAY = 0.022, 0.001
COPY_KEYS = ('period', 'decay')
AUTHOR_KEYS = ('neg_iter', 'neg_decay', 'neg_start')
MCLIR_TRAIN_KEYS = ('history', 'spn_opt', 'uncertainty_opt', 'divergence_guard', 'amp', 'compile', 'grad_clip',
                    'use_grad_clip', 'progressive') + AUTHOR_KEYS
MCLIR_TOP_KEYS = ('base_model_type', )
DEFAULT_INIT_DECAY = 0.1


@dataclass
class CopySpec:
    """One history copy: refreshed every ``period`` iterations with ``theta <- decay*theta + (1-decay)*net``."""
    period: int
    decay: float


@dataclass
class AdaptiveConfig:
    """The adaptive refresh trigger: refresh a copy when the residual spread exceeds ``threshold``."""
    threshold: float = AUTHORS_ADAPTIVE_THRESHOLD
    decay: float = AUTHORS_ADAPTIVE_DECAY


@dataclass
class HistoryConfig:
    init_decay: float = DEFAULT_INIT_DECAY
    copies: List[CopySpec] = field(default_factory=list)
    source: str = 'train.history'
    negatives: str = 'all'
    adaptive: Optional[AdaptiveConfig] = None


def parse_history(train_opt, path='train'):
    """Read and check the history copies from ``opt['train']`` (either spelling). Returns :class:`HistoryConfig`."""
    if not isinstance(train_opt, dict):
        raise OptionError(f'{path} must be a mapping.')
    authors = [k for k in AUTHOR_KEYS if k in train_opt]
    if 'history' in train_opt and authors:
        raise OptionError(f'{path}.history and the authors\' keys {", ".join(f"{path}.{k}" for k in authors)} are '
                          f'both given; use one spelling (see docs/mclir.md, "Using the authors\' keys").')
    if 'history' in train_opt:
        return _parse_history_block(train_opt['history'], f'{path}.history')
    if authors:
        return _parse_authors_keys(train_opt, path)
    raise OptionError(f'{path}.history is required by MCLIR models: add e.g.\n'
                      f'  history:\n    init_decay: 0.1\n    copies:\n      - {{period: 100, decay: 0.1}}\n'
                      f'(or the authors\' keys {path}.neg_iter / neg_decay / neg_start).')


def _parse_history_block(hist, path):
    if not isinstance(hist, dict):
        raise OptionError(f'{path} must be a mapping with keys {", ".join(HISTORY_KEYS)}, got {hist!r}.')
    check_known_keys(hist, HISTORY_KEYS, path)
    init_decay = check_number(hist.get('init_decay', DEFAULT_INIT_DECAY), f'{path}.init_decay', 0, 1)
    copies = hist.get('copies')
    if not isinstance(copies, (list, tuple)) or len(copies) == 0:
        raise OptionError(f'{path}.copies must be a non-empty list such as [{{period: 100, decay: 0.1}}], '
                          f'got {copies!r}.')
    adaptive = _parse_adaptive(hist['adaptive'], f'{path}.adaptive') if 'adaptive' in hist else None
    specs = []
    for i, c in enumerate(copies):
        cpath = f'{path}.copies[{i}]'
        if not isinstance(c, dict):
            raise OptionError(f'{cpath} must be a mapping {{period: int, decay: float}}, got {c!r}.')
        check_known_keys(c, COPY_KEYS, cpath)
        for key in COPY_KEYS:
            if key not in c:
                raise OptionError(f'{cpath}.{key} is missing.')
        if c['period'] is None and adaptive is None:
            raise OptionError(f'{cpath}.period is null, but without {path}.adaptive the copy would never be '
                              f'refreshed; give a period or add adaptive: {{threshold: 0.022}}.')
        period = None if c['period'] is None else check_int(c['period'], f'{cpath}.period', low=1)
        specs.append(CopySpec(period, check_number(c['decay'], f'{cpath}.decay', 0, 1, high_open=True)))
    negatives = hist.get('negatives', 'all')
    if negatives not in NEGATIVE_MODES:
        raise OptionError(f'{path}.negatives must be one of {", ".join(NEGATIVE_MODES)}, got {negatives!r}.')
    return HistoryConfig(init_decay=init_decay, copies=specs, source=path, negatives=negatives, adaptive=adaptive)


def _parse_adaptive(block, path):
    if not isinstance(block, dict):
        raise OptionError(f'{path} must be a mapping such as {{threshold: 0.022, decay: 0.001}}, got {block!r}.')
    check_known_keys(block, ADAPTIVE_KEYS, path)
    if 'threshold' in block and 'neg_t' in block:
        raise OptionError(f'{path}.threshold and {path}.neg_t (its alias, the authors\' name) are both given; keep '
                          f'threshold.')
    key = 'neg_t' if 'neg_t' in block else 'threshold'
    threshold = check_number(block.get(key, AUTHORS_ADAPTIVE_THRESHOLD), f'{path}.{key}', low=0)
    decay = check_number(block.get('decay', AUTHORS_ADAPTIVE_DECAY), f'{path}.decay', 0, 1, high_open=True)
    return AdaptiveConfig(threshold, decay)


def _as_list(value, n, path):
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise OptionError(f'{path} has {len(value)} entries but train.neg_iter has {n}; give one per copy '
                              f'or a single number.')
        return list(value)
    return [value] * n


def _parse_authors_keys(train_opt, path):
    if 'neg_iter' not in train_opt:
        raise OptionError(f'{path}.neg_iter is required with the authors\' keys (the refresh period of each copy).')
    iters = train_opt['neg_iter']
    iters = list(iters) if isinstance(iters, (list, tuple)) else [iters]
    if not iters:
        raise OptionError(f'{path}.neg_iter must not be empty.')
    periods = [check_int(v, f'{path}.neg_iter' + (f'[{i}]' if len(iters) > 1 else ''), low=1)
               for i, v in enumerate(iters)]
    decays = _as_list(train_opt.get('neg_decay', 0.1), len(periods), f'{path}.neg_decay')
    decays = [check_number(v, f'{path}.neg_decay', 0, 1, high_open=True) for v in decays]
    init_decay = check_number(train_opt.get('neg_start', DEFAULT_INIT_DECAY), f'{path}.neg_start', 0, 1)
    return HistoryConfig(init_decay=init_decay, copies=[CopySpec(p, d) for p, d in zip(periods, decays)],
                         source=f'{path}.neg_iter/neg_decay/neg_start')


def check_mclir_train_options(opt):
    """Check every MCLIR key under ``train`` (history copies and ``spn_opt`` are required)."""
    train_opt = opt.get('train') or {}
    parse_history(train_opt)
    parse_guard(train_opt)
    parse_grad_clip(train_opt)
    parse_amp(train_opt)
    parse_compile(train_opt)
    check_progressive(opt)
    spn = train_opt.get('spn_opt')
    if not isinstance(spn, dict):
        raise OptionError('train.spn_opt is required by MCLIR models: add e.g.\n'
                          '  spn_opt:\n    type: SPNLoss\n    loss_weight: 0.001\n    vgg_weights: random')
    check_loss_options(spn, 'train.spn_opt')
    pixel = train_opt.get('pixel_opt')
    pixel_cls = LOSS_REGISTRY.get(pixel['type']) if isinstance(pixel, dict) and pixel.get('type') in LOSS_REGISTRY \
        else None
    if spn.get('loss_weight') == 'auto' and getattr(pixel_cls, 'negative_values', False):
        raise OptionError(f'train.spn_opt.loss_weight: auto keeps l_spn at a fraction of the reconstruction loss, but '
                          f'{pixel["type"]} (train.pixel_opt) is a log and is negative. Give a fixed loss_weight (e.g. '
                          f'0.001).')
    if train_opt.get('uncertainty_opt') is not None:
        unc = train_opt['uncertainty_opt']
        if not isinstance(unc, dict):
            raise OptionError(f'train.uncertainty_opt must be a mapping such as {{type: HistoryUncertaintyLoss, beta: '
                              f'0.5}}, got {unc!r}.')
        check_loss_options(unc, 'train.uncertainty_opt')
