"""The blocks of MAXIM (Tu et al., "MAXIM: Multi-Axis MLP for Image Processing", CVPR 2022), as the IRConStyle
authors' PyTorch port names them, for :mod:`.maxim_arch` and ``ConStyleMaxim``.

Module and parameter names (``Conv_0``, ``SplitHeadMultiAxisGmlpLayer_0``, ``LayerNorm_x``, ...) and their
registration order are the port's, so its state dicts load strictly and list the same keys in the same order. The
gMLP parts work on channels-last ``(n, h, w, c)`` tensors; the blocks take and return ``(n, c, h, w)``.

Multi-axis mixing: the image is cut into non-overlapping patches. *Block* mixing mixes the tokens inside each
``block_size`` patch (local); *grid* mixing cuts the image into ``grid_size`` patches of ``h / gh x w / gw`` pixels
and mixes the tokens at the same position of every patch (global, dilated). Both need the size divisible by the
patch layout at every level, hence the padding of the networks (:func:`size_multiple`, :func:`pad_to_multiple`).
"""
import math
import torch
import torch.nn.functional as F
from torch import nn


def size_multiple(level_patches, minimum=8):
    """The (h, w) multiples every level accepts. ``level_patches``: ``(level, block_size, grid_size)``, a level
    running at ``1 / 2**level`` scale; ``minimum``: what the downsamplings need."""
    return tuple(math.lcm(minimum, *(2**level * size[axis] for level, block, grid in level_patches
                                     for size in (block, grid))) for axis in (0, 1))


def nearest_downsample(x, factor):
    """``x`` at ``1 / factor`` scale, keeping the pixel nearest each output centre (``floor((k + 0.5) * factor)``,
    the authors' indexing; torch's nearest mode would keep ``k * factor``)."""
    return x[..., factor // 2::factor, factor // 2::factor]


def resize(x, ratio):
    """Bilinear resize by ``ratio`` with antialiasing (the authors' choice, also when shrinking by 4)."""
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(int(h * ratio), int(w * ratio)), mode='bilinear', antialias=True)


