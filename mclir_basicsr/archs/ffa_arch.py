"""FFA-Net: Feature Fusion Attention Network for single image dehazing.

Qin et al., "FFA-Net: Feature Fusion Attention Network for Single Image
Dehazing", AAAI 2020. Reference code: zhilin007/FFA-Net, net/models/FFA.py (class FFA).
"""
import re
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn as nn
from torch.nn import functional as F


def _hidden(num_ch, reduction):
    """Width of an attention bottleneck, at least one channel."""
    return max(num_ch // reduction, 1)


class ChannelAttention(nn.Module):
    """Channel attention: global average pool -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid, then multiply.

    Args:
        num_feat (int): Channel number C of the input.
        reduction (int): Bottleneck ratio, C -> C/reduction -> C. Default: 8.
    """

    def __init__(self, num_feat, reduction=8):
        super().__init__()
        hidden = _hidden(num_feat, reduction)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(num_feat, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, num_feat, 1), nn.Sigmoid())

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W), scaled by per-channel weights (N, C, 1, 1)."""
        return x * self.attention(x)


class PixelAttention(nn.Module):
    """Pixel attention: 1x1 conv -> ReLU -> 1x1 conv to one map -> sigmoid, then multiply.

    Args:
        num_feat (int): Channel number C of the input.
        reduction (int): Bottleneck ratio, C -> C/reduction -> 1. Default: 8.
    """

    def __init__(self, num_feat, reduction=8):
        super().__init__()
        hidden = _hidden(num_feat, reduction)
        self.attention = nn.Sequential(
            nn.Conv2d(num_feat, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1), nn.Sigmoid())

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W), scaled by a per-pixel map (N, 1, H, W)."""
        return x * self.attention(x)


class FABlock(nn.Module):
    """Basic block: conv -> ReLU -> (+x) -> conv -> channel attention -> pixel attention -> (+x).

    Args:
        num_feat (int): Channel number of intermediate features.
    """

    def __init__(self, num_feat):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.ca = ChannelAttention(num_feat)
        self.pa = PixelAttention(num_feat)

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W)."""
        out = F.relu(self.conv1(x)) + x
        out = self.pa(self.ca(self.conv2(out)))
        return out + x


class FAGroup(nn.Module):
    """Group architecture: `num_blocks` basic blocks and a 3x3 conv, with a long residual.

    Args:
        num_feat (int): Channel number of intermediate features.
        num_blocks (int): Number of basic blocks.
    """

    def __init__(self, num_feat, num_blocks):
        super().__init__()
        self.body = nn.Sequential(*[FABlock(num_feat) for _ in range(num_blocks)],
                                  nn.Conv2d(num_feat, num_feat, 3, 1, 1))

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W)."""
        return self.body(x) + x


# Reference FFA-Net module paths (regex, full match) -> ours; the reference's attention Sequentials are
# CALayer.ca (pool outside it, so index + 1 here), PALayer.pa and FFA.ca (pool inside, same index).
_REFERENCE_PATHS = ((r'pre\.0', 'conv_first'), (r'post\.0', 'conv_post'), (r'post\.1', 'conv_last'),
                    (r'ca\.(\d+)', r'fusion_attention.\1'), (r'palayer\.pa\.(\d+)', r'pa.attention.\1'))
_REFERENCE_BLOCK_PATHS = ((r'conv[12]', r'\g<0>'), (r'palayer\.pa\.(\d+)', r'pa.attention.\1'))


def _key_from_reference(key):
    """Our name for a reference FFA state-dict key (a leading 'module.' dropped), or None if not one."""
    key = key[len('module.'):] if key.startswith('module.') else key
    path, _, leaf = key.rpartition('.')
    if leaf not in ('weight', 'bias'):
        return None
    m = re.fullmatch(r'g([1-9]\d*)\.gp\.(\d+)(?:\.(.+))?', path)
    if m:
        group = f'groups.{int(m[1]) - 1}.body.{m[2]}'
        if m[3] is None:  # the group's last conv
            return f'{group}.{leaf}'
        ca = re.fullmatch(r'calayer\.ca\.(\d+)', m[3])
        if ca:
            return f'{group}.ca.attention.{int(ca[1]) + 1}.{leaf}'
        paths, path = _REFERENCE_BLOCK_PATHS, m[3]
    else:
        group, paths = None, _REFERENCE_PATHS
    for pattern, ours in paths:
        hit = re.fullmatch(pattern, path)
        if hit:
            return f'{group}.{hit.expand(ours)}.{leaf}' if group else f'{hit.expand(ours)}.{leaf}'
    return None


def _pick(ours_name, ours, ref_name, ref, default):
    """The value given under one of two spellings of an argument; both given is an error."""
    if ours is not None and ref is not None:
        raise TypeError(f'FFANet got both {ours_name}={ours} and {ref_name}={ref}; they are the same argument '
                        f'({ref_name} is the reference FFA-Net spelling), give one.')
    return ours if ours is not None else (ref if ref is not None else default)


