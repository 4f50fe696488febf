"""The DCPT authors' SwinIR, registered as ``DCPTSwinIR`` (their ``SwinIR``; BasicSR's ``SwinIR`` is another net).

Reference: Hu et al., "Universal Image Restoration Pre-training via Degradation Classification", ICLR 2025; code
hoatong2411/dcpt at edd4c7ac320de52224ef1b8665ecdfb86e3e25dd (``basicsr/archs/swinir_arch.py``); SwinIR: Liang et
al., "SwinIR: Image Restoration Using Swin Transformer", ICCVW 2021.

Differences from SwinIR (BasicSR's ``SwinIR``), all theirs:

* window attention without the relative position bias (no ``relative_position_bias_table`` /
  ``relative_position_index``) and shifted windows without the attention mask (the cyclic shift by
  ``window_size // 2`` on every second block is kept, so windows wrap around the border);
* the residual groups are split in two halves: ``encode_layers.<i>`` (a ModuleList) and attributes
  ``decode_layers0`` .. ``decode_layers{n/2-1}``, so DCPT can hook the decoder half (``hook_names:
  decode_layers``: three token maps (B, H*W, embed_dim), read by the classifier with ``downsample: true``);
* ``forward(x, hook=False)`` ignores ``hook`` (always the full output); only ``upsampler: ''`` (their files' and
  their only de-normalised branch) is supported here.

11,455,563 parameters (454 keys) for their files' ``embed_dim: 180, depths: [6]*6, num_heads: [6]*6``. As in
SwinIR, blocks use windows of ``min(img_size // patch_size)`` without shift when that is not larger than
``window_size`` (fixed at construction, whatever the input size). Theirs takes the second half's depths and heads
from index 3 (right for their 6 groups only); ours from ``len(depths) // 2`` and needs an even number of groups.

Padding: theirs needs H and W multiples of the window (their models pad to ``window_size``); ours pads bottom/right
to that multiple (reflection, replication where the image is too small) and crops back: sizes theirs accepts give
their outputs. Other differences: their ``**kwargs`` (unknown arguments silently ignored) is not accepted.
"""
import torch
import torch.nn as nn
import torch.utils.checkpoint as checkpoint
from basicsr.archs.swinir_arch import DropPath, Mlp, PatchEmbed, PatchUnEmbed, window_partition, window_reverse
from basicsr.utils.registry import ARCH_REGISTRY

