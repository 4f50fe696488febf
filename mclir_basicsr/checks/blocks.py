"""Every typed block of an option file is built before anything is written.

A *typed block* is a mapping with a ``type`` that names a registered class: ``network_<x>`` (ARCH_REGISTRY),
``train.<x>_opt`` (LOSS_REGISTRY), ``train.optim_<x>`` (``torch.optim``) and ``train.scheduler``; the metric
functions of ``val.metrics`` (METRIC_REGISTRY) are checked against their signatures. For each one:

1. the type is registered (a close misspelling is suggested, never a name of other semantics);
2. the class's own check runs when it declares one: ``check_options(args, path)`` (a classmethod; ``args`` is the
   block without ``type``, ``path`` its key path) raising :class:`~mclir_basicsr.options.OptionError`;
3. the arguments fit the constructor's signature, and the object is constructed: networks on the meta device (no
   memory, no initialisation; a network whose construction needs real values is built on the CPU), losses without
   a ``check_options`` on the meta device, an optimizer over one dummy parameter, the scheduler over that optimizer.
   Torch's random state is left as it was. A VGG inside a loss is built with random weights: the weight files are
   checked with the other inputs (:mod:`mclir_basicsr.preflight.vgg`). A loss with ``check_options`` is not
   constructed: its check is complete.

A constructor's exception becomes one line: the key path, the type, the constructor's own message, what to do.

Numbers YAML reads as text: PyYAML (YAML 1.1) reads ``1e-3`` (no dot) as the string ``'1e-3'``. Such strings under
``network_*``, ``train``, ``val`` and ``logger`` are taken as the numbers they spell (:func:`numbers_from_text`).
"""
import functools
import json
import re
import torch
import warnings
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY

from ..losses.vgg_weights import RANDOM, vgg_source
from ..training.lr_schedulers import scheduler_classes
from ..training.optimizers import check_arguments, optimizer_classes
from .options import OptionError, registered_name

SCIENTIFIC_WITHOUT_DOT = re.compile(r'^[-+]?\d+[eE][-+]?\d+$')  # what YAML 1.1 leaves as text
NUMERIC_SECTIONS = ('train', 'val', 'logger')


def numbers_from_text(opt):
    """Replace, in place, strings like ``'1e-3'`` by the floats they spell (see the module doc). Returns ``opt``."""

    def convert(value):
        if isinstance(value, str) and SCIENTIFIC_WITHOUT_DOT.match(value):
            return float(value)
        if isinstance(value, dict):
            for k in value:
                value[k] = convert(value[k])
        elif isinstance(value, list):
            value[:] = [convert(v) for v in value]
        return value

    for key in list(opt):
        if key in NUMERIC_SECTIONS or str(key).startswith('network_'):
            opt[key] = convert(opt[key])
    return opt


def check_typed_blocks(opt):
    """Build every typed block of ``opt`` (see the module doc); raise OptionError naming the first that fails."""
    for key, block in opt.items():
        if str(key).startswith('network_') and block is not None:
            check_network(block, key)
    for name, block in ((opt.get('val') or {}).get('metrics') or {}).items():
        check_metric(block, f'val.metrics.{name}')
    if not opt.get('is_train', True):
        return
    train_opt = opt.get('train') or {}
    for key, block in train_opt.items():
        if str(key).endswith('_opt') and isinstance(block, dict) and 'type' in block:
            check_loss(block, f'train.{key}')
    optimizer = None
    for key, block in train_opt.items():
        if str(key).startswith('optim_') and isinstance(block, dict):
            optimizer = build_optimizer_block(block, f'train.{key}')
    scheduler = train_opt.get('scheduler')
    if isinstance(scheduler, dict) and scheduler.get('type') in scheduler_classes() and optimizer is not None:
        _construct(lambda: _first_step(scheduler_classes()[scheduler['type']](optimizer, **_args(scheduler))),
                   scheduler['type'], 'train.scheduler')


