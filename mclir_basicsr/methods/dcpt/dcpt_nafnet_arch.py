"""The DCPT authors' NAFNets, registered as ``NAFNetBaseline`` and ``DCPTNAFNet`` (their ``NAFNet``).

Reference: Hu et al., "Universal Image Restoration Pre-training via Degradation Classification", ICLR 2025; code
hoatong2411/dcpt at edd4c7ac320de52224ef1b8665ecdfb86e3e25dd (``basicsr/archs/nafnet_arch.py``).

Their ``NAFNet`` is not megvii's (our ``NAFNet``): it always uses test-time local statistics with a 128 px training
crop (our ``NAFNetLocal`` with ``train_size: [1, 3, 128, 128]``), names its decoder stages ``decoder0`` ..
``decoder{E-1}`` (megvii: ``decoders.<i>``), takes a ``window_size`` argument (read by their models to pad the input;
the network ignores it) and ``forward(inp, hook=True)`` stops after the decoder (returns None). Their
``NAFNetBaseline`` is the same network without local statistics (not megvii's ``Baseline``). Blocks, widths and
all other state-dict keys are megvii's, so both load the DCPT checkpoints (``dcpt_nafnet_5d.pth``) with
``strict=True`` and hold 67,888,835 parameters (664 keys) at width 64, ``enc_blk_nums: [1, 1, 1, 28]``.

Padding: theirs needs H and W multiples of 2**len(enc_blk_nums) (16 in their files; their 5d files pad only to
``window_size: 8``, so their validation fails on e.g. 481x321). Ours zero-pads bottom/right to that multiple, as
megvii's NAFNet, and crops the output back: inputs theirs accepts give their outputs, other sizes work too.

Known differences: building theirs runs one forward pass of ``torch.rand(train_size)`` (it draws from the global
RNG and leaves the network in eval mode); ours computes the pooling windows without running anything, and the
random initialisation is drawn in another order (same distributions), so a seed gives other initial weights.
"""
from basicsr.utils.registry import ARCH_REGISTRY

from ...archs.local_statistics import check_train_size, use_local_statistics
from ...archs.nafnet_arch import NAFBlock, NAFUNet

TRAIN_SIZE = (1, 3, 128, 128)  # the crops DCPT trains on: their NAFNet's default


@ARCH_REGISTRY.register()
class NAFNetBaseline(NAFUNet):
    """The DCPT authors' ``NAFNetBaseline``: megvii's NAFNet with decoder stages ``decoder0`` .. ``decoder{E-1}``.

    Hook ``decoder<i>`` (i = 0 deepest) for decoder features: (N, width * 2**(E-1-i), Hp / 2**(E-1-i),
    Wp / 2**(E-1-i)) with E = len(enc_blk_nums) and Hp, Wp the padded size. DCPT's ``hook_names: decoder`` means
    all of them; reversed (last called first) they are the classifier's ``feature_dims: [64, 128, 256, 512]`` at
    width 64.

    Args:
        img_channel (int): Channels of input and output. Default: 3.
        width (int): Channels of the first level. Default: 16.
        middle_blk_num (int): NAFBlocks at the bottleneck. Default: 1.
        enc_blk_nums (list[int]): NAFBlocks per encoder level. Default: [].
        dec_blk_nums (list[int]): NAFBlocks per decoder level (deepest first), as many as encoder levels.
            Default: [].
        window_size (int): Kept for their models, which pad inputs to a multiple of it; unused here. Default: 8.
    """

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[], window_size=8):
        super().__init__(NAFBlock, img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)
        self.window_size = window_size
        # Their decoder stages are attributes registered after ``downs``: move ours there, same key order as theirs.
        stages = list(self.decoders)
        del self.decoders
        for i, stage in enumerate(stages):
            setattr(self, f'decoder{i}', stage)

    def decoder_stages(self):
        """The decoder stages, deepest first (``decoder0``, ``decoder1``, ...)."""
        return [getattr(self, f'decoder{i}') for i in range(len(self.ups))]

    def forward(self, inp, hook=False):
        """``inp`` (N, img_channel, H, W) -> restored image of the same shape; ``hook=True``: runs up to the last
        decoder stage only (for feature hooks) and returns None, as theirs."""
        h, w = inp.shape[-2:]
        x = self._pad(inp)
        feat = self.decode(x)
        if hook:
            return None
        return (x + self.ending(feat))[..., :h, :w]


@ARCH_REGISTRY.register()
class DCPTNAFNet(NAFNetBaseline):
    """The DCPT authors' ``NAFNet``: :class:`NAFNetBaseline` with test-time local statistics (each attention pools
    over a window 1.5x the ``train_size`` crop where the map is larger; see
    :mod:`mclir_basicsr.archs.local_statistics`). Same weights and keys as :class:`NAFNetBaseline`.

    Args:
        train_size (list[int]): The training batch shape [N, C, H, W]. Default: [1, 3, 128, 128] (theirs).
        fast_imp (bool): The faster, approximate window means of NAFNet's authors. Default: False.
        Others: as :class:`NAFNetBaseline`.
    """

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[], dec_blk_nums=[], window_size=8,
                 train_size=TRAIN_SIZE, fast_imp=False):
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, window_size)
        self.local_pools = use_local_statistics(self.stage_levels(), check_train_size(train_size, 'DCPTNAFNet'),
                                                self.padder_size, fast_imp)
