"""Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration", CVPR 2022),
registered as ``Restormer``.

A four-level U-Net of Restormer blocks (:mod:`.restormer_blocks`): a 3x3 embedding to ``dim`` channels, encoder
levels of ``dim``, ``2 dim``, ``4 dim`` channels and a latent level of ``8 dim`` (pixel-unshuffle down-sampling),
decoder levels that concatenate the encoder's skip (1x1 reductions at levels 3 and 2; level 1 keeps the
``2 dim`` channels of the concatenation), refinement blocks and a 3x3 output conv, plus the input (not for the
dual-pixel task, whose 6-channel input has no 3-channel residual; it adds a 1x1 skip of the embedding instead).

Arguments, defaults and state-dict names are the authors' (swz30/Restormer; the same class in Dongqi-Fan/IRConStyle,
whose option files name ``type: Restormer`` with no arguments): their checkpoints load with ``strict=True``; the
defaults have 26,126,644 parameters. Theirs needs H and W multiples of 8; here the input is padded to a multiple
of 8 (reflection, replication where the image is too small to reflect) and the output cropped back, so inputs of
those sizes give their outputs and any other size works.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from .padding import pad_to_multiple
from .restormer_blocks import Downsample, OverlapPatchEmbed, Upsample, transformer_stage

SIZE_MULTIPLE = 8  # three 2x down-samplings


def add_restormer_layout(net, stage, inp_channels, dim, num_blocks, num_refinement_blocks, heads, bias,
                         dual_pixel_task):
    """Register Restormer's modules up to ``refinement`` (and ``skip_conv``) on ``net`` in the authors' order (so
    state-dict keys come in their order); ``stage(n, channels, heads)`` builds a level's blocks. The output conv is
    the caller's."""
    net.patch_embed = OverlapPatchEmbed(inp_channels, dim)
    net.encoder_level1 = stage(num_blocks[0], dim, heads[0])
    net.down1_2 = Downsample(dim)
    net.encoder_level2 = stage(num_blocks[1], dim * 2, heads[1])
    net.down2_3 = Downsample(dim * 2)
    net.encoder_level3 = stage(num_blocks[2], dim * 4, heads[2])
    net.down3_4 = Downsample(dim * 4)
    net.latent = stage(num_blocks[3], dim * 8, heads[3])
    net.up4_3 = Upsample(dim * 8)
    net.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
    net.decoder_level3 = stage(num_blocks[2], dim * 4, heads[2])
    net.up3_2 = Upsample(dim * 4)
    net.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
    net.decoder_level2 = stage(num_blocks[1], dim * 2, heads[1])
    net.up2_1 = Upsample(dim * 2)
    net.decoder_level1 = stage(num_blocks[0], dim * 2, heads[0])  # no reduction: 2 dim channels here
    net.refinement = stage(num_refinement_blocks, dim * 2, heads[0])
    net.dual_pixel_task = dual_pixel_task
    if dual_pixel_task:
        net.skip_conv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)


def restormer_decode(net, img):
    """``(patch embedding, decoder_level1's output)`` of a network laid out by :func:`add_restormer_layout`, for an
    ``img`` whose H and W are multiples of 8."""
    embedded = net.patch_embed(img)
    level1 = net.encoder_level1(embedded)
    level2 = net.encoder_level2(net.down1_2(level1))
    level3 = net.encoder_level3(net.down2_3(level2))
    x = net.latent(net.down3_4(level3))
    x = net.decoder_level3(net.reduce_chan_level3(torch.cat([net.up4_3(x), level3], dim=1)))
    x = net.decoder_level2(net.reduce_chan_level2(torch.cat([net.up3_2(x), level2], dim=1)))
    return embedded, net.decoder_level1(torch.cat([net.up2_1(x), level1], dim=1))


@ARCH_REGISTRY.register()
class Restormer(nn.Module):
    """Restormer with the authors' arguments.

    Args:
        inp_channels (int): input channels (6 for the dual-pixel task). Default: 3.
        out_channels (int): output channels. Default: 3.
        dim (int): channels of level 1 (levels 2, 3, 4: 2x, 4x, 8x). Default: 48.
        num_blocks (list[int]): Restormer blocks per level 1..4 (levels 1..3 also set the decoder's). Default:
            [4, 6, 6, 8].
        num_refinement_blocks (int): blocks after the decoder. Default: 4.
        heads (list[int]): attention heads per level. Default: [1, 2, 4, 8].
        ffn_expansion_factor (float): hidden width of the feed-forward networks, times the level's channels.
            Default: 2.66.
        bias (bool): biases in the blocks' convolutions, the 1x1 reductions and the output conv. Default: False.
        LayerNorm_type (str): ``WithBias`` or ``BiasFree``. Default: ``WithBias``.
        dual_pixel_task (bool): dual-pixel defocus deblurring (set ``inp_channels: 6``). Default: False.
    """

    def __init__(self, inp_channels=3, out_channels=3, dim=48, num_blocks=(4, 6, 6, 8), num_refinement_blocks=4,
                 heads=(1, 2, 4, 8), ffn_expansion_factor=2.66, bias=False, LayerNorm_type='WithBias',
                 dual_pixel_task=False):
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError(f'Restormer: num_blocks and heads need 4 entries (one per level); got '
                             f'{list(num_blocks)}, {list(heads)}.')

        def stage(n, channels, num_heads):
            return transformer_stage(n, channels, num_heads, ffn_expansion_factor, bias, LayerNorm_type)

        add_restormer_layout(self, stage, inp_channels, dim, num_blocks, num_refinement_blocks, heads, bias,
                             dual_pixel_task)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, inp_img):
        """(B, inp_channels, H, W) -> (B, out_channels, H, W), any H, W >= 1 (see the module doc on padding)."""
        h, w = inp_img.shape[-2:]
        return self.restore(pad_to_multiple(inp_img, SIZE_MULTIPLE))[..., :h, :w]

    def restore(self, img):
        """The authors' forward: ``img``'s H and W must be multiples of 8."""
        embedded, x = restormer_decode(self, img)
        x = self.refinement(x)
        if self.dual_pixel_task:
            return self.output(x + self.skip_conv(embedded))
        return self.output(x) + img
