"""The training-step keys every model class of this plugin reads: ``train.divergence_guard``, ``train.grad_clip``
(or NAFNet's ``train.use_grad_clip``), ``train.amp`` and ``train.compile``. Each ``parse_*`` checks its block (messages
name the key path) and returns the configuration the step is built from.

* ``train.divergence_guard``: ``enabled`` (bool, default true), ``max_consecutive_bad_steps`` (int >= 1, default
  10): a step with a non-finite loss or gradient is skipped; that many in a row stop training.
* ``train.grad_clip``: ``max_norm`` (> 0), ``norm_type`` (default 2): the gradient norm is clipped after
  unscaling, before the optimiser step, and logged as ``grad_norm`` (before clipping). The NAFNet-style
  ``train.use_grad_clip: true`` means ``max_norm: 0.01``.
* ``train.amp``: ``enabled`` (bool, default false), ``dtype`` (``bf16`` | ``fp16``, default ``bf16``),
  ``init_scale`` (fp16 only: the gradient scaler's first scale, default 65536).
* ``train.compile``: ``enabled`` (bool, default false), ``backend`` (default ``inductor``), ``mode``, ``dynamic``
  (bool or null, default false), ``fullgraph`` (bool, default false), ``targets`` (subset of ``net_g``,
  ``history``, ``vgg``; default all).
"""
import torch
from dataclasses import dataclass

from ..checks.options import OptionError, check_bool, check_int, check_number, nearest, optional_block

GUARD_KEYS = ('enabled', 'max_consecutive_bad_steps')
AMP_KEYS = ('enabled', 'dtype', 'init_scale')
AMP_DTYPES = {'bf16': 'bfloat16', 'bfloat16': 'bfloat16', 'fp16': 'float16', 'float16': 'float16'}
COMPILE_KEYS = ('enabled', 'backend', 'mode', 'dynamic', 'fullgraph', 'targets')
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')
COMPILE_TARGETS = ('net_g', 'history', 'vgg')
GRAD_CLIP_KEYS = ('max_norm', 'norm_type')
NAFNET_CLIP_NORM = 0.01  # what NAFNet-style code clips to when use_grad_clip is true


@dataclass
class GuardConfig:
    enabled: bool = True
    max_consecutive_bad_steps: int = 10


def parse_guard(train_opt, path='train.divergence_guard'):
    """Read and check ``train.divergence_guard`` (optional). Returns :class:`GuardConfig`."""
    guard = optional_block(train_opt, 'divergence_guard', GUARD_KEYS, path)
    if guard is None:
        return GuardConfig()
    return GuardConfig(enabled=check_bool(guard.get('enabled', True), f'{path}.enabled'),
                       max_consecutive_bad_steps=check_int(guard.get('max_consecutive_bad_steps', 10),
                                                           f'{path}.max_consecutive_bad_steps', low=1))


@dataclass
class GradClipConfig:
    max_norm: float
    norm_type: float = 2.0


def parse_grad_clip(train_opt, path='train', default=None):
    """``train.grad_clip: {max_norm, norm_type}``, or ``train.use_grad_clip``: ``true`` is NAFNet's max norm 0.01, a
    number is the max norm (the MCLIR authors' models); never both. Returns :class:`GradClipConfig`, or ``default``
    when neither key is given (the model class's: NAFNet's clips unless told not to)."""
    if 'grad_clip' in train_opt and 'use_grad_clip' in train_opt:
        raise OptionError(f'{path}.grad_clip and {path}.use_grad_clip are both given; keep one.')
    if 'use_grad_clip' in train_opt:
        value = train_opt['use_grad_clip']
        if isinstance(value, bool):  # NAFNet's switch
            return GradClipConfig(NAFNET_CLIP_NORM) if value else None
        # the MCLIR authors' models pass the value itself as the max norm
        return GradClipConfig(check_number(value, f'{path}.use_grad_clip', low=0, low_open=True))
    block = optional_block(train_opt, 'grad_clip', GRAD_CLIP_KEYS, f'{path}.grad_clip', example='{max_norm: 0.01}')
    if block is None:
        return default
    if 'max_norm' not in block:
        raise OptionError(f'{path}.grad_clip.max_norm is missing (the largest gradient norm allowed).')
    return GradClipConfig(check_number(block['max_norm'], f'{path}.grad_clip.max_norm', low=0, low_open=True),
                          check_number(block.get('norm_type', 2.0), f'{path}.grad_clip.norm_type', low=0,
                                       low_open=True))