def _first_step(scheduler):
    """One step, so that arguments read only by the schedule's formula are used once."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "lr_scheduler.step() before optimizer.step()": no training here
        scheduler.step()
    return scheduler


def _args(block):
    return {k: v for k, v in block.items() if k != 'type'}


def _typed(block, path, example):
    if not isinstance(block, dict) or 'type' not in block:
        raise OptionError(f'{path} must be a mapping with a type, e.g. {example}.')
    return block['type']


def check_network(block, path):
    """A ``network_<x>`` block: registered, its class's check, its signature, built on the meta device."""
    name = _typed(block, path, '{type: NAFNet, width: 32}')
    cls = registered_name(ARCH_REGISTRY, name, 'network in BasicSR\'s ARCH_REGISTRY', f'{path}.type')
    args = _args(block)
    _own_check(cls, args, path)
    check_arguments(cls, args, path)
    _build_network(json.dumps(block, sort_keys=True), path)


@functools.lru_cache(maxsize=64)
def _build_network(block_json, path):
    """Once per configuration in a process (train and test files, a baseline and its SPN twin share one)."""
    block = json.loads(block_json)
    cls, args = ARCH_REGISTRY.get(block['type']), _args(block)
    try:
        _on_device(lambda: cls(**args), 'meta')
    except Exception:  # noqa: BLE001 - e.g. .item() during construction: needs real values, try the CPU
        _construct(lambda: _on_device(lambda: cls(**args), 'cpu'), block['type'], path)


def check_metric(block, path):
    """A ``val.metrics.<name>`` block: a registered metric function whose required arguments are given (BasicSR
    calls ``metric(img, img2, **block)`` at the first validation, after training started)."""
    name = _typed(block, path, '{type: calculate_psnr, crop_border: 0}')
    fn = registered_name(METRIC_REGISTRY, name, 'metric in BasicSR\'s METRIC_REGISTRY', f'{path}.type')
    args = {k: v for k, v in _args(block).items() if k != 'better'}  # read by BasicSR's best-metric tracking
    check_arguments(fn, args, path, skip=('img', 'img2'))


def check_loss(block, path):
    """A ``train.<x>_opt`` loss block: registered; its class's ``check_options`` if it has one, else its signature
    and a construction on the meta device."""
    cls = registered_name(LOSS_REGISTRY, block['type'], 'loss in BasicSR\'s LOSS_REGISTRY', f'{path}.type')
    args = _args(block)
    if _own_check(cls, args, path):
        return
    check_arguments(cls, args, path)
    # a VGG inside is built without its weights (vgg_weights too): their file is checked with the inputs
    args.pop('vgg_weights', None)
    with vgg_source(RANDOM):
        _construct(lambda: _on_device(lambda: cls(**args), 'meta'), block['type'], path)


def build_optimizer_block(block, path):
    """A ``train.optim_<x>`` block (type and arguments are checked by :mod:`mclir_basicsr.optimizers`): the optimizer
    over one dummy parameter, so that its own value checks run (a negative lr, betas out of range, ...)."""
    cls = optimizer_classes().get(block.get('type'))
    if cls is None or 'lr' not in block:
        return None
    dummy = [torch.nn.Parameter(torch.zeros(1))]
    return _construct(lambda: cls(dummy, **_args(block)), block['type'], path)


def _own_check(cls, args, path):
    """Run ``cls.check_options(args, path)`` if the class declares it; True if it did."""
    check = getattr(cls, 'check_options', None)
    if check is None:
        return False
    check(args, path)
    return True


def _on_device(build, device):
    with torch.random.fork_rng(devices=[]), torch.device(device):
        return build()


def _construct(build, type_name, path):
    """``build()``; any exception of the constructor becomes an OptionError naming ``path``."""
    try:
        return build()
    except OptionError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the constructor raises is a problem of these arguments
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OptionError(f'{path}: {type_name} cannot be built with these arguments ({type(err).__name__}: '
                          f'{message}). Change the arguments of {path}.') from err
