"""DegradationClassifier: the light head of DCPT (Hu et al., "Universal image restoration pre-training via
degradation classification", ICLR 2025) that predicts the degradation of an image from a restorer's features.

It reads the features that forward hooks collect from a restoration network (``DCPTModel``'s ``hook_names``),
highest resolution first. A running state starts at zero; for feature i::

    state = blocks_i(state + softmax(mixing_weights)[i] * feature_i)   # residual bottleneck blocks, width x2 inside
    state = relu(maxpool2(conv1x1_i(state)))                           # to the next feature's width, half the size

then more blocks, global average pooling and a linear layer give the logits. A feature whose spatial size differs
from the state's is resized to it (area interpolation), so features of one resolution (SwinIR's layers) also fit;
token features (N, L, C) with a square L are read as (N, C, sqrt L, sqrt L).

The DCPT authors' checkpoints (``PromptIR_NoImg_DC``, hoatong2411/dcpt at edd4c7ac, ``degrad_classify_arch.py``)
name the same tensors otherwise; they load as they are (renamed on load, :func:`authors_key_to_ours`).
"""
import math
import re
import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from ...archs.nafnet_arch import LayerNorm2d


class Bottleneck(nn.Module):
    """``x + (1x1 -> 3x3 -> 1x1 convs, channel LayerNorm after each, ReLU between)`` followed by ReLU."""

    def __init__(self, channels, inner):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, inner, 1, bias=False)
        self.norm1 = LayerNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, padding=1, bias=False)
        self.norm2 = LayerNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, channels, 1, bias=False)
        self.norm3 = LayerNorm2d(channels)
        for conv in (self.conv1, self.conv2, self.conv3):  # He init on fan-out, as detectron2's bottlenecks
            nn.init.kaiming_normal_(conv.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x):
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        return F.relu(x + self.norm3(self.conv3(y)))


# The DCPT authors' names -> ours, applied in order (their detectron2 convs hold each norm as ``conv<k>.norm``).
AUTHORS_PREFIXES = (('bottleneck_layers.', 'blocks.'), ('downsample_layers.', 'downs.'), ('last_stage.', 'last.'))
AUTHORS_NORM = re.compile(r'\.conv([123])\.norm\.')


def authors_key_to_ours(key):
    """Our name of a state-dict key of the DCPT authors' classifier (ours are returned unchanged)."""
    for theirs, ours in AUTHORS_PREFIXES:
        if key.startswith(theirs):
            key = ours + key[len(theirs):]
            break
    return AUTHORS_NORM.sub(r'.norm\1.', key)


def rename_authors_state(state, prefix=''):
    """Renames, in place, the DCPT authors' keys of ``state`` under ``prefix`` to ours (a load_state_dict
    pre-hook: their checkpoints then load strictly)."""
    for key in [k for k in state if k.startswith(prefix)]:
        ours = prefix + authors_key_to_ours(key[len(prefix):])
        if ours != key:
            state[ours] = state.pop(key)


def _blocks(channels, num):
    return nn.Sequential(*[Bottleneck(channels, channels * 2) for _ in range(num)])


def as_image_features(feature):
    """An NCHW view of a hooked feature: NCHW as is, square tokens (N, L, C) reshaped; else ValueError."""
    if feature.dim() == 4:
        return feature
    if feature.dim() == 3 and math.isqrt(feature.shape[1])**2 == feature.shape[1]:
        side = math.isqrt(feature.shape[1])
        return feature.transpose(1, 2).reshape(feature.shape[0], feature.shape[2], side, side)
    raise ValueError(f'a hooked feature of shape {tuple(feature.shape)} is neither NCHW nor square tokens (N, L, C).')


def feature_channels(feature):
    """Channels of a hooked feature as the classifier reads it."""
    return as_image_features(feature).shape[1]