@dataclass
class AmpConfig:
    enabled: bool = False
    dtype: str = 'bfloat16'  # a torch dtype name
    init_scale: float = 2.0 ** 16


def parse_amp(train_opt, path='train.amp'):
    """Read and check ``train.amp`` (optional). Returns :class:`AmpConfig`."""
    amp = optional_block(train_opt, 'amp', AMP_KEYS, path, example='{enabled: true, dtype: bf16}')
    if amp is None:
        return AmpConfig()
    dtype = amp.get('dtype', 'bf16')
    if dtype not in AMP_DTYPES:
        raise OptionError(f'{path}.dtype must be one of bf16, fp16, got {dtype!r}.')
    cfg = AmpConfig(enabled=check_bool(amp.get('enabled', False), f'{path}.enabled'), dtype=AMP_DTYPES[dtype],
                    init_scale=check_number(amp.get('init_scale', 2.0 ** 16), f'{path}.init_scale', low=0,
                                            low_open=True))
    if 'init_scale' in amp and cfg.dtype != 'float16':
        raise OptionError(f'{path}.init_scale only applies to dtype: fp16 (bf16 needs no gradient scaler); remove it.')
    return cfg


@dataclass
class CompileConfig:
    enabled: bool = False
    backend: str = 'inductor'
    mode: object = None
    dynamic: object = False
    fullgraph: bool = False
    targets: tuple = COMPILE_TARGETS


def parse_compile(train_opt, path='train.compile'):
    """Read and check ``train.compile`` (optional). Returns :class:`CompileConfig`."""
    comp = optional_block(train_opt, 'compile', COMPILE_KEYS, path, example='{enabled: true}')
    if comp is None:
        return CompileConfig()
    backend = comp.get('backend', 'inductor')
    if not isinstance(backend, str) or not backend:
        raise OptionError(f'{path}.backend must be a torch.compile backend name such as inductor, got {backend!r}.')
    backends = torch.compiler.list_backends(exclude_tags=())
    if backend not in backends:
        hint = nearest(backend, backends)
        raise OptionError(f'{path}.backend {backend!r} is not a torch.compile backend.' +
                          (f' Did you mean {hint}?' if hint else '') + f' Available: {", ".join(backends)}.')
    mode = comp.get('mode')
    if mode is not None and mode not in COMPILE_MODES:
        raise OptionError(f'{path}.mode must be one of {", ".join(COMPILE_MODES)} or null, got {mode!r}.')
    dynamic = comp.get('dynamic', False)
    if dynamic is not None:
        check_bool(dynamic, f'{path}.dynamic')
    targets = comp.get('targets', list(COMPILE_TARGETS))
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, (list, tuple)) or not targets:
        raise OptionError(f'{path}.targets must be a non-empty list of {", ".join(COMPILE_TARGETS)}, got {targets!r}.')
    for t in targets:
        if t not in COMPILE_TARGETS:
            hint = nearest(t, COMPILE_TARGETS)
            raise OptionError(f'{path}.targets: unknown target {t!r}.' + (f' Did you mean {hint}?' if hint else '') +
                              f' Valid: {", ".join(COMPILE_TARGETS)}.')
    return CompileConfig(enabled=check_bool(comp.get('enabled', False), f'{path}.enabled'), backend=backend,
                         mode=mode, dynamic=dynamic, fullgraph=check_bool(comp.get('fullgraph', False),
                                                                          f'{path}.fullgraph'),
                         targets=tuple(dict.fromkeys(targets)))
