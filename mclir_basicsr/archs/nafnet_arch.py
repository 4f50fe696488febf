"""NAFNet: a nonlinear-activation-free U-Net for image restoration, registered as ``NAFNet`` in ``ARCH_REGISTRY``.

Reference:
    L. Chen, X. Chu, X. Zhang, J. Sun. "Simple Baselines for Image Restoration". ECCV 2022 (arXiv:2204.04676).

The module tree and state-dict keys follow the authors' release (megvii-research/NAFNet), so their checkpoints
load with ``strict=True`` and ``network_g`` blocks from their option files work unchanged (same constructor
arguments and defaults)::

    network_g:
      type: NAFNet
      width: 64
      enc_blk_nums: [2, 2, 4, 8]
      middle_blk_num: 12
      dec_blk_nums: [2, 2, 2, 2]

``NAFNetLocal`` (the GoPro/REDS files) is the same network with test-time local statistics
(:mod:`.local_statistics`): its attention pools over a window 1.5x its ``train_size`` crop instead of the whole image;
weights and keys are NAFNet's. ``Baseline``/``BaselineLocal`` (the paper's baseline) are in
:mod:`.nafnet_baseline_arch`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from .local_statistics import check_train_size, use_local_statistics


class _ChannelLayerNorm(torch.autograd.Function):
    """``w * (x - mean_c x) / sqrt(var_c x + eps) + b`` with its gradient written out: autograd would keep every
    intermediate of the plain expression for the backward pass; this keeps the normalised ``y`` and the variance
    (less memory, fewer kernels; the forward is the same arithmetic as the plain expression)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + eps)
        ctx.save_for_backward(y, var, weight)
        ctx.eps = eps
        return y * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, grad):
        y, var, weight = ctx.saved_tensors
        g = grad * weight.view(1, -1, 1, 1)
        # d/dx of the normalisation: remove the mean of g and its component along y, scale by 1 / std
        grad_x = (g - g.mean(dim=1, keepdim=True) - y * (g * y).mean(dim=1, keepdim=True)) / torch.sqrt(var + ctx.eps)
        grad_weight = (grad * y).sum(dim=(0, 2, 3))
        grad_bias = grad.sum(dim=(0, 2, 3))
        return grad_x.to(y.dtype), grad_weight.to(weight.dtype), grad_bias.to(weight.dtype), None


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel axis of an NCHW tensor, with a per-channel affine transform.

    Args:
        channels (int): Number of channels C.
        eps (float): Added to the variance. Default: 1e-6 (as in the reference).
    """

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        return _ChannelLayerNorm.apply(x, self.weight, self.bias, self.eps)


class SimpleGate(nn.Module):
    """Splits the channels in two halves and multiplies them: (N, 2C, H, W) -> (N, C, H, W)."""

    def forward(self, x):
        first, second = x.chunk(2, dim=1)
        return first * second


class SimplifiedChannelAttention(nn.Sequential):
    """Channel weights from a global average pool and a 1x1 conv (no activation): (N, C, H, W) -> (N, C, 1, 1).

    A ``Sequential`` so that the conv's keys are ``sca.1.weight``/``sca.1.bias`` as in the released weights.
    """

    def __init__(self, channels):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1))


class TwoBranchBlock(nn.Module):
    """NAFNet's block skeleton, shared with its Baseline: a depthwise-conv branch and a feed-forward branch, each
    normalised and added back scaled (``beta``, ``gamma``: zero at start, so a fresh block is the identity). A
    subclass builds ``conv1`` .. ``conv5`` and says how it activates and attends (:meth:`activate`, :meth:`attend`)."""

    def add_residual_parts(self, c, drop_out_rate):
        """The norms, dropouts and residual scales, registered last (the authors' state-dict order)."""
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        branch = self.activate(self.conv2(self.conv1(self.norm1(x))))
        branch = self.conv3(branch * self.attend(branch))
        y = x + self.dropout1(branch) * self.beta
        branch = self.conv5(self.activate(self.conv4(self.norm2(y))))
        return y + self.dropout2(branch) * self.gamma


class NAFBlock(TwoBranchBlock):
    """Nonlinear-activation-free block: a gated depthwise-conv branch and a gated FFN, each a scaled residual.

    ``beta`` and ``gamma`` (the residual scales) start at zero, so a fresh block is exactly the identity.

    Args:
        c (int): Number of channels; input and output are (N, c, H, W).
        DW_Expand (int): Channel expansion of the depthwise-conv branch. Default: 2.
        FFN_Expand (int): Channel expansion of the feed-forward branch. Default: 2.
        drop_out_rate (float): Dropout after each branch; 0 disables it. Default: 0.
    """

    def __init__(self, c, DW_Expand=2, FFN_Expand=2, drop_out_rate=0.):
        super().__init__()
        hidden = c * DW_Expand
        self.conv1 = nn.Conv2d(c, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.conv3 = nn.Conv2d(hidden // 2, c, 1)
        self.sca = SimplifiedChannelAttention(hidden // 2)
        self.sg = SimpleGate()
        ffn = c * FFN_Expand
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.add_residual_parts(c, drop_out_rate)

    def activate(self, x):
        return self.sg(x)

    def attend(self, x):
        return self.sca(x)


class NAFUNet(nn.Module):
    """The U-Net of NAFNet and its Baseline, built from ``make_block(channels)`` (see :class:`NAFNet`)."""

    def __init__(self, make_block, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f'{type(self).__name__} needs as many decoder as encoder levels, got '
                             f'enc_blk_nums={enc_blk_nums} and dec_blk_nums={dec_blk_nums}')

        def stage(channels, num_blocks):
            return nn.Sequential(*[make_block(channels) for _ in range(num_blocks)])

        # Registration order follows the reference, so state-dict keys come out in the same order too.
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.middle_blks = stage(width * 2**len(enc_blk_nums), middle_blk_num)
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()

        channels = width
        for num in enc_blk_nums:
            self.encoders.append(stage(channels, num))
            self.downs.append(nn.Conv2d(channels, channels * 2, 2, stride=2))
            channels *= 2
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(channels, channels * 2, 1, bias=False), nn.PixelShuffle(2)))
            channels //= 2
            self.decoders.append(stage(channels, num))
        self.padder_size = 2**len(enc_blk_nums)

    def decoder_stages(self):
        """The decoder stages, deepest first."""
        return list(self.decoders)

    def stage_levels(self):
        """``[(stage, level)]``: every stage of blocks with its U-Net level (0: full resolution)."""
        depth = len(self.encoders)
        return ([(m, i) for i, m in enumerate(self.encoders)] + [(self.middle_blks, depth)] +
                [(m, depth - 1 - j) for j, m in enumerate(self.decoder_stages())])

    def forward(self, x):
        h, w = x.shape[-2:]
        x = self._pad(x)
        out = x + self.ending(self.decode(x))
        return out[..., :h, :w]

    def decode(self, x):
        """The last decoder stage's features of a padded input (before ``ending``)."""
        feat = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle_blks(feat)
        for decoder, up, skip in zip(self.decoder_stages(), self.ups, reversed(skips)):
            feat = decoder(up(feat) + skip)
        return feat

    def _pad(self, x):
        """Zero-pads bottom and right so that H and W become multiples of ``padder_size``."""
        m = self.padder_size
        return F.pad(x, (0, -x.shape[-1] % m, 0, -x.shape[-2] % m))


@ARCH_REGISTRY.register()
class NAFNet(NAFUNet):
    """NAFNet U-Net (Chen et al., ECCV 2022) with a global residual: output = input + ending(features).

    Level i (0-based) of the encoder works on ``width * 2**i`` channels at 1/2**i of the (padded) resolution; each
    ``downs[i]`` is a stride-2 2x2 conv doubling the channels, each ``ups[i]`` a bias-free 1x1 conv followed by
    PixelShuffle(2) halving them, and skips are added. Inputs of any H, W are zero-padded (bottom/right) to a
    multiple of ``2**len(enc_blk_nums)`` and the output is cropped back.

    Intermediate decoder features: hook ``decoders.<j>`` (an ``nn.Sequential`` of NAFBlocks) with
    ``dict(net.named_modules())['decoders.<j>'].register_forward_hook(...)``. With E = len(enc_blk_nums) and
    padded size Hp x Wp, ``decoders.j`` outputs (N, width * 2**(E-1-j), Hp / 2**(E-1-j), Wp / 2**(E-1-j));
    the last one (j = E-1) is full resolution with ``width`` channels. Also hookable: ``middle_blks``
    (bottleneck), ``encoders.<i>``, ``ups.<j>`` and ``ending``. Hooked features are at the padded size.

    Args:
        img_channel (int): Channels of input and output. Default: 3.
        width (int): Channels of the first level. Default: 16.
        middle_blk_num (int): NAFBlocks at the bottleneck. Default: 1.
        enc_blk_nums (list[int]): NAFBlocks per encoder level. Default: [].
        dec_blk_nums (list[int]): NAFBlocks per decoder level (deepest first); same length as enc_blk_nums.
            Default: [].

    Shapes:
        input (N, img_channel, H, W) -> output (N, img_channel, H, W).
    """

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[]):
        super().__init__(NAFBlock, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)


@ARCH_REGISTRY.register()
class NAFNetLocal(NAFNet):
    """:class:`NAFNet` with test-time local statistics (megvii-research/NAFNet's ``NAFNetLocal``, GoPro/REDS files).

    Args:
        train_size (list[int]): The training batch shape [N, C, H, W]; the attention pools over windows 1.5x
            H x W (global where that covers the map). Default: [1, 3, 256, 256].
        fast_imp (bool): The authors' faster, approximate window means. Default: False.
        Others: as :class:`NAFNet`.
    """

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[],
                 train_size=(1, 3, 256, 256), fast_imp=False):
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)
        self.local_pools = use_local_statistics(self.stage_levels(), check_train_size(train_size, 'NAFNetLocal'),
                                                self.padder_size, fast_imp)
