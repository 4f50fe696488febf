"""ConStyleMaxim: a MAXIM-block U-Net prompted by ConStyle (Fan et al., Dongqi-Fan/IRConStyle), registered as
``ConStyleMaxim``.

Built from :mod:`mclir_basicsr.archs.maxim_arch`'s blocks (multi-axis gMLP, RCAB, cross gating), wired as the
authors' ``archs/ConStyle_Maxim_arch.py``: the image at 1, 1/2, 1/4 enters three encoder blocks (``f``, ``2f``,
``3f`` channels), each followed by a pixel-unshuffle downsampling that concatenates the prompter's feature at that
scale (1x1 conv to ``f``); two bottleneck blocks at 1/8 (``4f``); the prompter's code gates the bottleneck
(``fuse(cat[b, b * gate(q2)])``, ``3f``); three cross-gating blocks fuse the resized encoder features with it;
three pixel-shuffle decoder levels take the gated skips; ``output + input``. Defaults are the authors' (``bias``
false, unlike ``Maxim``): 9,292,496 parameters with the key encoder and queue (``Train: true``, their option
files), 8,101,664 without, as their code counts.

Sizes: their network needs H and W multiples of 64 (at the defaults); this one pads (bottom and right, reflection;
replication for images smaller than the padding) to the multiple its layouts need (``size_multiple``) and crops the
output back, so on multiples of 64 it gives their outputs.

Names: the authors' checkpoints (their names, their queue layout (128, K), their ``queue_ptr`` [1]) load as they
are through the ConStyle renaming rules of :mod:`.constyle_authors_keys`, written for ConStyleNAFNet; the modules
here carry the names those rules give (``Process_Module_l1`` -> ``encoders.0``, ``DC1.down`` -> ``downs.0.body``,
``AffineTransform0`` -> ``prompts.0``, ``mlp.0`` -> ``gate``, ``local_fusion`` -> ``fuse``, ``UC1.up`` ->
``ups.0.body``, ``Process_Module_r1`` -> ``decoders.0``, ``Finetune_Module.0`` -> ``ending``); the names no rule
touches (``stage_input_conv_*``, ``UpSampleRatio_*``, ``cross_gating_block_*``) are theirs. Each encoder and
decoder block's ``cross_gating_block`` is built and never used, as in theirs (kept for the checkpoints).

``net(lq)`` restores (prompter query encoder + U-Net), as :class:`.constyle_nafnet_arch.ConStyleNAFNet`;
``ConStyleModel`` calls :meth:`ConStyleMaxim.forward` with ``gt`` for the contrastive pass.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from ...archs.maxim_arch import BottleneckBlock, DecoderBlock, EncoderBlock, Resample, level_layouts
from ...archs.maxim_blocks import CrossGatingBlock, nearest_downsample, resize, size_multiple
from .constyle_arch import ConStyle
from .constyle_nafnet_arch import Down
from .prompted_restorer import PromptedRestorer

PROMPT_CHANNELS = (32, 64, 128)  # the prompter's features at 1/2, 1/4, 1/8


class PixelShuffleUp(nn.Module):
    """3x3 conv to 4x channels (no bias), pixel-shuffle: same channels at twice the size."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels * 4, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)


