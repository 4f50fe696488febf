"""Network weights for restoring: read a checkpoint without running code from it, find its state dict, fit it.

Reading: always torch's weights-only loader. A file that holds more than tensors and plain containers (a Lightning
checkpoint's hyper-parameters, an optimizer object, NumPy scalars) is read by the same loader with each foreign
class allowed under its name as an inert placeholder (:class:`Skipped`): its constructor and state are discarded,
nothing of the file's code is imported or called, and the tensors come out. A file the loader cannot read is refused.

Formats, told apart by their keys (first match):

=====================================  ======================================================================
``params_ema`` / ``params``            BasicSR's and ours (``net_g_*.pth``), NAFNet's, DCPT's, IRConStyle's
``state_dict``                         DSRIR's training file, a Lightning checkpoint (PromptIR: keys ``net.*``)
``model``                              FFA-Net's (keys ``module.*``)
a mapping of tensors                   a bare ``state_dict()`` (e.g. ConStyle's released restorer with its prompter)
=====================================  ======================================================================

Key prefixes of wrappers (``module.``, ``_orig_mod.``) and of a Lightning module holding the network (``net.``) are
dropped when that makes the keys fit. Authors' key names are renamed by the networks themselves (their
``load_state_dict`` hooks: ConStyle, DSRIR, FFA-Net, DCPT), so they load as they are.
"""
import pickle
import torch

from ..utils import few, strip_wrapper_prefixes

PARAM_KEYS = ('params_ema', 'params', 'state_dict', 'model', 'net', 'network', 'generator')
OWNER_PREFIXES = ('net.', 'model.', 'network.', 'generator.')  # a Lightning (or similar) module's attribute


class WeightsError(Exception):
    """The weights cannot be used: the message names the file and what to do."""


class Skipped:
    """What a foreign class in a checkpoint becomes: constructed and filled with nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def read_checkpoint(path):
    """The checkpoint at ``path`` read by torch's weights-only loader (module doc); raises :class:`WeightsError`."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        pass  # it holds more than tensors: read it again with its foreign classes inert
    except Exception as err:  # noqa: BLE001 - not a torch file, truncated, ...: one line
        raise WeightsError(f'cannot read {path} as a PyTorch checkpoint: {_first_line(err)}.') from None
    foreign = []
    try:
        foreign = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        with torch.serialization.safe_globals([(Skipped, name) for name in foreign]):
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # noqa: BLE001 - e.g. a global of a module torch never allows (os, subprocess, ...)
        raise WeightsError(f'cannot read {path} with torch\'s weights-only loader: it holds objects that loader '
                           f'refuses to build ({few(foreign, 3)}). Load it in its own project, save its state dict '
                           f'alone (torch.save(net.state_dict(), ...)) and pass that file.') from None


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _is_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(torch.is_tensor(v) for v in obj.values())


def candidate_state_dicts(checkpoint, param_key=None):
    """``[(where, state dict)]`` in the order they are tried: ``param_key`` if given, else the known keys (module
    doc), else the checkpoint itself when it is a mapping of tensors."""
    if param_key:
        found = checkpoint.get(param_key) if isinstance(checkpoint, dict) else None
        if not _is_state_dict(found):
            keys = list(checkpoint) if isinstance(checkpoint, dict) else []
            raise WeightsError(f'the checkpoint has no state dict under "{param_key}" (its keys: {few(keys)}).')
        return [(param_key, found)]
    found = [(key, checkpoint[key]) for key in PARAM_KEYS if isinstance(checkpoint, dict)
             and _is_state_dict(checkpoint.get(key))]
    if _is_state_dict(checkpoint):
        found.append(('the file itself', checkpoint))
    if not found:
        keys = list(checkpoint) if isinstance(checkpoint, dict) else [type(checkpoint).__name__]
        raise WeightsError(f'no state dict found in the checkpoint (looked under {", ".join(PARAM_KEYS)} and at the '
                           f'top level; it holds {few(keys)}).')
    return found


def _key_variants(state):
    """The state dict as saved, without wrapper prefixes, and without an owner module's prefix."""
    bare = {strip_wrapper_prefixes(k): v for k, v in state.items()}
    variants = [state, bare]
    for prefix in OWNER_PREFIXES:
        owned = {k[len(prefix):]: v for k, v in bare.items() if k.startswith(prefix)}
        if owned:
            variants.append(owned)
    return variants


def _misfit(net, state):
    """(missing, unexpected, wrong shapes) of loading ``state`` into ``net`` (restored afterwards)."""
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        result = net.load_state_dict(state, strict=False)
        return list(result.missing_keys), list(result.unexpected_keys), []
    except RuntimeError as err:
        return [], [], [line.strip() for line in str(err).splitlines() if 'size mismatch' in line]
    finally:
        net.load_state_dict(saved)


def load_weights(net, path, param_key=None):
    """Load the checkpoint at ``path`` into ``net`` (strictly). Returns a short description of what was loaded.

    Raises :class:`WeightsError` naming the first missing and unexpected keys of the closest candidate."""
    checkpoint = read_checkpoint(path)
    best = None
    for where, state in candidate_state_dicts(checkpoint, param_key):
        for variant in _key_variants(state):
            missing, unexpected, shapes = _misfit(net, variant)
            score = len(missing) + len(unexpected) + len(shapes)
            if best is None or score < best[0]:
                best = (score, where, variant, missing, unexpected, shapes)
            if score == 0:
                net.load_state_dict(variant, strict=True)
                return f'{path} ({where}, {len(variant)} tensors)'
    _, where, _, missing, unexpected, shapes = best
    parts = [f'{len(missing)} missing, first {few(missing, 3)}' if missing else '',
             f'{len(unexpected)} unexpected, first {few(unexpected, 3)}' if unexpected else '',
             f'shapes differ: {shapes[0]}' if shapes else '']
    raise WeightsError(f'the weights in {path} ({where}) do not fit {type(net).__name__}: '
                       f'{"; ".join(p for p in parts if p)}. Check the network type and its arguments '
                       f'(--network-args, or network_g of the option file).')
