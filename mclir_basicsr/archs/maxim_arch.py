"""Maxim: the single-stage MAXIM of the IRConStyle authors (Dongqi-Fan/IRConStyle), registered as ``Maxim``.

Reference:
    Z. Tu, H. Talebi, H. Zhang, F. Yang, P. Milanfar, A. Bovik, Y. Li. "MAXIM: Multi-Axis MLP for Image
    Processing". CVPR 2022 (arXiv:2201.12378); IRConStyle's PyTorch port (``archs/Maxim_arch.py``).

Their option files build it bare (``network_g: {type: Maxim}``); the defaults here are theirs: 8,175,683 parameters,
the same state-dict keys in the same order (``stage_0_*``, ``UpSampleRatio_0..17``), so their checkpoints load
strictly. One stage, depth 3 (the port hard-codes both): multi-scale inputs (the image at 1, 1/2, 1/4) enter three
encoder blocks (multi-axis gMLP + RCAB), two bottleneck blocks at 1/8, three cross-gating blocks that fuse the
resized encoder features with the global feature, three decoder blocks, ``output + input``.

Sizes: the port needs H and W multiples of 64 (at the defaults); this one pads the input (bottom and right,
reflection, as their Maxim datasets pad; replication for images smaller than the padding) to the multiple its
block and grid sizes need (:attr:`Maxim.size_multiple`) and crops the output back, so on multiples of 64 it gives
the port's outputs. Parameters the port builds but never uses are kept for its checkpoints: each encoder block's
``cross_gating_block`` and the decoders' inner ``Conv_1`` (their gradients stay ``None``).
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from .maxim_blocks import RCAB, RDCAB, CrossGatingBlock, MultiAxisGmlp, nearest_downsample, resize, size_multiple
from .padding import pad_to_multiple


class Resample(nn.Module):
    """Resize by ``ratio`` (bilinear, antialiased; none at ratio 1), then a 1x1 conv (the port's UpSampleRatio)."""

    def __init__(self, cin, cout, ratio, bias=True):
        super().__init__()
        self.ratio = ratio
        self.Conv_0 = nn.Conv2d(cin, cout, 1, bias=bias)

    def forward(self, x):
        return self.Conv_0(x if self.ratio == 1 else resize(x, self.ratio))


class EncoderBlock(nn.Module):
    """``cat[x, skip]``, 1x1 conv, two (multi-axis gMLP + RCAB), a long residual; ``(n, c, h, w)`` in and out.

    Args:
        cin (int or None): input channels (``x`` and ``skip`` together); None: no input conv.
        channels (int): output channels. block_size, grid_size (tuple): the gMLPs' layouts.
        downsample_conv (bool): build ``Conv_1`` (4x4, stride 2, always with bias), the encoder's downsampling.
        use_global_mlp (bool): run the gMLPs (built either way). Others: as :class:`Maxim`.
    """

    def __init__(self, cin, channels, block_size, grid_size, lrelu_slope=0.2, block_gmlp_factor=2, grid_gmlp_factor=2,
                 input_proj_factor=2, channels_reduction=4, dropout_rate=0., bias=True, use_global_mlp=True,
                 downsample_conv=True):
        super().__init__()
        self.use_global_mlp = use_global_mlp
        if cin is not None:
            self.Conv_0 = nn.Conv2d(cin, channels, 1, bias=bias)
        for i in range(2):
            setattr(self, f'SplitHeadMultiAxisGmlpLayer_{i}',
                    MultiAxisGmlp(channels, block_size, grid_size, input_proj_factor, block_gmlp_factor,
                                  grid_gmlp_factor, bias, dropout_rate))
        self.channel_attention_block_10 = RCAB(channels, channels_reduction, lrelu_slope, bias)
        self.channel_attention_block_11 = RCAB(channels, channels_reduction, lrelu_slope, bias)
        # unused by the port's single-stage networks (multi-stage MAXIM gates with it); kept for their checkpoints
        self.cross_gating_block = CrossGatingBlock(channels, channels, block_size, grid_size, 0, False, bias,
                                                   dropout_rate)
        if downsample_conv:
            self.Conv_1 = nn.Conv2d(channels, channels, 4, stride=2, padding=1)

    def forward(self, x, skip=None):
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        if hasattr(self, 'Conv_0'):
            x = self.Conv_0(x)
        y = x.permute(0, 2, 3, 1)
        for i in (0, 1):
            if self.use_global_mlp:
                y = getattr(self, f'SplitHeadMultiAxisGmlpLayer_{i}')(y)
            y = getattr(self, f'channel_attention_block_1{i}')(y)
        return x + y.permute(0, 3, 1, 2)


class DecoderBlock(nn.Module):
    """Optionally upsample ``x`` 2x (transposed conv ``cin`` -> ``channels``), then an :class:`EncoderBlock` on
    ``cat[x, bridge]`` (``block_in`` channels) named ``UNetEncoderBlock_0``; ``block_kwargs`` go to it."""

    def __init__(self, block_in, channels, upsample_from=None, bias=True, **block_kwargs):
        super().__init__()
        if upsample_from is not None:
            self.ConvTranspose_0 = nn.ConvTranspose2d(upsample_from, channels, 2, stride=2, bias=bias)
        self.UNetEncoderBlock_0 = EncoderBlock(block_in, channels, bias=bias, **block_kwargs)

    def forward(self, x, bridge):
        if hasattr(self, 'ConvTranspose_0'):
            x = self.ConvTranspose_0(x)
        return self.UNetEncoderBlock_0(x, skip=bridge)


class BottleneckBlock(nn.Module):
    """1x1 conv (always with bias), two (multi-axis gMLP + RDCAB), a long residual. The port gives its RDCABs a
    reduction of 4 and its gMLPs no dropout whatever the arguments; so does this one."""

    def __init__(self, channels, block_size, grid_size, block_gmlp_factor=2, grid_gmlp_factor=2, input_proj_factor=2,
                 bias=True, dropout_rate=0.):
        super().__init__()
        self.input_proj = nn.Conv2d(channels, channels, 1)
        for i in range(2):
            setattr(self, f'SplitHeadMultiAxisGmlpLayer_{i}',
                    MultiAxisGmlp(channels, block_size, grid_size, input_proj_factor, block_gmlp_factor,
                                  grid_gmlp_factor, bias))
        self.channel_attention_block_1_0 = RDCAB(channels, dropout_rate=dropout_rate, bias=bias)
        self.channel_attention_block_1_1 = RDCAB(channels, dropout_rate=dropout_rate, bias=bias)

    def forward(self, x):
        x = self.input_proj(x)
        y = x.permute(0, 2, 3, 1)
        for i in (0, 1):
            y = getattr(self, f'SplitHeadMultiAxisGmlpLayer_{i}')(y)
            y = getattr(self, f'channel_attention_block_1_{i}')(y)
        return x + y.permute(0, 3, 1, 2)


def level_layouts(level, high_res_stages, block_size_hr, grid_size_hr, block_size_lr):
    """(block, grid) layouts of a U-Net level. Low-res levels use ``block_size_lr`` for the grid too: the port
    passes it there (``grid_size_lr`` reaches the bottleneck only); equal at the defaults."""
    if level < high_res_stages:
        return tuple(block_size_hr), tuple(grid_size_hr)
    return tuple(block_size_lr), tuple(block_size_lr)


@ARCH_REGISTRY.register()
class Maxim(nn.Module):
    """Single-stage MAXIM (see the module doc); the port's arguments and defaults.

    Args:
        features (int): channels at full scale (x2 per level). Default: 32.
        depth, num_supervision_scales (int): fixed at 3 by the port's modules (other values are refused).
        use_bias (bool): biases of the convs and dense layers (some are always on, as in the port). Default: true.
        lrelu_slope (float): of the RCABs. Default: 0.2.
        use_global_mlp (bool): run the encoder and decoder blocks' gMLPs. Default: true.
        high_res_stages (int): levels (from full scale) using the ``*_hr`` layouts. Default: 2.
        block_size_hr, block_size_lr, grid_size_hr, grid_size_lr (tuple): gMLP layouts. Default: 16, 8, 16, 8.
        block_gmlp_factor, grid_gmlp_factor, input_proj_factor (int): gMLP expansions. Default: 2.
        channels_reduction (int): of the RCABs' channel attention. Default: 4.
        num_outputs (int): output channels (added to the input image). Default: 3.
        dropout_rate (float): Default: 0.
    """

    def __init__(self, features=32, depth=3, use_bias=True, num_supervision_scales=3, lrelu_slope=0.2,
                 use_global_mlp=True, high_res_stages=2, block_size_hr=(16, 16), block_size_lr=(8, 8),
                 grid_size_hr=(16, 16), grid_size_lr=(8, 8), block_gmlp_factor=2, grid_gmlp_factor=2,
                 input_proj_factor=2, channels_reduction=4, num_outputs=3, dropout_rate=0.):
        super().__init__()
        if depth != 3 or num_supervision_scales != 3:
            raise ValueError(f'Maxim: depth and num_supervision_scales must be 3 (the IRConStyle port builds three '
                             f'levels), got {depth}, {num_supervision_scales}.')
        width = [features * 2**level for level in range(3)]
        layouts = [level_layouts(lv, high_res_stages, block_size_hr, grid_size_hr, block_size_lr) for lv in range(3)]
        bottleneck = (tuple(block_size_lr), tuple(grid_size_lr))
        self.size_multiple = size_multiple([(lv, *layouts[lv]) for lv in range(3)] + [(3, *bottleneck)])
        common = dict(lrelu_slope=lrelu_slope, block_gmlp_factor=block_gmlp_factor, grid_gmlp_factor=grid_gmlp_factor,
                      input_proj_factor=input_proj_factor, channels_reduction=channels_reduction,
                      dropout_rate=dropout_rate, bias=use_bias, use_global_mlp=use_global_mlp)
        gmlp = dict(block_gmlp_factor=block_gmlp_factor, grid_gmlp_factor=grid_gmlp_factor,
                    input_proj_factor=input_proj_factor, bias=use_bias, dropout_rate=dropout_rate)
        # attribute order = the port's registration order = its state-dict order
        for lv in range(3):
            setattr(self, f'stage_0_input_conv_{lv}', nn.Conv2d(3, width[lv], 3, padding=1, bias=use_bias))
            setattr(self, f'stage_0_encoder_block_{lv}',
                    EncoderBlock(width[max(lv - 1, 0)] + width[lv], width[lv], *layouts[lv], **common))
        for i in range(2):
            setattr(self, f'stage_0_global_block_{i}', BottleneckBlock(width[2], *bottleneck, **gmlp))
        for lv in (2, 1, 0):  # cross gating: every encoder level resized to level lv
            for j in range(3):
                setattr(self, f'UpSampleRatio_{3 * (2 - lv) + j}',
                        Resample(width[j], width[lv], 2.**(j - lv), use_bias))
            setattr(self, f'stage_0_cross_gating_block_{lv}',
                    CrossGatingBlock(3 * width[lv], width[lv], *layouts[lv], width[min(lv + 1, 2)], True, use_bias,
                                     dropout_rate))
        for lv in (2, 1, 0):  # decoder: every gated skip (deepest first) resized to level lv
            for j in range(3):
                setattr(self, f'UpSampleRatio_{9 + 3 * (2 - lv) + j}',
                        Resample(width[2 - j], width[lv], 2.**(2 - j - lv), use_bias))
            setattr(self, f'stage_0_decoder_block_{lv}',
                    DecoderBlock(4 * width[lv], width[lv], width[min(lv + 1, 2)], block_size=layouts[lv][0],
                                 grid_size=layouts[lv][1], **common))
        self.stage_0_output_conv_0 = nn.Conv2d(features, num_outputs, 3, padding=1, bias=use_bias)

    def forward(self, img):
        h, w = img.shape[-2:]
        img = pad_to_multiple(img, self.size_multiple)
        scales = [getattr(self, f'stage_0_input_conv_{lv}')(nearest_downsample(img, 2**lv) if lv else img)
                  for lv in range(3)]
        x, bridges = scales[0], []
        for lv in range(3):
            block = getattr(self, f'stage_0_encoder_block_{lv}')
            bridges.append(block(x, skip=scales[lv]))
            x = block.Conv_1(bridges[-1])
        x = self.stage_0_global_block_1(self.stage_0_global_block_0(x))
        skips, global_feature = [], x
        for lv in (2, 1, 0):
            signal = torch.cat([getattr(self, f'UpSampleRatio_{3 * (2 - lv) + j}')(bridges[j]) for j in range(3)], 1)
            skip, global_feature = getattr(self, f'stage_0_cross_gating_block_{lv}')(signal, global_feature)
            skips.append(skip)
        for lv in (2, 1, 0):
            signal = torch.cat([getattr(self, f'UpSampleRatio_{9 + 3 * (2 - lv) + j}')(skips[j]) for j in range(3)], 1)
            x = getattr(self, f'stage_0_decoder_block_{lv}')(x, signal)
        return (self.stage_0_output_conv_0(x) + img)[..., :h, :w]
