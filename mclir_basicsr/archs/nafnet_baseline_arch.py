"""NAFNet's "Baseline" (Chen et al., ECCV 2022, section 3.2): the U-Net of NAFNet with GELU, squeeze-and-excitation
channel attention and no gates; registered as ``Baseline`` and ``BaselineLocal`` (test-time local statistics).

Module tree, state-dict keys and constructor arguments follow megvii-research/NAFNet's ``Baseline_arch.py``, so their
option files (``options/*/GoPro|SIDD/Baseline-width*.yml``) and released weights work unchanged::

    network_g:
      type: Baseline
      width: 32
      enc_blk_nums: [2, 2, 4, 8]
      middle_blk_num: 12
      dec_blk_nums: [2, 2, 2, 2]
      dw_expand: 1
      ffn_expand: 2
"""
import functools
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY

from .local_statistics import check_train_size, use_local_statistics
from .nafnet_arch import NAFUNet, TwoBranchBlock


class BaselineBlock(TwoBranchBlock):
    """A NAFBlock with GELU instead of SimpleGate and squeeze-and-excitation (pool, conv, ReLU, conv, sigmoid)
    instead of the simplified channel attention; ``beta``/``gamma`` start at zero (the block starts as identity).

    Args:
        c (int): Channels in and out.
        DW_Expand (int): Channel expansion of the depthwise branch. Default: 1.
        FFN_Expand (int): Channel expansion of the feed-forward branch. Default: 2.
        drop_out_rate (float): Dropout after each branch; 0 disables it. Default: 0.
    """

    def __init__(self, c, DW_Expand=1, FFN_Expand=2, drop_out_rate=0.):
        super().__init__()
        hidden = c * DW_Expand
        self.conv1 = nn.Conv2d(c, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.conv3 = nn.Conv2d(hidden, c, 1)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden, hidden // 2, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(hidden // 2, hidden, 1), nn.Sigmoid())
        self.gelu = nn.GELU()
        ffn = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn, c, 1)
        self.add_residual_parts(c, drop_out_rate)

    def activate(self, x):
        return self.gelu(x)

    def attend(self, x):
        return self.se(x)


@ARCH_REGISTRY.register()
class Baseline(NAFUNet):
    """NAFNet's baseline U-Net (module doc); the layout, padding and hookable modules are :class:`NAFNet`'s.

    Args:
        img_channel (int): Channels of input and output. Default: 3.
        width (int): Channels of the first level. Default: 16.
        middle_blk_num (int): Blocks at the bottleneck. Default: 1.
        enc_blk_nums (list[int]): Blocks per encoder level. Default: [].
        dec_blk_nums (list[int]): Blocks per decoder level (deepest first). Default: [].
        dw_expand (int): Expansion of each block's depthwise branch. Default: 1.
        ffn_expand (int): Expansion of each block's feed-forward branch. Default: 2.
    """

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[], dw_expand=1,
                 ffn_expand=2):
        block = functools.partial(BaselineBlock, DW_Expand=dw_expand, FFN_Expand=ffn_expand)
        super().__init__(block, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)


@ARCH_REGISTRY.register()
class BaselineLocal(Baseline):
    """:class:`Baseline` with test-time local statistics, as :class:`~.nafnet_arch.NAFNetLocal` (``train_size``,
    ``fast_imp``)."""

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[], dw_expand=1,
                 ffn_expand=2, train_size=(1, 3, 256, 256), fast_imp=False):
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, dw_expand, ffn_expand)
        self.local_pools = use_local_statistics(self.stage_levels(), check_train_size(train_size, 'BaselineLocal'),
                                                self.padder_size, fast_imp)
