"""ConStyleNAFNet: a NAFNet-block U-Net prompted by ConStyle (Fan et al.), registered as ``ConStyleNAFNet``.

Three encoder levels (``dim``, ``2 dim``, ``3 dim`` channels; ``left_blk_num`` NAFBlocks each), a bottleneck of
``4 dim`` and a decoder (``right_blk_num``), with pixel-(un)shuffle resampling. The prompter's features at 1/2, 1/4,
1/8 pass a 1x1 conv to ``dim`` channels and are concatenated at the matching encoder level; its code ``q2`` passes a
linear layer to ``4 dim`` and gates the bottleneck: ``fuse(cat[b, b * q])``. Defaults are the paper's network:
13,930,704 parameters with the key encoder (``Train: true``, the authors' training model), 12,739,872 without
(their inference model), as the authors' code counts. H and W: the input is padded to a multiple of 8 and the
output cropped back.

The authors' checkpoints (their names, their queue layout) load as they are (:mod:`.constyle_authors_keys`).

``net(lq)`` restores (prompter query encoder + U-Net), so validation, test, EMA and history copies use it as any
restorer; ``ConStyleModel`` calls :meth:`ConStyleNAFNet.forward` with ``gt`` for the contrastive pass.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from ...archs.nafnet_arch import NAFBlock
from .constyle_arch import ConStyle
from .prompted_restorer import PromptedUNet


def _blocks(channels, n):
    return nn.Sequential(*[NAFBlock(channels) for _ in range(n)])


def _prompt(cin, dim):
    return nn.Sequential(nn.Conv2d(cin, dim, 1, bias=False), nn.LeakyReLU(0.1, True))


class Down(nn.Module):
    """3x3 conv to a quarter of the channels, pixel-unshuffle (same channels, half size), concat the prompt."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels // 4, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x, prompt):
        return torch.cat([self.body(x), prompt], dim=1)


class Up(nn.Module):
    """3x3 conv to 4x channels, pixel-shuffle (double size), concat the skip, 1x1 conv to ``out_channels``."""

    def __init__(self, channels, skip_channels, out_channels):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels * 4, 3, padding=1, bias=False), nn.PixelShuffle(2))
        self.fuse = nn.Conv2d(channels + skip_channels, out_channels, 1, bias=False)

    def forward(self, x, skip):
        return self.fuse(torch.cat([self.body(x), skip], dim=1))


@ARCH_REGISTRY.register()
class ConStyleNAFNet(PromptedUNet):
    """The authors' constructor arguments (see the module doc); ``constyle``: keyword arguments of
    :class:`~mclir_basicsr.archs.constyle_arch.ConStyle` (queue size, momentum, temperature, enqueue)."""

    def __init__(self, img_channel=3, dim=48, left_blk_num=(7, 8, 9), bottom_blk_num=9, right_blk_num=(7, 8, 9),
                 Train=True, constyle=None):  # noqa: N803  (the authors' option key)
        super().__init__()
        if len(left_blk_num) != 3 or len(right_blk_num) != 3 or dim % 4:
            raise ValueError(f'ConStyleNAFNet: left_blk_num and right_blk_num need 3 entries and dim a multiple of 4; '
                             f'got {list(left_blk_num)}, {list(right_blk_num)}, {dim}.')
        self.prompter = ConStyle(**dict(constyle or {}, momentum_encoder=bool(Train)))
        code = self.prompter.encoder_q.head2[0].out_features
        self.embed = nn.Conv2d(img_channel, dim, 3, padding=1, bias=False)
        self.prompts = nn.ModuleList(_prompt(c, dim) for c in (32, 64, 128))
        self.encoders = nn.ModuleList(_blocks(dim * (i + 1), n) for i, n in enumerate(left_blk_num))
        self.downs = nn.ModuleList(Down(dim * (i + 1)) for i in range(3))
        self.bottleneck = _blocks(dim * 4, bottom_blk_num)
        self.gate = nn.Linear(code, dim * 4)
        self.fuse = nn.Conv2d(dim * 8, dim * 3, 1, bias=False)
        self.ups = nn.ModuleList([Up(dim * 3, dim, dim * 2), Up(dim * 4, dim * 2, dim * 3),
                                  Up(dim * 3, dim * 3, dim * 4)])  # level i: from level i + 1's decoder
        self.decoders = nn.ModuleList(_blocks(dim * (i + 2), n) for i, n in enumerate(right_blk_num))
        self.ending = nn.Conv2d(dim * 2, img_channel, 3, padding=1, bias=False)
        self.load_authors_checkpoints()
