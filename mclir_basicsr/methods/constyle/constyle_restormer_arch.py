"""ConStyleRestormer: a Restormer-block U-Net prompted by ConStyle (Fan et al., Dongqi-Fan/IRConStyle), registered
as ``ConStyleRestormer``.

ConStyleNAFNet's U-Net (:mod:`.constyle_nafnet_arch`) with Restormer blocks (:mod:`mclir_basicsr.archs.
restormer_blocks`): three encoder levels (``dim``, ``2 dim``, ``3 dim`` channels; ``left_blk_num`` blocks with
``heads[0..2]`` heads), a bottleneck of ``4 dim`` (``heads[3]``), a decoder (``right_blk_num``; ``4 dim``,
``3 dim``, ``2 dim`` channels with ``heads[2..0]``), then ``num_refinement_blocks`` blocks and a 3x3 output conv,
plus the input. The prompter's features at 1/2, 1/4, 1/8 pass a 1x1 conv to ``dim`` channels and a PReLU (the
NAFNet variant: LeakyReLU) and are concatenated at the matching encoder level; its code ``q2`` passes a linear layer
to ``4 dim`` and gates the bottleneck: ``fuse(cat[b, b * q])``. Defaults are the authors' (their option files name
``type: ConStyleRestormer`` with no arguments): 16,765,792 parameters with the key encoder (``Train: true``, their
training model), 15,574,960 without (their inference model). H and W: the input is padded to a multiple of 8
(reflection; replication where the image is too small) and the output cropped back, so inputs of those sizes give
the authors' outputs (their code accepts no other sizes).

The authors' checkpoints (their names, their queue layout) load as they are (:mod:`.constyle_authors_keys`).

``net(lq)`` restores (prompter query encoder + U-Net), so validation, test, EMA and history copies use it as any
restorer; ``ConStyleModel`` calls :meth:`ConStyleRestormer.forward` with ``gt`` for the contrastive pass.
"""
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from ...archs.restormer_blocks import transformer_stage
from .constyle_arch import ConStyle
from .constyle_nafnet_arch import Down, Up
from .prompted_restorer import PromptedUNet


def _prompt(cin, dim):
    return nn.Sequential(nn.Conv2d(cin, dim, 1, bias=False), nn.PReLU(dim))


@ARCH_REGISTRY.register()
class ConStyleRestormer(PromptedUNet):
    """ConStyleRestormer with the authors' arguments (``constyle`` is ours).

    Args:
        inp_channels (int): input channels. Default: 3.
        dim (int): channels of level 1 (a multiple of 4). Default: 48.
        left_blk_num (list[int]): Restormer blocks of encoder levels 1..3. Default: [4, 6, 6].
        bottom_blk_num (int): blocks of the bottleneck. Default: 8.
        right_blk_num (list[int]): blocks of decoder levels 1..3. Default: [4, 6, 6].
        num_refinement_blocks (int): blocks before the output conv. Default: 4.
        heads (list[int]): attention heads of levels 1..3 and the bottleneck. Default: [1, 2, 4, 8].
        ffn_expansion_factor (float): hidden width of the feed-forward networks, times the channels. Default: 2.66.
        bias (bool): biases in the blocks' convolutions, the bottleneck fusion and the output conv. Default: False.
        LayerNorm_type (str): ``WithBias`` or ``BiasFree``. Default: ``WithBias``.
        out_channels (int): output channels (the input is added: equal to ``inp_channels``). Default: 3.
        Train (bool): build the prompter's key encoder and queue (contrastive training; the authors' checkpoints
            hold them). Default: True.
        constyle (dict): keyword arguments of :class:`~mclir_basicsr.methods.constyle.constyle_arch.ConStyle`
            (queue size, momentum, temperature, enqueue). Default: the authors'.
    """

    def __init__(self, inp_channels=3, dim=48, left_blk_num=(4, 6, 6), bottom_blk_num=8, right_blk_num=(4, 6, 6),
                 num_refinement_blocks=4, heads=(1, 2, 4, 8), ffn_expansion_factor=2.66, bias=False,
                 LayerNorm_type='WithBias', out_channels=3, Train=True, constyle=None):
        super().__init__()
        if len(left_blk_num) != 3 or len(right_blk_num) != 3 or len(heads) != 4 or dim % 4:
            raise ValueError(f'ConStyleRestormer: left_blk_num and right_blk_num need 3 entries, heads 4 and dim a '
                             f'multiple of 4; got {list(left_blk_num)}, {list(right_blk_num)}, {list(heads)}, {dim}.')
        if out_channels != inp_channels:
            raise ValueError(f'ConStyleRestormer adds its input to its output: out_channels ({out_channels}) must '
                             f'equal inp_channels ({inp_channels}).')

        def stage(n, channels, num_heads):
            return transformer_stage(n, channels, num_heads, ffn_expansion_factor, bias, LayerNorm_type)

        self.prompter = ConStyle(**dict(constyle or {}, momentum_encoder=bool(Train)))
        code = self.prompter.encoder_q.head2[0].out_features
        self.embed = nn.Conv2d(inp_channels, dim, 3, padding=1, bias=False)  # theirs: bias-free whatever ``bias``
        self.prompts = nn.ModuleList(_prompt(c, dim) for c in (32, 64, 128))
        self.encoders = nn.ModuleList(stage(n, dim * (i + 1), heads[i]) for i, n in enumerate(left_blk_num))
        self.downs = nn.ModuleList(Down(dim * (i + 1)) for i in range(3))
        self.bottleneck = stage(bottom_blk_num, dim * 4, heads[3])
        self.gate = nn.Linear(code, dim * 4)
        self.fuse = nn.Conv2d(dim * 8, dim * 3, 1, bias=bias)
        self.ups = nn.ModuleList([Up(dim * 3, dim, dim * 2), Up(dim * 4, dim * 2, dim * 3),
                                  Up(dim * 3, dim * 3, dim * 4)])  # level i: from level i + 1's decoder
        self.decoders = nn.ModuleList(stage(n, dim * (i + 2), heads[i]) for i, n in enumerate(right_blk_num))
        self.refinement = stage(num_refinement_blocks, dim * 2, heads[0])
        self.ending = nn.Conv2d(dim * 2, out_channels, 3, padding=1, bias=bias)
        self.load_authors_checkpoints()
