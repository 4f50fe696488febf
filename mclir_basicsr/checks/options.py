"""Validation of option files: the checks every key of ours goes through, and the entry check of a whole file.

BasicSR reads options with silent ``.get`` defaults, so a misspelt key silently turns a feature off. Every key of
ours is checked; an unknown one is an error naming the nearest valid key, and every message names the key path
(``train.history.copies[1].decay``) and says what to change.

:func:`check_options` knows no method: a model class of this plugin declares the keys it reads
(``plugin_option_keys``), may pick the class that will really be built (``resolve_model_class``), and checks its
own keys (``check_options(opt, path)``, the protocol of :mod:`mclir_basicsr.checks`). A new method family adds its
model class; nothing here changes.
"""
import difflib
import inspect
import math
import numbers
import torch
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

BASICSR_TOP_KEYS = ('name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'network_d',
                    'path', 'train', 'val', 'logger', 'dist_params', 'dist', 'rank', 'world_size', 'auto_resume',
                    'is_train', 'root_path', 'find_unused_parameters', 'gt_usm', 'queue_size',
                    'suffix', 'crop_border')  # the last two: older BasicSR test files' (1.4.2 reads val.suffix)
# Keys BasicSR (and its common plugins) read under ``train``; a key close to one of ours but not listed here is
# treated as a typo of ours.
BASICSR_TRAIN_KEYS = ('ema_decay', 'optim_g', 'optim_d', 'scheduler', 'total_iter', 'warmup_iter', 'pixel_opt',
                      'perceptual_opt', 'gan_opt', 'ldl_opt', 'net_d_iters', 'net_d_init_iters', 'artifacts_opt',
                      'style_opt', 'l1_opt', 'gan_type', 'r1_reg_weight', 'path_reg_weight', 'net_g_reg_every',
                      'net_d_reg_every', 'mixing_prob', 'fix_flow', 'flow_lr_mul')
BASICSR_PATH_KEYS = ('experiments_root', 'results_root', 'models', 'training_states', 'log', 'visualization',
                     'resume_state', 'ignore_resume_networks', 'root')


def basicsr_path_keys(opt):
    """The ``path`` keys BasicSR reads for this option file: its folders and the file keys of each ``network_<x>``."""
    nets = [k[len('network_'):] for k in opt if str(k).startswith('network_')]
    return BASICSR_PATH_KEYS + tuple(f'{p}_{x}' for x in nets for p in ('pretrain_network', 'strict_load', 'param_key'))


class OptionError(ValueError):
    """A problem with an option file: the message names the key path and what to do."""


def nearest(key, valid, cutoff=0.6):
    """The valid key closest to ``key`` (or None)."""
    match = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=cutoff)
    return match[0] if match else None


def _edit_distance(a, b):
    """Insertions, deletions, substitutions and swaps of neighbours that turn ``a`` into ``b``."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def _plain(name):
    """A registered name as its letters say it: case, ``_`` and a ``Loss`` suffix aside."""
    plain = str(name).lower().replace('_', '')
    return plain[:-len('loss')] if plain.endswith('loss') else plain


def close_spelling(name, names):
    """The one name of ``names`` that ``name`` misspells (case, ``_`` and a ``Loss`` suffix aside, one typo; two in
    names of 12+ letters), or None. Registered names that merely look alike often mean other things (NAFNetLocal is
    not NAFNet, PSNRLoss is not SPNLoss), so nothing looser is suggested."""
    allowed = 2 if len(str(name)) >= 12 else 1
    scored = sorted((min(_edit_distance(str(name).lower(), str(n).lower()), _edit_distance(_plain(name), _plain(n))),
                     str(n)) for n in names)
    if scored and scored[0][0] <= allowed and (len(scored) == 1 or scored[1][0] > scored[0][0]):
        return scored[0][1]
    return None


def check_known_keys(d, valid, path):
    """Raise :class:`OptionError` for the first key of ``d`` not in ``valid``."""
    for key in d:
        if key not in valid:
            hint = nearest(key, valid)
            hint = f' Did you mean {path}.{hint}?' if hint else ''
            raise OptionError(f'unknown key {path}.{key}.{hint} Valid keys: {", ".join(valid)}.')


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_number(value, path, low=None, high=None, low_open=False, high_open=False):
    """Return ``float(value)`` after checking its type and range; the message names ``path``."""
    if not _is_number(value):
        raise OptionError(f'{path} must be a number, got {value!r}.')
    if not math.isfinite(float(value)):
        raise OptionError(f'{path} must be a finite number, got {value!r}.')
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = f'{"(" if low_open else "["}{low:g}' if low is not None else '(-inf'
        hi = f'{high:g}{")" if high_open else "]"}' if high is not None else 'inf)'
        raise OptionError(f'{path} must be in {lo}, {hi}, got {value:g}.')
    return value


def check_int(value, path, low=None):
    if isinstance(value, bool) or not (isinstance(value, numbers.Integral) or
                                       (isinstance(value, float) and value.is_integer())):
        raise OptionError(f'{path} must be an integer, got {value!r}.')
    value = int(value)
    if low is not None and value < low:
        raise OptionError(f'{path} must be >= {low}, got {value}.')
    return value


def check_bool(value, path):
    if not isinstance(value, bool):
        raise OptionError(f'{path} must be true or false, got {value!r}.')
    return value


def optional_block(train_opt, key, valid, path, example=None):
    """``train_opt[key]`` checked to be a mapping of ``valid`` keys, or None when absent."""
    block = train_opt.get(key)
    if block is None:
        return None
    if not isinstance(block, dict):
        like = f'such as {example}' if example else f'with keys {", ".join(valid)}'
        raise OptionError(f'{path} must be a mapping {like}, got {block!r}.')
    check_known_keys(block, valid, path)
    return block


def check_typos(d, ours, theirs, prefix, label='key '):
    """Catch misspellings of our keys (e.g. ``histroy``) that BasicSR would silently ignore: a key of ``d`` that
    is neither ours nor BasicSR's but close to one of ours. ``prefix`` is the key path of ``d`` (``train.``)."""
    for key in d:
        if key in ours or key in theirs:
            continue
        hint = nearest(key, ours, cutoff=0.75)
        if hint:
            raise OptionError(f'unknown {label}{prefix}{key}. Did you mean {prefix}{hint}?')


