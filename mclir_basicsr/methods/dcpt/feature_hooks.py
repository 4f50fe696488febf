"""Features of a restoration network's inner modules, collected with forward hooks (DCPT, the degradation probe).

``hook_names`` lists module names of the bare network (no ``module.``/``_orig_mod.`` prefix). A name that is an
``nn.ModuleList`` (never called itself) stands for its children: NAFNet's ``decoders`` is ``decoders.0`` ...
``decoders.3``. A module returning a tuple gives its last element. Features come out in the reverse of the order the
modules ran, so a U-Net's decoder features come highest resolution first, as DCPT's classifier reads them.
"""
import contextlib
import torch
import torch.nn as nn

from ...checks.options import OptionError
from ...utils import bare_module
from .degradation_classifier_arch import as_image_features

CANDIDATE_DEPTH = 2  # module names listed in errors: up to 'a.b'


def as_name_list(hook_names, key='hook_names'):
    """``hook_names`` as a list of strings (one string allowed)."""
    names = [hook_names] if isinstance(hook_names, str) else hook_names
    if not isinstance(names, list) or not names or any(not isinstance(n, str) or not n for n in names):
        raise OptionError(f'{key} must be a module name of network_g or a non-empty list of them (e.g. decoders for '
                          f'NAFNet, [decoder_level3, decoder_level2, decoder_level1] for PromptIR), got '
                          f'{hook_names!r}.')
    return names


def hooked_modules(net, hook_names, key='hook_names', sample=None):
    """``[(name, module)]`` that ``hook_names`` selects in the bare ``net``; an unknown name raises OptionError
    listing the candidates (with channel counts when ``sample``, an input batch, is given)."""
    modules = dict(bare_module(net).named_modules())
    found = []
    for name in as_name_list(hook_names, key):
        module = modules.get(name)
        if module is None:
            raise OptionError(f'{key}: {name!r} is no module of network_g. Candidates (name: output of a forward '
                              f'pass):\n' + describe_candidates(net, sample))
        if isinstance(module, nn.ModuleList):
            found += [(f'{name}.{child}', m) for child, m in module.named_children()]
        else:
            found.append((name, module))
    return found


class _AllCollected(Exception):
    """Raised by the last hook of a :meth:`FeatureHooks.capture` that stops the forward pass there."""


class FeatureHooks:
    """Forward hooks on the modules ``hook_names`` selects; features are kept only inside :meth:`capture`."""

    def __init__(self, net, hook_names, key='hook_names', sample=None):
        self.modules = hooked_modules(net, hook_names, key, sample)
        self.names = [name for name, _ in self.modules]
        self._features = None
        self._stop = False
        self._handles = [m.register_forward_hook(self._keep) for _, m in self.modules]

    def _keep(self, module, inputs, output):
        if self._features is not None:
            self._features.append(output[-1] if isinstance(output, (tuple, list)) else output)
            if self._stop and len(self._features) == len(self.modules):
                raise _AllCollected

    @contextlib.contextmanager
    def capture(self, features_only=False):
        """``with hooks.capture() as features: net(x)``: ``features`` (a list) holds the hooked outputs, last
        module first, once the block ends.

        ``features_only``: the forward pass ends at the last hooked module (what follows, e.g. a U-Net's last
        conv, is not computed; ``net(x)`` returns nothing). Only for a bare network: a DDP wrapper must finish its
        forward to prepare the gradient all-reduce (see :func:`can_stop_early`).
        """
        self._features = features = []
        self._stop = features_only
        try:
            yield features
        except _AllCollected:
            pass
        finally:
            self._features = None
            self._stop = False
            features.reverse()

    def remove(self):
        for handle in self._handles:
            handle.remove()
        self._handles = []


def can_stop_early(net):
    """True if a forward pass of ``net`` may end inside (``capture(features_only=True)``): a bare network, not a DDP
    or ``torch.compile`` wrapper."""
    return bare_module(net) is net


def _probe_outputs(net, sample, depth=CANDIDATE_DEPTH):
    """``{name: output}`` of every module up to ``depth`` dots deep for one forward pass of ``sample``."""
    outputs, handles = {}, []
    for name, module in bare_module(net).named_modules():
        if name and name.count('.') < depth and not isinstance(module, nn.ModuleList):
            handles.append(module.register_forward_hook(
                lambda m, i, o, name=name: outputs.setdefault(name, o[-1] if isinstance(o, (tuple, list)) else o)))
    try:
        with torch.no_grad():
            net(sample)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def _shape_text(output):
    if not torch.is_tensor(output):
        return type(output).__name__
    try:
        image = as_image_features(output)
        return f'{image.shape[1]} channels, {image.shape[-2]}x{image.shape[-1]}'
    except ValueError:
        return f'shape {tuple(output.shape)}'


def describe_candidates(net, sample=None):
    """One line per module of ``net`` up to 2 levels deep: its name and, with an input ``sample``, the channels and
    size of its output (``-`` for modules the pass does not call)."""
    names = [n for n, m in bare_module(net).named_modules() if n and n.count('.') < CANDIDATE_DEPTH]
    outputs = _probe_outputs(net, sample) if sample is not None else {}
    lines = [f'  {n}: {_shape_text(outputs[n]) if n in outputs else "-"}' for n in names]
    return '\n'.join(lines) if lines else '  (network_g has no submodules)'
