"""One VGG pass of the restored image for both SPN and BasicSR's PerceptualLoss.

With ``perceptual_opt`` and ``spn_opt`` both set, each loss would run VGG on the network output with gradient:
the costliest part of an SPN step after the network itself. When the two extractors describe the same feature
space (same VGG type, input normalisation, pooling and weights), :func:`share_vgg_features` replaces them by one
extractor over the union of their layers, seen by each loss through a :class:`LayerView` that returns only its
own layers (in the network's order, so each loss sums exactly as before). Inside :meth:`SharedVGG.sharing`, a
second call with the same tensor object returns the features already computed; outside it, every call computes.
"""
import contextlib
import torch
from basicsr.archs.vgg_arch import VGGFeatureExtractor
from torch import nn


class SharedVGG(nn.Module):
    """A ``VGGFeatureExtractor`` whose results can be reused within a :meth:`sharing` block."""

    def __init__(self, extractor):
        super().__init__()
        self.extractor = extractor
        self._memo = None  # list of (input tensor, features) while sharing
        self.calls = 0  # extractor forwards actually run (tests and benchmarks read it)

    @contextlib.contextmanager
    def sharing(self):
        self._memo = []
        try:
            yield self
        finally:
            self._memo = None  # drop the features (and their graph) at the end of the step

    def forward(self, x):
        if self._memo is not None:
            for seen, feats in self._memo:
                if seen is x:
                    return feats
        self.calls += 1
        feats = self.extractor(x)
        if self._memo is not None:
            self._memo.append((x, feats))
        return feats


class LayerView(nn.Module):
    """The features of ``layers`` only, from a :class:`SharedVGG` (in the extractor's layer order)."""

    def __init__(self, shared, layers):
        super().__init__()
        self.shared = shared
        self.layers = frozenset(layers)

    def forward(self, x):
        return {k: v for k, v in self.shared(x).items() if k in self.layers}


def _prefix_equal(short, long):
    """``short``'s layers are the first layers of ``long``: same modules and equal tensors."""
    s_mods, l_mods = list(short.vgg_net.named_children()), list(long.vgg_net.named_children())
    if len(s_mods) > len(l_mods):
        return False
    for (sn, sm), (ln, lm) in zip(s_mods, l_mods):
        if sn != ln or repr(sm) != repr(lm):
            return False
        s_state, l_state = sm.state_dict(), lm.state_dict()
        if s_state.keys() != l_state.keys():
            return False
        if not all(torch.equal(v, l_state[k].to(v.device)) for k, v in s_state.items()):
            return False
    return True


def same_feature_space(a, b):
    """Whether two ``VGGFeatureExtractor`` compute the same features on their common layers."""
    if type(a) is not VGGFeatureExtractor or type(b) is not VGGFeatureExtractor:
        return False
    if (a.use_input_norm, a.range_norm, a.names) != (b.use_input_norm, b.range_norm, b.names):
        return False
    if a.use_input_norm and not (torch.equal(a.mean, b.mean.to(a.mean.device)) and
                                 torch.equal(a.std, b.std.to(a.std.device))):
        return False
    short, long = (a, b) if len(a.vgg_net) <= len(b.vgg_net) else (b, a)
    return _prefix_equal(short, long)


def share_vgg_features(*losses):
    """Make ``losses`` (modules with a ``.vgg`` VGGFeatureExtractor) share one extractor if they all describe
    the same feature space. Returns the :class:`SharedVGG`, or ``None`` (nothing changed) if they do not."""
    extractors = [getattr(loss, 'vgg', None) for loss in losses]
    if len(losses) < 2 or any(e is None for e in extractors):
        return None
    if not all(same_feature_space(extractors[0], e) for e in extractors[1:]):
        return None
    deepest = max(extractors, key=lambda e: len(e.vgg_net))
    layers = [list(e.layer_name_list) for e in extractors]
    union = set().union(*layers)
    deepest.layer_name_list = [n for n in deepest.names if n in union]
    shared = SharedVGG(deepest)
    for loss, own in zip(losses, layers):
        loss.vgg = LayerView(shared, own)
    return shared