def registered_name(registry, name, what, key, candidates=None, otherwise=''):
    """Raise a key-named error if ``name`` is not in ``registry``: the nearest of ``candidates`` (default: every
    registered name) is suggested, else ``otherwise`` says where to go. Returns the registered object."""
    if name not in registry:
        hint = close_spelling(name, list(registry.keys()) if candidates is None else candidates)
        raise OptionError(f'{key} {name!r} is not a registered {what}.' +
                          (f' Did you mean {hint}?' if hint else otherwise) +
                          ' Import the package that registers it before training (mclir-train --import MODULE).')
    return registry.get(name)


def hard_coded_cuda(cls):
    """The first class in ``cls``'s MRO whose ``__init__`` calls ``.cuda()`` (e.g. Real-ESRGAN's RealESRNetModel
    builds ``DiffJPEG().cuda()``), or None."""
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get('__init__')
        try:
            if init is not None and '.cuda()' in inspect.getsource(init):
                return klass
        except (OSError, TypeError):  # no source (builtins, C extensions)
            continue
    return None


def check_no_hard_coded_cuda(model_cls, key):
    """Refuse, before anything is written, a model class that needs CUDA in its constructor on a machine without."""
    culprit = hard_coded_cuda(model_cls)
    if culprit is not None and not torch.cuda.is_available():
        raise OptionError(f'{key}: {model_cls.__name__} cannot be built here: {culprit.__name__}.__init__ calls '
                          f'.cuda() and this machine has no GPU. Train it on a GPU machine, or use a model class that '
                          f'places its modules with self.device (for SPN: model_type: MCLIRModel on SRModel).')


def plugin_keys(section):
    """Union of the keys of ``section`` ('top', 'train' or 'path') declared by this plugin's model classes."""
    keys = []
    for _, cls in MODEL_REGISTRY:
        keys += [k for k in getattr(cls, 'plugin_option_keys', {}).get(section, ()) if k not in keys]
    return keys


# BasicSR's own counts, read with int() or compared as numbers long after the start: (key path, lowest value)
BASICSR_COUNTS = (('train.total_iter', 1), ('train.warmup_iter', -1), ('logger.print_freq', 1),
                  ('logger.save_checkpoint_freq', 1), ('val.val_freq', 1), ('manual_seed', 0))
BASICSR_DATASET_COUNTS = (('gt_size', 1), ('batch_size_per_gpu', 1), ('num_worker_per_gpu', 0),
                          ('dataset_enlarge_ratio', 1))


def check_basicsr_counts(opt):
    """The counts BasicSR reads (iterations, frequencies, sizes) are integers: ``total_iter: abc`` would fail only
    when the training loop starts, after the experiment folder was written."""
    for key, low in BASICSR_COUNTS:
        section, _, leaf = key.rpartition('.')
        block = opt.get(section) if section else opt
        if isinstance(block, dict) and block.get(leaf) is not None:
            check_int(block[leaf], key, low=low)
    for phase, ds in (opt.get('datasets') or {}).items():
        for leaf, low in BASICSR_DATASET_COUNTS:
            if isinstance(ds, dict) and ds.get(leaf) is not None:
                check_int(ds[leaf], f'datasets.{phase}.{leaf}', low=low)