from ...archs.padding import pad_to_multiple

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean, subtracted from 3-channel inputs (as SwinIR)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, without position bias: tokens (B*nW, N, C) -> same shape.

    Args:
        dim (int): Channels C.
        num_heads (int): Heads (must divide ``dim``).
        qkv_bias (bool): Bias in the qkv projection.
        qk_scale (float | None): Logit scale; None: head_dim ** -0.5.
        attn_drop (float): Dropout on the attention weights.
        proj_drop (float): Dropout after the output projection.
    """

    def __init__(self, dim, num_heads, qkv_bias=True, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads)**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = self.attn_drop((q * self.scale @ k.transpose(-2, -1)).softmax(dim=-1))
        return self.proj_drop(self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)))


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention and MLP on tokens (B, H*W, C), each a residual; see the module doc for
    the window size and the unmasked shift."""

    def __init__(self, dim, input_resolution, num_heads, window_size, shift_size, mlp_ratio, qkv_bias, qk_scale,
                 drop, attn_drop, drop_path, norm_layer):
        super().__init__()
        if min(input_resolution) <= window_size:  # one window covers the training image: no partition, no shift
            shift_size, window_size = 0, min(input_resolution)
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x, x_size):
        h, w = x_size
        b, _, c = x.shape
        shifted = self.norm1(x).view(b, h, w, c)
        if self.shift_size:
            shifted = torch.roll(shifted, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        windows = window_partition(shifted, self.window_size).view(-1, self.window_size**2, c)
        windows = self.attn(windows).view(-1, self.window_size, self.window_size, c)
        shifted = window_reverse(windows, self.window_size, h, w)
        if self.shift_size:
            shifted = torch.roll(shifted, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = x + self.drop_path(shifted.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinLayer(nn.Module):
    """``depth`` :class:`SwinBlock` s, unshifted and shifted alternately (keys ``blocks.<j>``)."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, drop_paths, use_checkpoint,
                 **block_kwargs):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            SwinBlock(dim, input_resolution, num_heads, window_size, 0 if j % 2 == 0 else window_size // 2,
                      drop_path=drop_paths[j], **block_kwargs) for j in range(depth))

    def forward(self, x, x_size):
        for block in self.blocks:
            if self.use_checkpoint:  # recompute in the backward pass instead of storing activations
                x = checkpoint.checkpoint(block, x, x_size, use_reentrant=False)
            else:
                x = block(x, x_size)
        return x


def _resi_conv(dim, resi_connection):
    """The conv closing a residual group (and the body): one 3x3, or the lighter 3x3-1x1-3x3 of SwinIR."""
    if resi_connection == '1conv':
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if resi_connection == '3conv':
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim // 4, 1, 1, 0), nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim, 3, 1, 1))
    raise ValueError(f"DCPTSwinIR: resi_connection must be '1conv' or '3conv', got {resi_connection!r}.")


class RSTB(nn.Module):
    """Residual Swin Transformer block: tokens -> :class:`SwinLayer` -> image -> conv -> tokens, plus the input."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, drop_paths, use_checkpoint, img_size,
                 patch_size, resi_connection, **block_kwargs):
        super().__init__()
        self.residual_group = SwinLayer(dim, input_resolution, depth, num_heads, window_size, drop_paths,
                                        use_checkpoint, **block_kwargs)
        self.conv = _resi_conv(dim, resi_connection)
        self.patch_embed = PatchEmbed(img_size, patch_size, 0, dim)
        self.patch_unembed = PatchUnEmbed(img_size, patch_size, 0, dim)

    def forward(self, x, x_size):
        return self.patch_embed(self.conv(self.patch_unembed(self.residual_group(x, x_size), x_size))) + x


@ARCH_REGISTRY.register()
class DCPTSwinIR(nn.Module):
    """The DCPT authors' ``SwinIR`` for restoration at scale 1 (see the module doc).

    Args:
        img_size (int | tuple[int]): Training image size; sets the window clamp (and ``ape``'s table). Default: 128.
        patch_size (int): Patch size (only scales ``img_size`` to tokens, as SwinIR). Default: 1.
        in_chans (int): Input and output channels. Default: 3.
        embed_dim (int): Token channels. Default: 180.
        depths (list[int]): Blocks per residual group (an even number of groups). Default: [6] * 6.
        num_heads (list[int]): Attention heads per group. Default: [6] * 6.
        window_size (int): Attention window. Default: 8.
        mlp_ratio (float): MLP hidden channels, times ``embed_dim``. Default: 2.
        qkv_bias (bool): Bias in the qkv projections. Default: True.
        qk_scale (float | None): Attention logit scale; None: head_dim ** -0.5. Default: None.
        drop_rate (float): Dropout after attention and MLP. Default: 0.
        attn_drop_rate (float): Dropout on attention weights. Default: 0.
        drop_path_rate (float): Stochastic depth, rising linearly over the blocks to this. Default: 0.
        norm_layer (type): Token normalisation. Default: nn.LayerNorm.
        ape (bool): Learned absolute position embedding (needs inputs of ``img_size``). Default: False.
        patch_norm (bool): Normalise the tokens after embedding. Default: True.
        use_checkpoint (bool): Gradient checkpointing in the blocks. Default: False.
        upscale (int): Kept for their files (1); with ``upsampler: ''`` the output has the input's size. Default: 1.
        img_range (float): Image range (1 or 255). Default: 1.
        upsampler (str): Only ``''`` (restoration, as all DCPT files). Default: ''.
        resi_connection (str): ``1conv`` or ``3conv``. Default: ``1conv``.
    """

    def __init__(self, img_size=128, patch_size=1, in_chans=3, embed_dim=180, depths=(6, 6, 6, 6, 6, 6),
                 num_heads=(6, 6, 6, 6, 6, 6), window_size=8, mlp_ratio=2., qkv_bias=True, qk_scale=None,
                 drop_rate=0., attn_drop_rate=0., drop_path_rate=0., norm_layer=nn.LayerNorm, ape=False,
                 patch_norm=True, use_checkpoint=False, upscale=1, img_range=1., upsampler='', resi_connection='1conv'):
        super().__init__()
        if upsampler:
            raise ValueError(f"DCPTSwinIR supports upsampler: '' only (restoration, as the DCPT files), got "
                             f'{upsampler!r}; use BasicSR\'s SwinIR for super-resolution.')
        if len(depths) != len(num_heads) or len(depths) % 2:
            raise ValueError(f'DCPTSwinIR: depths and num_heads need the same, even number of entries (encoder and '
                             f'decoder halves); got {list(depths)}, {list(num_heads)}.')
        self.img_range, self.upscale, self.in_chans = img_range, upscale, in_chans
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(img_size, patch_size, embed_dim, embed_dim, norm_layer if patch_norm else None)
        resolution = tuple(self.patch_embed.patches_resolution)
        self.patch_unembed = PatchUnEmbed(img_size, patch_size, embed_dim, embed_dim)
        self.ape = ape
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches, embed_dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=.02)
        self.pos_drop = nn.Dropout(p=drop_rate)

        rates = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # cpu: builds on meta too
        starts = [sum(depths[:i]) for i in range(len(depths))]

        def group(i):
            return RSTB(embed_dim, resolution, depths[i], num_heads[i], window_size,
                        rates[starts[i]:starts[i] + depths[i]], use_checkpoint, img_size, patch_size, resi_connection,
                        mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate,
                        attn_drop=attn_drop_rate, norm_layer=norm_layer)

        half = len(depths) // 2
        self.encode_layers = nn.ModuleList(group(i) for i in range(half))
        for i in range(half):  # attributes, as theirs, so that each is a hookable top-level module
            setattr(self, f'decode_layers{i}', group(half + i))
        self.num_decode_layers = half
        self.norm = norm_layer(embed_dim)
        self.conv_after_body = _resi_conv(embed_dim, resi_connection)
        self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, 1, 1)
        self.window_size = min(window_size, min(resolution))  # the window the blocks use: inputs pad to it
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward_features(self, x):
        """Image features (B, embed_dim, H, W) -> the body's output, same shape."""
        x_size = x.shape[-2:]
        tokens = self.pos_drop(self.patch_embed(x) + self.absolute_pos_embed if self.ape else self.patch_embed(x))
        layers = list(self.encode_layers) + [getattr(self, f'decode_layers{i}') for i in range(self.num_decode_layers)]
        for layer in layers:
            tokens = layer(tokens, x_size)
        return self.patch_unembed(self.norm(tokens), x_size)

    def forward(self, x, hook=False):
        """(B, in_chans, H, W) -> (B, in_chans, H, W), any H, W >= 1 (padded to the window inside). ``hook`` is
        accepted and ignored, as theirs: DCPT hooks read ``decode_layers<i>`` during the full pass."""
        h, w = x.shape[-2:]
        mean = x.new_tensor(RGB_MEAN).view(1, 3, 1, 1) if self.in_chans == 3 else x.new_zeros(1, 1, 1, 1)
        x = (pad_to_multiple(x, self.window_size) - mean) * self.img_range
        first = self.conv_first(x)
        x = x + self.conv_last(self.conv_after_body(self.forward_features(first)) + first)
        return (x / self.img_range + mean)[..., :h, :w]
