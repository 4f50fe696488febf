"""The DCPT authors' Restormers, registered as ``DCPTRestormer`` (their ``Restormer``) and ``Restormer_origin``.

Reference: Hu et al., "Universal Image Restoration Pre-training via Degradation Classification", ICLR 2025; code
hoatong2411/dcpt at edd4c7ac320de52224ef1b8665ecdfb86e3e25dd (``basicsr/archs/restormer_arch.py``).

Both use blocks that differ from the Restormer release (our ``Restormer``, :mod:`mclir_basicsr.archs.restormer_blocks`):

* attention weights ``relu(q k^T * temperature)`` instead of a softmax;
* layer norms with eps 1e-6 (the release: 1e-5);
* the attention and feed-forward convs have no bias whatever ``bias`` says (``bias`` only reaches the 1x1 channel
  reductions, the output conv and the dual-pixel skip).

``DCPTRestormer`` nests each stage's blocks under ``.body`` (keys ``encoder_level1.body.0.norm1.body.weight``),
defaults to ``LayerNorm_type: BiasFree``, initialises convs with a truncated normal (std 0.02, bias 0), has a
``scale`` argument (``scale > 1``: 2**scale output convs and a pixel shuffle) and ``forward(inp, hook=True)`` stops
after ``decoder_level1`` (returns None); 26,111,668 parameters at the defaults. ``Restormer_origin`` has the
release's layout and keys (``encoder_level1.0...``, ``LayerNorm_type: WithBias``, PyTorch's default
initialisation): the release's checkpoints load into it strictly (26,126,644 parameters) and then run with the
blocks above, as in DCPT's transfer files.

Padding: theirs needs H and W multiples of 8. Ours pads bottom/right to a multiple of 8 (reflection, replication
where the image is too small) and crops back, as our ``Restormer``: sizes theirs accepts give their outputs.
Both take DCPT's ``window_size`` (their models pad to it; unused by the network).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from ...archs.padding import pad_to_multiple
from ...archs.restormer_arch import SIZE_MULTIPLE, add_restormer_layout, restormer_decode
from ...archs.restormer_blocks import Attention, FeedForward, LayerNorm

LAYER_NORM_EPS = 1e-6  # theirs; the Restormer release uses 1e-5


class ReluAttention(Attention):
    """Restormer's transposed (channel) attention with ReLU weights in place of the softmax (DCPT's change); the
    same parameters as :class:`~mclir_basicsr.archs.restormer_blocks.Attention`."""

    def forward(self, x):
        b, c, h, w = x.shape
        heads = self.qkv_dwconv(self.qkv(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = heads.unbind(dim=1)  # each (B, heads, C/heads, H*W)
        attn = F.relu(F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * self.temperature)
        return self.project_out((attn @ v).reshape(b, c, h, w))


def _layer_norm(dim, layer_norm_type):
    norm = LayerNorm(dim, layer_norm_type)
    norm.body.eps = LAYER_NORM_EPS
    return norm


class ReluTransformerBlock(nn.Module):
    """DCPT's Restormer block: ``x + attn(LN(x))`` then ``x + FFN(LN(x))`` with :class:`ReluAttention`, eps-1e-6
    norms and bias-free convs; the release's submodule names (``norm1``, ``attn``, ``norm2``, ``ffn``).

    Args:
        dim (int): Channels.
        num_heads (int): Attention heads (must divide ``dim``).
        ffn_expansion_factor (float): Hidden channels of the feed-forward network, times ``dim``.
        LayerNorm_type (str): ``BiasFree`` or ``WithBias``.
    """

    def __init__(self, dim, num_heads, ffn_expansion_factor, LayerNorm_type):  # noqa: N803 (their option key)
        super().__init__()
        self.norm1 = _layer_norm(dim, LayerNorm_type)
        self.attn = ReluAttention(dim, num_heads, bias=False)
        self.norm2 = _layer_norm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias=False)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class NestedStage(nn.Module):
    """A stage whose blocks sit under ``.body`` (their ``SequentialTransformerBlock``)."""

    def __init__(self, blocks):
        super().__init__()
        self.body = nn.Sequential(*blocks)

    def forward(self, x):
        return self.body(x)


class _DCPTRestormerUNet(nn.Module):
    """The Restormer U-Net shared by both classes; ``nested`` puts each stage's blocks under ``.body``."""

    def __init__(self, inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads,
                 ffn_expansion_factor, bias, LayerNorm_type, dual_pixel_task, window_size, nested, scale=1):
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError(f'{type(self).__name__}: num_blocks and heads need 4 entries (one per level); got '
                             f'{list(num_blocks)}, {list(heads)}.')

        def stage(n, channels, num_heads):
            blocks = [ReluTransformerBlock(channels, num_heads, ffn_expansion_factor, LayerNorm_type) for _ in range(n)]
            return NestedStage(blocks) if nested else nn.Sequential(*blocks)

        self.window_size = window_size
        add_restormer_layout(self, stage, inp_channels, dim, num_blocks, num_refinement_blocks, heads, bias,
                             dual_pixel_task)
        self.scale = scale

        def output_conv():
            return nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

        self.output = nn.ModuleList(output_conv() for _ in range(2**scale)) if scale > 1 else output_conv()

    def forward(self, inp_img, hook=False):
        """(B, inp_channels, H, W) -> (B, out_channels, H * scale, W * scale), any H, W >= 1 (padded to multiples
        of 8 inside); ``hook`` true: runs up to ``decoder_level1`` (for feature hooks) and returns None."""
        h, w = inp_img.shape[-2:]
        out = self.restore(pad_to_multiple(inp_img, SIZE_MULTIPLE), hook)
        return None if out is None else out[..., :h * self.scale, :w * self.scale]

    def restore(self, img, hook=False):
        """Their forward: ``img``'s H and W must be multiples of 8."""
        embedded, x = restormer_decode(self, img)
        if hook:
            return None
        x = self.refinement(x)
        if self.scale > 1:  # theirs: each conv plus the input, concatenated, pixel-shuffled
            return F.pixel_shuffle(torch.cat([conv(x) + img for conv in self.output], dim=1), self.scale)
        if self.dual_pixel_task:
            return self.output(x + self.skip_conv(embedded))
        return self.output(x) + img


