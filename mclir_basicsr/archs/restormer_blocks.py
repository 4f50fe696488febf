"""Restormer building blocks (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image
Restoration", CVPR 2022), shared by the PromptIR architecture.

Every feature map is ``(B, C, H, W)``. The submodule and parameter names (``norm1.body.weight``, ``attn.qkv``,
``attn.qkv_dwconv``, ``ffn.project_in``, ``body.0`` ...) follow the authors' Restormer/PromptIR code so that
their checkpoints load with ``strict=True``. This module has no ``_arch`` suffix: it registers nothing.
"""
import numbers
import torch
import torch.nn as nn
import torch.nn.functional as F


def _as_shape(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape, )
    shape = torch.Size(normalized_shape)
    if len(shape) != 1:
        raise ValueError(f'layer norm over one (channel) axis expected, got shape {tuple(shape)}')
    return shape


class BiasFreeLayerNorm(nn.Module):
    """Layer norm over the last axis that rescales without re-centring: ``x / sqrt(var + eps) * weight``."""

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(self.normalized_shape))

    def forward(self, x):
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + self.eps) * self.weight


class WithBiasLayerNorm(nn.Module):
    """Standard layer norm over the last axis with a learnable scale and shift."""

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(self.normalized_shape))
        self.bias = nn.Parameter(torch.zeros(self.normalized_shape))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class LayerNorm(nn.Module):
    """Per-pixel layer norm over the channels of a ``(B, C, H, W)`` map.

    Args:
        dim (int): Number of channels C.
        LayerNorm_type (str): ``'BiasFree'``; anything else gives the ``'WithBias'`` variant (as in Restormer).
    """

    def __init__(self, dim, LayerNorm_type='WithBias'):
        super().__init__()
        self.body = BiasFreeLayerNorm(dim) if LayerNorm_type == 'BiasFree' else WithBiasLayerNorm(dim)

    def forward(self, x):
        # (B, C, H, W) -> (B, H, W, C): normalise each pixel's channel vector, then back.
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class FeedForward(nn.Module):
    """Gated-Dconv Feed-forward Network (GDFN): 1x1 expand to two branches, 3x3 depth-wise conv,
    GELU(branch 1) * branch 2, 1x1 project back to ``dim``."""

    def __init__(self, dim, ffn_expansion_factor, bias):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, 2 * hidden, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, kernel_size=3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class Attention(nn.Module):
    """Multi-Dconv head Transposed Attention (MDTA): attention across channels (a C/heads x C/heads map per head),
    so the cost is linear in the number of pixels. Queries and keys are L2-normalised over the pixels and the
    logits scaled by a learnable per-head ``temperature``."""

    def __init__(self, dim, num_heads, bias):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, kernel_size=3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        b, c, h, w = x.shape
        heads = self.qkv_dwconv(self.qkv(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = heads.unbind(dim=1)  # each (B, heads, C/heads, H*W)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class TransformerBlock(nn.Module):
    """Pre-norm Restormer block: ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``; shape-preserving."""

    def __init__(self, dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type):
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def transformer_stage(num, dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type):
    """``num`` TransformerBlocks in an ``nn.Sequential`` (children named ``0``, ``1``, ...)."""
    return nn.Sequential(
        *[TransformerBlock(dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type) for _ in range(num)])


class OverlapPatchEmbed(nn.Module):
    """Overlapped patch embedding: one 3x3 conv, ``(B, in_c, H, W) -> (B, embed_dim, H, W)``."""

    def __init__(self, in_c=3, embed_dim=48, bias=False):
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x):
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 conv to ``n_feat // 2`` channels, then pixel-unshuffle: ``(B, C, H, W) -> (B, 2C, H/2, W/2)``."""

    def __init__(self, n_feat):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x):
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv to ``2 * n_feat`` channels, then pixel-shuffle: ``(B, C, H, W) -> (B, C/2, 2H, 2W)``."""

    def __init__(self, n_feat):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, 2 * n_feat, kernel_size=3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)