class LastDimLayerNorm(nn.Module):
    """Layer norm over the last (channel) axis, eps 1e-6; parameters named ``beta``, ``gamma`` as the port's."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(channels))
        self.gamma = nn.Parameter(torch.ones(channels))
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta, self.eps)


def _to_patches(x, patch):
    """(n, h, w, c) -> (n, patches, pixels per patch, c), both in row-major order."""
    n, h, w, c = x.shape
    ph, pw = patch
    x = x.reshape(n, h // ph, ph, w // pw, pw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (h // ph) * (w // pw), ph * pw, c)


def _from_patches(x, size, patch):
    n, _, _, c = x.shape
    (h, w), (ph, pw) = size, patch
    x = x.reshape(n, h // ph, w // pw, ph, pw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h, w, c)


def mix_tokens(x, dense, layout, grid):
    """Apply ``dense`` across tokens of ``x`` (n, h, w, c). ``grid``: ``layout`` = (gh, gw) patches, mix the same
    position of every patch; else ``layout`` = the patch size, mix the pixels inside each patch."""
    size = x.shape[1:3]
    patch = (size[0] // layout[0], size[1] // layout[1]) if grid else tuple(layout)
    axis = 1 if grid else 2
    tokens = _to_patches(x, patch).transpose(axis, -1)
    return _from_patches(dense(tokens).transpose(axis, -1), size, patch)


class SpatialGatingUnit(nn.Module):
    """gMLP's gating: split the channels into ``u, v``; ``u * (1 + mix(norm(v)))`` (block or grid mixing).

    Args:
        channels (int): input channels (the output has half).
        layout (tuple): block size, or grid size if ``grid``.
        grid (bool): grid (global) instead of block (local) mixing.
    """

    def __init__(self, channels, layout, grid):
        super().__init__()
        tokens = layout[0] * layout[1]  # the mixing dense layer always has a bias: the port never passes use_bias
        self.layout, self.grid = tuple(layout), grid
        if grid:  # the port registers these two in opposite orders in its two gating units
            self.intermediate_layernorm = LastDimLayerNorm(channels // 2)
            self.Dense_0 = nn.Linear(tokens, tokens)
        else:
            self.Dense_0 = nn.Linear(tokens, tokens)
            self.intermediate_layernorm = LastDimLayerNorm(channels // 2)

    def forward(self, x):
        u, v = x.chunk(2, dim=-1)
        return u * (mix_tokens(self.intermediate_layernorm(v), self.Dense_0, self.layout, self.grid) + 1.)


class GmlpLayer(nn.Module):
    """Residual gMLP along one axis: ``x + out(gate(gelu(in(norm(x)))))``.

    Args:
        channels (int): channels in and out.
        layout (tuple): block size, or grid size if ``grid``.
        grid (bool): grid instead of block mixing (names the gating unit ``GridGatingUnit``/``BlockGatingUnit``).
        factor (int): channel expansion inside. bias (bool): biases of the projections.
    """

    def __init__(self, channels, layout, grid, factor=2, bias=True):
        super().__init__()
        self.LayerNorm = LastDimLayerNorm(channels)
        self.in_project = nn.Linear(channels, channels * factor, bias)
        self.gating_name = 'GridGatingUnit' if grid else 'BlockGatingUnit'
        self.add_module(self.gating_name, SpatialGatingUnit(channels * factor, layout, grid))
        self.out_project = nn.Linear(channels * factor // 2, channels, bias)

    def forward(self, x):
        y = F.gelu(self.in_project(self.LayerNorm(x)))
        return x + self.out_project(getattr(self, self.gating_name)(y))


class MultiAxisGmlp(nn.Module):
    """The residual split-head multi-axis gMLP block: half the projected channels mix over the grid, half over
    blocks. Args: ``channels``, ``block_size``, ``grid_size``, ``input_proj_factor``, ``block_gmlp_factor``,
    ``grid_gmlp_factor``, ``bias``, ``dropout_rate`` (after the output projection)."""

    def __init__(self, channels, block_size, grid_size, input_proj_factor=2, block_gmlp_factor=2, grid_gmlp_factor=2,
                 bias=True, dropout_rate=0.):
        super().__init__()
        inner = channels * input_proj_factor
        self.LayerNorm_in = LastDimLayerNorm(channels)
        self.in_project = nn.Linear(channels, inner, bias)
        self.GridGmlpLayer = GmlpLayer(inner // 2, grid_size, True, grid_gmlp_factor, bias)
        self.BlockGmlpLayer = GmlpLayer(inner // 2, block_size, False, block_gmlp_factor, bias)
        self.out_project = nn.Linear(inner, channels, bias)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x):
        u, v = F.gelu(self.in_project(self.LayerNorm_in(x))).chunk(2, dim=-1)
        y = torch.cat([self.GridGmlpLayer(u), self.BlockGmlpLayer(v)], dim=-1)
        return x + self.dropout(self.out_project(y))


class GatingWeights(nn.Module):
    """The cross-gating block's gate: grid mixing on one half of the projected channels, block mixing on the other
    (no gating inside). Args: ``channels``, ``block_size``, ``grid_size``, ``bias``, ``dropout_rate``."""

    def __init__(self, channels, block_size, grid_size, bias=True, dropout_rate=0., input_proj_factor=2):
        super().__init__()
        self.block_size, self.grid_size = tuple(block_size), tuple(grid_size)
        self.LayerNorm_in = LastDimLayerNorm(channels)
        self.in_project = nn.Linear(channels, channels * input_proj_factor, bias)
        self.Dense_0 = nn.Linear(grid_size[0] * grid_size[1], grid_size[0] * grid_size[1], bias)
        self.Dense_1 = nn.Linear(block_size[0] * block_size[1], block_size[0] * block_size[1], bias)
        self.out_project = nn.Linear(channels * input_proj_factor, channels, bias)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x):
        u, v = F.gelu(self.in_project(self.LayerNorm_in(x))).chunk(2, dim=-1)
        u = mix_tokens(u, self.Dense_0, self.grid_size, grid=True)
        v = mix_tokens(v, self.Dense_1, self.block_size, grid=False)
        return self.dropout(self.out_project(torch.cat([u, v], dim=-1)))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation on channels-last input (1x1 convs ``Conv_0``, ``Conv_1`` on the pooled channels)."""

    def __init__(self, channels, reduction=4, bias=True):
        super().__init__()
        self.Conv_0 = nn.Conv2d(channels, channels // reduction, 1, bias=bias)
        self.Conv_1 = nn.Conv2d(channels // reduction, channels, 1, bias=bias)

    def forward(self, x):
        y = x.mean(dim=(1, 2))[:, :, None, None]
        y = torch.sigmoid(self.Conv_1(F.relu(self.Conv_0(y))))
        return x * y[:, None, None, :, 0, 0]


class RCAB(nn.Module):
    """Residual channel-attention block (channels last): norm, 3x3 conv, leaky ReLU, 3x3 conv, channel attention.
    Its channel attention always has biases (as the port's). Args: ``channels``, ``reduction``, ``lrelu_slope``,
    ``bias``."""

    def __init__(self, channels, reduction=4, lrelu_slope=0.2, bias=True):
        super().__init__()
        self.lrelu_slope = lrelu_slope
        self.LayerNorm = LastDimLayerNorm(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.channel_attention = ChannelAttention(channels, reduction)

    def forward(self, x):
        y = self.LayerNorm(x).permute(0, 3, 1, 2)
        y = self.conv2(F.leaky_relu(self.conv1(y), self.lrelu_slope)).permute(0, 2, 3, 1)
        return x + self.channel_attention(y)


class ChannelMlp(nn.Module):
    """Two dense layers with GELU between (the port's ``MlpBlock``)."""

    def __init__(self, channels, dropout_rate=0., bias=True):
        super().__init__()
        self.Dense_0 = nn.Linear(channels, channels, bias)
        self.dropout = nn.Dropout(dropout_rate)
        self.Dense_1 = nn.Linear(channels, channels, bias)

    def forward(self, x):
        return self.Dense_1(self.dropout(F.gelu(self.Dense_0(x))))


class RDCAB(nn.Module):
    """Residual dense channel-attention block of the bottleneck (channels last): norm, channel MLP, attention."""

    def __init__(self, channels, reduction=4, dropout_rate=0., bias=True):
        super().__init__()
        self.LayerNorm = LastDimLayerNorm(channels)
        self.channel_mixing = ChannelMlp(channels, dropout_rate, bias)
        self.channel_attention = ChannelAttention(channels, reduction, bias)

    def forward(self, x):
        return x + self.channel_attention(self.channel_mixing(self.LayerNorm(x)))


class CrossGatingBlock(nn.Module):
    """Two signals gate each other: ``x`` (the skip features) and ``y`` (the deeper, global features, upsampled 2x
    by a transposed conv if ``upsample_y``) are projected to ``channels``; each one's gating weights multiply the
    other. Returns ``(x', y')`` (n, c, h, w), ``x' = out_x(x * g_y) + y' + x``, ``y' = out_y(y * g_x) + y``.

    Args:
        x_features (int): channels of ``x``. channels (int): working and output channels.
        block_size, grid_size (tuple): the gates' mixing layouts. cin_y (int): channels of ``y``.
        upsample_y (bool): ``y`` is at half the size of ``x``. bias (bool). dropout_rate (float).
    """

    def __init__(self, x_features, channels, block_size, grid_size, cin_y, upsample_y=True, bias=True,
                 dropout_rate=0.):
        super().__init__()
        if upsample_y:
            self.ConvTranspose_0 = nn.ConvTranspose2d(cin_y, channels, 2, stride=2, bias=bias)
        self.Conv_0 = nn.Conv2d(x_features, channels, 1, bias=bias)
        self.Conv_1 = nn.Conv2d(channels, channels, 1, bias=bias)
        for side in 'xy':
            setattr(self, f'LayerNorm_{side}', LastDimLayerNorm(channels))
            setattr(self, f'in_project_{side}', nn.Linear(channels, channels, bias))
            setattr(self, f'SplitHeadMultiAxisGating_{side}',
                    GatingWeights(channels, block_size, grid_size, bias, dropout_rate))
        self.out_project_y = nn.Linear(channels, channels, bias)
        self.out_project_x = nn.Linear(channels, channels, bias)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x, y):
        if hasattr(self, 'ConvTranspose_0'):
            y = self.ConvTranspose_0(y)
        x = self.Conv_0(x).permute(0, 2, 3, 1)
        y = self.Conv_1(y).permute(0, 2, 3, 1)
        x_in, y_in = x, y
        x = F.gelu(self.in_project_x(self.LayerNorm_x(x)))
        y = F.gelu(self.in_project_y(self.LayerNorm_y(y)))
        gate_x, gate_y = self.SplitHeadMultiAxisGating_x(x), self.SplitHeadMultiAxisGating_y(y)
        y = y_in + self.dropout(self.out_project_y(y * gate_x))
        x = x_in + y + self.dropout(self.out_project_x(x * gate_y))
        return x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2)
