"""Checkpoint checks: ``path.resume_state`` and ``path.pretrain_network_<x>`` (readable, and fitting the network)."""
import basicsr.archs  # noqa: F401  (fills ARCH_REGISTRY)
import copy
import os.path as osp
import torch
import warnings
from basicsr.utils.registry import ARCH_REGISTRY

from ...methods.constyle.constyle_authors_keys import authors_shape, rename_authors_state
from ...methods.constyle.prompted_restorer import PROMPTER_PREFIX
from ...training.experiment_files import resume_network_files, saved_state_iters
from ...utils import few, strip_wrapper_prefixes
from ..options import OptionError, registered_name
from .files import load_checked, where


def _will_resume(opt):
    """True if BasicSR will resume (and so replace ``pretrain_network_*`` by the experiment's own files)."""
    path_opt = opt.get('path') or {}
    if path_opt.get('resume_state'):
        return True
    return bool(opt.get('auto_resume') and saved_state_iters(path_opt.get('training_states')))


def check_resume_state(opt):
    """An explicit ``path.resume_state`` (without ``--auto_resume``) must be a readable training state whose
    network files exist."""
    path_opt = opt.get('path') or {}
    path = path_opt.get('resume_state')
    if not path or opt.get('auto_resume'):
        return
    if not isinstance(path, str):
        raise OptionError(f'path.resume_state must be a file path or ~, got {path!r}.')
    if not osp.isfile(path):
        raise OptionError(f'path.resume_state points to {path}, which does not exist{where(path)}. Fix the path, '
                          f'or remove the key (or use --auto_resume) to pick the latest state.')
    state = load_checked(path, 'path.resume_state')
    if not isinstance(state, dict) or 'iter' not in state:
        raise OptionError(f'path.resume_state: {path} is not a BasicSR training state (no "iter" entry); give an '
                          f'experiments/<name>/training_states/<iter>.state file.')
    if path_opt.get('models') is None:  # BasicSR sets it; an option dict built by hand may not
        return
    for net_file in resume_network_files(opt, state['iter']):
        if not osp.isfile(net_file):
            raise OptionError(f'path.resume_state: {path} is iteration {state["iter"]}, but {net_file} (network '
                              f'weights BasicSR loads with it) does not exist. Resume from a state whose network '
                              f'files were saved, or use --auto_resume to pick the latest complete one.')


def _network_shapes(net_opt, net_key):
    """``{name: shape}`` of the network ``net_opt`` would build, without touching the global RNG.

    Built on the meta device when the architecture allows it (no memory, no initialisation cost), else on CPU.
    """
    if not isinstance(net_opt, dict):
        raise OptionError(f'{net_key} must be a mapping with a type, got {net_opt!r}.')
    cls = registered_name(ARCH_REGISTRY, net_opt.get('type'), 'architecture', f'{net_key}.type')
    errors = []
    for device in ('meta', 'cpu'):
        with torch.random.fork_rng(devices=[]):
            try:
                # not basicsr.archs.build_network: its log call would set up BasicSR's root logger before the
                # train pipeline does, and the log file would never be written
                args = copy.deepcopy(net_opt)
                args.pop('type')
                with torch.device(device):
                    net = cls(**args)
                return {k: tuple(v.shape) for k, v in net.state_dict().items()}
            except Exception as err:  # noqa: BLE001 - retry on CPU; report the CPU error
                errors.append(err)
    raise OptionError(f'{net_key}: cannot build network type {net_opt["type"]}: {errors[-1]}. Fix its arguments.')


def _file_shapes(path, key, suffix, param_key):
    """``{name: shape}`` of the tensors BasicSR's ``load_network`` takes from ``path`` (wrapper prefixes removed)."""
    ckpt = load_checked(path, key)
    if not isinstance(ckpt, dict):
        raise OptionError(f'{key}: {path} holds a {type(ckpt).__name__}, not a state dict.')
    if param_key is not None:
        if param_key not in ckpt and 'params' in ckpt:
            param_key = 'params'  # BasicSR's load_network falls back to 'params'
        if param_key not in ckpt:
            bare = all(hasattr(v, 'shape') for v in ckpt.values())
            raise OptionError(f'{key}: {path} has no {param_key!r} entry (path.param_key_{suffix}); its top-level '
                              f'keys are {few(str(k) for k in ckpt)}. ' +
                              (f'It looks like a bare state dict: set path.param_key_{suffix}: ~.' if bare else
                               f'Set path.param_key_{suffix} to the entry that holds the network weights.'))
        ckpt = ckpt[param_key]
    if not isinstance(ckpt, dict):
        raise OptionError(f'{key}: entry {param_key!r} of {path} is not a state dict.')
    return {strip_wrapper_prefixes(k): tuple(v.shape) for k, v in ckpt.items() if hasattr(v, 'shape')}