@ARCH_REGISTRY.register()
class FFANet(nn.Module):
    """FFA-Net, the dehazing network of Qin et al. (AAAI 2020).

    Shallow 3x3 conv -> `num_groups` group architectures -> feature attention
    fusion of the groups' outputs -> pixel attention -> two 3x3 convs, plus a
    global residual: out = x + post(fused). All convs zero-pad to keep H x W.

    The fusion weights come from a channel attention over the concatenated
    group outputs (global pool -> 1x1 conv -> ReLU -> 1x1 conv to
    num_groups*C), followed by an element-wise sigmoid, as in the paper (not
    the softmax-over-groups variant). Each group output is scaled by its own
    per-channel weights and the results are summed. Convs keep PyTorch's
    default initialization.

    Reference compatibility (zhilin007/FFA-Net `FFA(gps, blocks)`, also the
    MCLIR authors' `network_g: {type: FFANet, gps: 3, blocks: 19}`):
    `gps`/`blocks` are accepted for `num_groups`/`num_blocks`. The only
    structural difference is the fusion bottleneck: ours is num_groups*C/8
    (24 for the paper size), the reference's is C/16 (4). With `gps` or
    `blocks` given the reference width is used, so `FFANet(gps=3, blocks=19)`
    is the reference network (4,455,913 parameters; ours 4,463,613).
    The reference hard-codes 3 -> 3 channels, C = 64 and gps == 3; here those
    stay configurable (group i is the reference's `g{i+1}`).
    Same forward otherwise (same block, group, fusion order and global
    residual). The reference's data pipeline feeds the net a normalised hazy
    image (mean 0.64/0.6/0.58, std 0.14/0.15/0.152) and adds that normalised
    input back; this net does no normalisation, so feed the authors'
    weights a normalised input to reproduce their results.

    `state_dict()` uses this class's names (conv_first, groups.i.body, ...),
    so existing checkpoints and code using these attributes are unaffected.
    `load_state_dict` also takes the reference layout (pre.0, g1.gp.0.conv1,
    calayer/palayer, ca, post.0/1; an optional leading 'module.' from the
    reference's DataParallel checkpoints is dropped): a pre-hook renames it.
    The published .pk files hold the weights under 'model' (BasicSR:
    `param_key_g: model`).

    Args:
        num_in_ch (int): Channel number of inputs. Default: 3.
        num_out_ch (int): Channel number of outputs; must equal num_in_ch
            (global residual). Default: 3.
        num_feat (int): Channel number of intermediate features. Default: 64.
        num_groups (int): Number of group architectures. Default: 3.
        num_blocks (int): Number of basic blocks per group. Default: 19.
        gps (int): Reference name of num_groups; selects the reference fusion width.
        blocks (int): Reference name of num_blocks; selects the reference fusion width.
        fusion_hidden (int | None): Bottleneck width of the fusion attention. Default: None,
            i.e. max(num_groups*num_feat//8, 1), or max(num_feat//16, 1) if gps/blocks is given.
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_groups=None, num_blocks=None, gps=None,
                 blocks=None, fusion_hidden=None):
        super().__init__()
        if num_in_ch != num_out_ch:
            raise ValueError(f'FFANet adds the input to its output, so num_in_ch ({num_in_ch}) '
                             f'must equal num_out_ch ({num_out_ch}).')
        reference = gps is not None or blocks is not None
        num_groups = _pick('num_groups', num_groups, 'gps', gps, 3)
        num_blocks = _pick('num_blocks', num_blocks, 'blocks', blocks, 19)
        if num_groups < 1 or num_blocks < 0:
            raise ValueError(f'need num_groups >= 1 and num_blocks >= 0, got {num_groups} and {num_blocks}.')
        self.num_groups = num_groups
        self.num_feat = num_feat

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.groups = nn.ModuleList([FAGroup(num_feat, num_blocks) for _ in range(num_groups)])

        fused_ch = num_groups * num_feat
        if fusion_hidden is None:
            fusion_hidden = _hidden(num_feat, 16) if reference else _hidden(fused_ch, 8)
        self.fusion_attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(fused_ch, fusion_hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(fusion_hidden, fused_ch, 1), nn.Sigmoid())
        self.pa = PixelAttention(num_feat)
        self.conv_post = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self._register_load_state_dict_pre_hook(self._rename_reference_keys)

    @staticmethod
    def _rename_reference_keys(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                               error_msgs):
        """Load pre-hook: renames reference FFA-Net keys under `prefix` to ours, in place."""
        for key in [k for k in state_dict if k.startswith(prefix)]:
            ours = _key_from_reference(key[len(prefix):])
            if ours is None:
                continue
            if prefix + ours in state_dict:
                error_msgs.append(f'reference key "{key}" and our key "{prefix + ours}" both given.')
                continue
            state_dict[prefix + ours] = state_dict.pop(key)

    def forward(self, x):
        """x: (N, num_in_ch, H, W) -> (N, num_out_ch, H, W), any H and W."""
        feat = self.conv_first(x)
        group_outs = []
        for group in self.groups:
            feat = group(feat)
            group_outs.append(feat)
        stacked = torch.stack(group_outs, dim=1)  # (N, G, C, H, W)
        n, g, c, h, w = stacked.shape
        weights = self.fusion_attention(stacked.view(n, g * c, h, w)).view(n, g, c, 1, 1)
        fused = (weights * stacked).sum(dim=1)  # (N, C, H, W)
        fused = self.pa(fused)
        return x + self.conv_last(self.conv_post(fused))