def check_options(opt):
    """Check the keys of ours in a parsed BasicSR option dict; raise :class:`OptionError` on the first problem.

    A model class of ours (training) gets all its keys checked; any other model with one of our keys set is refused,
    since it would ignore the key.
    """
    check_basicsr_counts(opt)
    ours_top, ours_train, ours_path = plugin_keys('top'), plugin_keys('train'), plugin_keys('path')
    check_typos(opt, ours_top, BASICSR_TOP_KEYS, '', label='top-level key ')
    train_opt = opt.get('train') or {}
    if not isinstance(train_opt, dict):
        raise OptionError('train must be a mapping.')
    check_typos(train_opt, ours_train, BASICSR_TRAIN_KEYS, 'train.')
    path_opt = opt.get('path') or {}
    if not isinstance(path_opt, dict):
        raise OptionError('path must be a mapping.')
    check_typos(path_opt, ours_path, basicsr_path_keys(opt), 'path.')
    model_type = opt.get('model_type')
    plugin = _plugin_classes()
    uses_ours = any(k in train_opt for k in ours_train) or any(k in opt for k in ours_top)
    model_cls = registered_name(  # with our keys set, only this plugin's classes are worth suggesting
        MODEL_REGISTRY, model_type, 'model in BasicSR\'s MODEL_REGISTRY', 'model_type',
        candidates=list(plugin) if uses_ours else None,
        otherwise=f' Model classes of this plugin: {", ".join(plugin)} (docs/mclir.md, "Other model classes").')
    resolve = getattr(model_cls, 'resolve_model_class', None)
    if resolve is not None:
        model_cls = resolve(opt)
    check_no_hard_coded_cuda(model_cls, 'model_type')
    reads = getattr(model_cls, 'plugin_option_keys', {})
    unused = [f'train.{k}' for k in ours_train if k in train_opt and k not in reads.get('train', ())]
    unused += [k for k in ours_top if k in opt and k not in reads.get('top', ())]
    unused += [f'path.{k}' for k in ours_path if path_opt.get(k) is not None and k not in reads.get('path', ())]
    if unused:
        raise OptionError(f'{", ".join(unused)} set, but model_type {model_type} does not use it. '
                          + _where_to_go(model_cls, plugin))
    if hasattr(model_cls, 'check_eval_options'):  # the keys its test and validation read, in both modes
        model_cls.check_eval_options(opt)
    if opt.get('is_train', True):
        check_step = getattr(model_cls, 'check_step_options', None)  # the one training step's keys, every class
        if check_step is not None:
            check_step(train_opt)
        if hasattr(model_cls, 'check_options'):
            model_cls.check_options(opt, '')


def _plugin_classes():
    """``{name: class}`` of the registered model classes that declare keys of ours."""
    return {name: cls for name, cls in MODEL_REGISTRY if getattr(cls, 'plugin_option_keys', None)}


def _where_to_go(model_cls, plugin):
    """A next step that does not end in a refusal: a plugin class that can extend ``model_cls``, else one alone."""
    if getattr(model_cls, 'plugin_option_keys', None):
        return f'Remove it (the keys {model_cls.__name__} reads are in its docs page, docs/README.md).'
    for name, cls in plugin.items():
        refusal = getattr(cls, 'refuses_base', None)
        if refusal is not None and refusal(model_cls) is None:
            return (f'Use model_type: {name} with base_model_type: {model_cls.__name__} to keep that class\'s '
                    f'behaviour (docs/mclir.md, "Other model classes").')
    return (f'{model_cls.__name__} cannot be extended by this plugin; use one of its model classes instead: '
            f'{", ".join(plugin)} (docs/mclir.md, "Other model classes").')


def check_loss_options(block, path):
    """A registered loss ``type``; its ``check_options(args, path)`` when the class has one."""
    loss_cls = registered_name(LOSS_REGISTRY, block.get('type'), 'loss', f'{path}.type')
    check = getattr(loss_cls, 'check_options', None)
    if check is not None:
        check({k: v for k, v in block.items() if k != 'type'}, path)


def check_loss_blocks(train_opt, examples):
    """Each ``train.<key>`` present (``examples``: key -> an example type): a mapping with a registered type and
    arguments its class accepts."""
    for key, example in examples.items():
        block = train_opt.get(key)
        if block is None:
            continue
        if not isinstance(block, dict) or 'type' not in block:
            raise OptionError(f'train.{key} must be a mapping with a type, e.g. {{type: {example}}}.')
        check_loss_options(block, f'train.{key}')


def check_network_trait(opt, trait, model_type, needs):
    """``network_g``'s registered class must declare the class attribute ``trait`` (what ``model_type`` needs)."""
    net = opt.get('network_g') or {}
    cls = registered_name(ARCH_REGISTRY, net.get('type'), 'network in BasicSR\'s ARCH_REGISTRY', 'network_g.type')
    if not getattr(cls, trait, False):
        raise OptionError(f'model_type {model_type} trains {needs}; network_g.type {cls.__name__} is not one. Train '
                          f'it with SRModel or MCLIRModel.')