def _check_fit(key, path, net_key, net_type, suffix, strict, loaded, want):
    """Refuse a file that does not fit the network (every tensor with ``strict``, at least one without)."""
    missing = sorted(set(want) - set(loaded))
    unexpected = sorted(set(loaded) - set(want))
    shape_diff = sorted(k for k in set(want) & set(loaded) if want[k] != loaded[k])
    fits = len(set(want) & set(loaded)) - len(shape_diff)
    if strict and (missing or unexpected or shape_diff):
        parts = []
        if shape_diff:
            parts.append(f'{len(shape_diff)} tensor(s) of another shape ' +
                         few(f'{k}: file {list(loaded[k])} vs network {list(want[k])}' for k in shape_diff))
        if missing:
            parts.append(f'{len(missing)} key(s) of the network missing from the file {few(missing)}')
        if unexpected:
            parts.append(f'{len(unexpected)} key(s) in the file that the network lacks {few(unexpected)}')
        raise OptionError(f'{key}: {path} does not fit {net_key} (type {net_type}): ' + '; '.join(parts) +
                          f'. It was probably saved from another architecture or configuration: fix {net_key} to '
                          f'match it, or set path.strict_load_{suffix}: false to load only the tensors that fit.')
    if not strict and fits == 0:
        raise OptionError(f'{key}: no tensor of {path} fits {net_key} (type {net_type}), so nothing would be loaded '
                          f'(path.strict_load_{suffix} is false). It was saved from another architecture: fix '
                          f'{net_key} or the path.')
    if not strict and fits < len(want) / 2:
        warnings.warn(f'{key}: only {fits} of the {len(want)} tensors of {net_key} (type {net_type}) fit {path}; '
                      f'with path.strict_load_{suffix}: false BasicSR loads those and leaves the rest as '
                      f'initialised. Check that the file was saved from this architecture.')


def check_pretrained(opt):
    """Every ``path.pretrain_network_<x>`` exists, loads, and fits ``network_<x>`` (skipped when resuming: BasicSR
    then loads the experiment's own network files instead)."""
    if _will_resume(opt):
        return
    path_opt = opt.get('path') or {}
    for pkey, path in path_opt.items():
        if not pkey.startswith('pretrain_network_') or path is None:
            continue
        suffix = pkey[len('pretrain_network_'):]
        key, net_key = f'path.{pkey}', f'network_{suffix}'
        if not isinstance(path, str):
            raise OptionError(f'{key} must be a file path or ~, got {path!r}.')
        if not osp.isfile(path):
            todo = f'set {key}: ~ to train from scratch' if opt.get('is_train', True) else 'train the model first'
            raise OptionError(f'{key}: {path} does not exist{where(path)}. Fix the path, or {todo}.')
        if net_key not in opt:
            continue
        loaded = _file_shapes(path, key, suffix, path_opt.get(f'param_key_{suffix}', 'params'))
        net_type = opt[net_key].get('type') if isinstance(opt[net_key], dict) else None
        arch = ARCH_REGISTRY.get(net_type) if net_type in ARCH_REGISTRY else None
        rename = getattr(arch, 'checkpoint_key', None)
        if rename is not None:  # a network that loads another project's names (DSRIR's, ConStyle's authors')
            reshape = getattr(arch, 'checkpoint_shape', lambda key, shape: shape)
            loaded = {rename(k, opt[net_key]): reshape(k, v) for k, v in loaded.items()}
        want = _network_shapes(opt[net_key], net_key)
        _check_fit(key, path, net_key, opt[net_key]['type'], suffix, path_opt.get(f'strict_load_{suffix}', True),
                   loaded, want)


def check_pretrained_prompter(opt):
    """``path.pretrain_constyle`` (IRConStyleModel): exists, loads, and holds prompter weights under
    ``path.param_key_constyle`` (default ``params_ema``)."""
    path_opt = opt.get('path') or {}
    path = path_opt.get('pretrain_constyle')
    if path is None or _will_resume(opt):
        return
    key = 'path.pretrain_constyle'
    if not isinstance(path, str) or not osp.isfile(path):
        raise OptionError(f'{key}: {path} does not exist{where(str(path))}. Give a ConStyleModel checkpoint '
                          f'(experiments/<name>/models/net_g_<iter>.pth).')
    loaded = _file_shapes(path, key, 'constyle', path_opt.get('param_key_constyle', 'params_ema'))
    rename_authors_state(loaded, convert=authors_shape)  # the authors' files load as they are
    if not any(k.startswith(PROMPTER_PREFIX) for k in loaded):
        raise OptionError(f'{key}: {path} holds no {PROMPTER_PREFIX}* weights; it must be the checkpoint of a network '
                          f'with a ConStyle prompter (ConStyleModel\'s net_g_<iter>.pth).')