@ARCH_REGISTRY.register()
class DegradationClassifier(nn.Module):
    """Degradation classifier on hooked restorer features (see the module docstring).

    Args:
        feature_dims (list[int]): Channels of the hooked features, highest resolution first (NAFNet width 64 with
            4 levels: [64, 128, 256, 512]).
        num_classes (int): Number of degradation classes (the training dataset's tasks). Default: 3.
        num_res_blocks (int): Bottleneck blocks per feature and at the end. Default: 2.

    Shapes:
        features (list of len(feature_dims) tensors) -> logits (N, num_classes).
    """

    def __init__(self, feature_dims, num_classes=3, num_res_blocks=2):
        super().__init__()
        if not feature_dims or any(not isinstance(d, int) or d < 1 for d in feature_dims):
            raise ValueError(f'feature_dims must be a non-empty list of positive ints, got {feature_dims!r}.')
        if isinstance(num_res_blocks, bool) or not isinstance(num_res_blocks, int) or num_res_blocks < 0:
            raise ValueError(f'num_res_blocks must be an integer >= 0, got {num_res_blocks!r}.')
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f'num_classes must be an integer >= 2, got {num_classes!r}.')
        self.feature_dims = list(feature_dims)
        self.blocks = nn.ModuleList(_blocks(d, num_res_blocks) for d in feature_dims)
        nxt = list(feature_dims[1:]) + [feature_dims[-1]]
        self.downs = nn.ModuleList(nn.Sequential(nn.Conv2d(d, n, 1, bias=False), nn.MaxPool2d(2, 2), nn.ReLU())
                                   for d, n in zip(feature_dims, nxt))
        self.last = _blocks(feature_dims[-1], num_res_blocks)
        self.mixing_weights = nn.Parameter(torch.ones(len(feature_dims)))
        self.fc = nn.Linear(feature_dims[-1], num_classes)
        self._register_load_state_dict_pre_hook(lambda state, prefix, *args: rename_authors_state(state, prefix))

    @staticmethod
    def checkpoint_key(key, net_opt):
        """Our name of a checkpoint key (the DCPT authors' names are renamed); for the checks before training."""
        return authors_key_to_ours(key)

    def resize(self, feature, index, size):
        """``feature`` (index ``index``) resized to the state's spatial ``size``: area interpolation."""
        return F.interpolate(feature, size=size, mode='area')

    def forward(self, features):
        if len(features) != len(self.feature_dims):
            raise ValueError(f'DegradationClassifier expects {len(self.feature_dims)} features (feature_dims '
                             f'{self.feature_dims}), got {len(features)}.')
        mix = torch.softmax(self.mixing_weights, dim=0)
        state = None
        for i, feature in enumerate(features):
            feature = as_image_features(feature)
            if state is None:
                state = mix[i] * feature
            else:
                if feature.shape[-2:] != state.shape[-2:]:
                    feature = self.resize(feature, i, state.shape[-2:])
                state = state + mix[i] * feature
            state = self.downs[i](self.blocks[i](state))
        return self.fc(self.last(state).mean(dim=(-2, -1)))


@ARCH_REGISTRY.register()
class PromptIR_NoImg_DC(DegradationClassifier):  # noqa: N801 - the DCPT authors' name, for their option files
    """The DCPT authors' name of :class:`DegradationClassifier`, with their ``downsample`` flag: features of one
    resolution (their SwinIR file's tokens) are resized as theirs, feature i by nearest neighbour with scale factor
    1 / 2**i (``downsample: false``: area interpolation, as :class:`DegradationClassifier`). Their forward is
    ``forward(lq, features)`` (``lq`` unused); ours is ``forward(features)``.

    Args:
        feature_dims (list[int]): As :class:`DegradationClassifier`.
        num_res_blocks (int): As :class:`DegradationClassifier`. Default: 2.
        num_classes (int): As :class:`DegradationClassifier`. Default: 3.
        downsample (bool): Their nearest resizing of same-resolution features. Default: False.
    """

    def __init__(self, feature_dims, num_res_blocks=2, num_classes=3, downsample=False):
        super().__init__(feature_dims, num_classes=num_classes, num_res_blocks=num_res_blocks)
        self.downsample = downsample

    def resize(self, feature, index, size):
        if not self.downsample:
            return super().resize(feature, index, size)
        return F.interpolate(feature, scale_factor=1 / 2**index, mode='nearest')  # theirs, whatever ``size`` is