@ARCH_REGISTRY.register()
class ConStyleMaxim(PromptedRestorer):
    """See the module doc.

    Args:
        features (int): ``f``, channels at full scale; a multiple of 4. Default: 32.
        bias (bool): biases of the MAXIM blocks and input/output convs (some are always on, as theirs). Default:
            false.
        bottom_blk_num (int): bottleneck blocks. Default: 2.
        lrelu_slope, use_global_mlp, high_res_stages, block_size_hr, block_size_lr, grid_size_hr, grid_size_lr,
            block_gmlp_factor, grid_gmlp_factor, input_proj_factor, channels_reduction, num_outputs,
            dropout_rate: as :class:`~mclir_basicsr.archs.maxim_arch.Maxim`.
        Train (bool): build the prompter's key encoder and queue (training). Default: true.
        constyle (dict): keyword arguments of :class:`.constyle_arch.ConStyle` (queue size, momentum, ...).
    """

    def __init__(self, features=32, bias=False, bottom_blk_num=2, lrelu_slope=0.2, use_global_mlp=True,
                 high_res_stages=2, block_size_hr=(16, 16), block_size_lr=(8, 8), grid_size_hr=(16, 16),
                 grid_size_lr=(8, 8), block_gmlp_factor=2, grid_gmlp_factor=2, input_proj_factor=2,
                 channels_reduction=4, num_outputs=3, dropout_rate=0., Train=True, constyle=None):  # noqa: N803
        super().__init__()
        if features % 4:
            raise ValueError(f'ConStyleMaxim: features must be a multiple of 4 (pixel-unshuffle levels), got '
                             f'{features}.')
        f = features
        self.prompter = ConStyle(**dict(constyle or {}, momentum_encoder=bool(Train)))
        code = self.prompter.encoder_q.head2[0].out_features
        layouts = [level_layouts(lv, high_res_stages, block_size_hr, grid_size_hr, block_size_lr) for lv in range(3)]
        bottleneck = (tuple(block_size_lr), tuple(grid_size_lr))
        self.size_multiple = size_multiple([(lv, *layouts[lv]) for lv in range(3)] + [(3, *bottleneck)])
        common = dict(lrelu_slope=lrelu_slope, block_gmlp_factor=block_gmlp_factor, grid_gmlp_factor=grid_gmlp_factor,
                      input_proj_factor=input_proj_factor, channels_reduction=channels_reduction,
                      dropout_rate=dropout_rate, bias=bias, use_global_mlp=use_global_mlp, downsample_conv=False)
        for lv in range(3):  # every scale of the image to f channels
            setattr(self, f'stage_input_conv_{lv}', nn.Conv2d(3, f, 3, padding=1, bias=bias))
        # level lv: cat[previous level + prompt (or the image features), image features] -> (f, 2f, 3f)
        self.encoders = nn.ModuleList(EncoderBlock(cin, cout, *layouts[lv], **common)
                                      for lv, (cin, cout) in enumerate([(2 * f, f), (3 * f, 2 * f), (4 * f, 3 * f)]))
        self.downs = nn.ModuleList(Down(c) for c in (f, 2 * f, 3 * f))
        self.prompts = nn.ModuleList(nn.Sequential(nn.Conv2d(c, f, 1, bias=False), nn.LeakyReLU(0.1, True))
                                     for c in PROMPT_CHANNELS)
        self.bottleneck = nn.Sequential(*[
            BottleneckBlock(4 * f, *bottleneck, block_gmlp_factor, grid_gmlp_factor, input_proj_factor, bias,
                            dropout_rate) for _ in range(bottom_blk_num)])
        self.gate = nn.Linear(code, 4 * f)
        self.fuse = nn.Conv2d(8 * f, 3 * f, 1, bias=False)
        # cross gating at level lv: the level-0 features only resized, levels 1 and 2 also projected to f channels
        for lv in (2, 1, 0):
            for j, c in ((1, 2 * f), (2, 3 * f)):
                setattr(self, f'UpSampleRatio_{3 * (2 - lv) + j}', Resample(c, f, 2.**(j - lv), bias))
            setattr(self, f'cross_gating_block_{lv}',
                    CrossGatingBlock(3 * f, f, *layouts[lv], 3 * f if lv == 2 else f, True, bias, dropout_rate))
        self.ups = nn.ModuleList(PixelShuffleUp(c) for c in (2 * f, 3 * f, 3 * f))
        self.decoders = nn.ModuleList(DecoderBlock(cin, cout, block_size=layouts[lv][0], grid_size=layouts[lv][1],
                                                   **common)
                                      for lv, (cin, cout) in enumerate([(5 * f, 2 * f), (6 * f, 2 * f),
                                                                        (6 * f, 3 * f)]))
        self.ending = nn.Conv2d(2 * f, num_outputs, 3, padding=1, bias=bias)
        self.load_authors_checkpoints()

    def restore(self, lq, code, feats):
        """The U-Net on ``lq`` (padded already) prompted by the code ``q2`` and the prompter's ``feats``."""
        scales = [getattr(self, f'stage_input_conv_{lv}')(nearest_downsample(lq, 2**lv) if lv else lq)
                  for lv in range(3)]
        x, levels = scales[0], []
        for lv in range(3):
            levels.append(self.encoders[lv](x, skip=scales[lv]))
            x = self.downs[lv](levels[-1], self.prompts[lv](feats[lv]))
        x = self.bottleneck(x)
        x = self.fuse(torch.cat([x, x * self.gate(code)[..., None, None]], dim=1))
        skips, global_feature = [], x
        for lv in (2, 1, 0):
            signal = [_resize(levels[0], 2.**-lv)]
            signal += [getattr(self, f'UpSampleRatio_{3 * (2 - lv) + j}')(levels[j]) for j in (1, 2)]
            skip, global_feature = getattr(self, f'cross_gating_block_{lv}')(torch.cat(signal, 1), global_feature)
            skips.append(skip)
        for lv in (2, 1, 0):  # the gated skips, deepest first, resized to level lv
            signal = torch.cat([_resize(skip, 2.**(2 - j - lv)) for j, skip in enumerate(skips)], 1)
            x = self.decoders[lv](self.ups[lv](x), signal)
        return self.ending(x) + lq


def _resize(x, ratio):
    return x if ratio == 1 else resize(x, ratio)
