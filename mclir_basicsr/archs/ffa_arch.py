"""FFA-Net: Feature Fusion Attention Network for single image dehazing.

Qin et al., "FFA-Net: Feature Fusion Attention Network for Single Image
Dehazing", AAAI 2020.
"""
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


@ARCH_REGISTRY.register()
class FFANet(nn.Module):
    """FFA-Net, the dehazing network of Qin et al. (AAAI 2020).

    Shallow 3x3 conv -> `num_groups` group architectures -> feature attention
    fusion of the groups' outputs -> pixel attention -> two 3x3 convs, plus a
    global residual: out = x + post(fused).

    The fusion weights come from a channel attention over the concatenated
    group outputs (global pool -> 1x1 conv -> ReLU -> 1x1 conv to
    num_groups*C), followed by an element-wise sigmoid, as in the paper (not
    the softmax-over-groups variant). Each group output is scaled by its own
    per-channel weights and the results are summed. Convs keep PyTorch's
    default initialization.

    Args:
        num_in_ch (int): Channel number of inputs. Default: 3.
        num_out_ch (int): Channel number of outputs; must equal num_in_ch
            (global residual). Default: 3.
        num_feat (int): Channel number of intermediate features. Default: 64.
        num_groups (int): Number of group architectures. Default: 3.
        num_blocks (int): Number of basic blocks per group. Default: 19.
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_groups=3, num_blocks=19):
        super().__init__()
        if num_in_ch != num_out_ch:
            raise ValueError(f'FFANet adds the input to its output, so num_in_ch ({num_in_ch}) '
                             f'must equal num_out_ch ({num_out_ch}).')
        if num_groups < 1 or num_blocks < 0:
            raise ValueError(f'need num_groups >= 1 and num_blocks >= 0, got {num_groups} and {num_blocks}.')
        self.num_groups = num_groups
        self.num_feat = num_feat

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.groups = nn.ModuleList([FAGroup(num_feat, num_blocks) for _ in range(num_groups)])

        fused_ch = num_groups * num_feat
        hidden = _hidden(fused_ch, 8)
        self.fusion_attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(fused_ch, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, fused_ch, 1), nn.Sigmoid())
        self.pa = PixelAttention(num_feat)
        self.conv_post = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

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