@ARCH_REGISTRY.register()
class DCPTRestormer(_DCPTRestormerUNet):
    """The DCPT authors' ``Restormer`` (see the module doc).

    Args:
        inp_channels (int): Input channels (6 for the dual-pixel task). Default: 3.
        out_channels (int): Output channels. Default: 3.
        dim (int): Channels of level 1 (levels 2, 3, 4: 2x, 4x, 8x). Default: 48.
        num_blocks (list[int]): Blocks per level 1..4 (levels 1..3 also set the decoder's). Default: [4, 6, 6, 8].
        num_refinement_blocks (int): Blocks after the decoder. Default: 4.
        heads (list[int]): Attention heads per level. Default: [1, 2, 4, 8].
        ffn_expansion_factor (float): Hidden width of the feed-forward networks, times the channels. Default: 2.66.
        bias (bool): Biases in the channel reductions, output convs and dual-pixel skip. Default: False.
        LayerNorm_type (str): ``BiasFree`` or ``WithBias``. Default: ``BiasFree``.
        dual_pixel_task (bool): Dual-pixel defocus deblurring (set ``inp_channels: 6``). Default: False.
        scale (int): Output scale; theirs supports 1 and 2 (2**scale outputs of ``out_channels`` are shuffled).
            Default: 1.
        window_size (int): Kept for their models, which pad inputs to a multiple of it. Default: 8.

    Hooks: ``decoder_level3`` (4 dim channels, H/4), ``decoder_level2`` (2 dim, H/2), ``decoder_level1``
    (2 dim, H): reversed, the classifier's ``feature_dims: [96, 96, 192]`` at dim 48.
    """

    def __init__(self, inp_channels=3, out_channels=3, dim=48, num_blocks=(4, 6, 6, 8), num_refinement_blocks=4,
                 heads=(1, 2, 4, 8), ffn_expansion_factor=2.66, bias=False, LayerNorm_type='BiasFree',
                 dual_pixel_task=False, scale=1, window_size=8):
        super().__init__(inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads,
                         ffn_expansion_factor, bias, LayerNorm_type, dual_pixel_task, window_size, nested=True,
                         scale=scale)
        for module in self.modules():  # theirs: truncated-normal convs, zero biases
            if isinstance(module, nn.Conv2d):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


@ARCH_REGISTRY.register()
class Restormer_origin(_DCPTRestormerUNet):  # noqa: N801 (the DCPT authors' name, for their option files)
    """The DCPT authors' ``Restormer_origin``: the Restormer release's layout and keys with DCPT's blocks (see the
    module doc); arguments as :class:`DCPTRestormer` without ``scale``, ``LayerNorm_type`` default ``WithBias``.
    Theirs has no ``hook`` argument; ours accepts it (DCPTModel-style callers) with :class:`DCPTRestormer`'s
    meaning."""

    def __init__(self, inp_channels=3, out_channels=3, dim=48, num_blocks=(4, 6, 6, 8), num_refinement_blocks=4,
                 heads=(1, 2, 4, 8), ffn_expansion_factor=2.66, bias=False, LayerNorm_type='WithBias',
                 dual_pixel_task=False, window_size=8):
        super().__init__(inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads,
                         ffn_expansion_factor, bias, LayerNorm_type, dual_pixel_task, window_size, nested=False)
