"""``IRConStyleNAFNet``: NAFNet as Dongqi-Fan/IRConStyle's option files name it (``type: NAFNet``, no arguments).

Their ``archs/NAFNet_arch.py`` is megvii's NAFNet with other defaults: width 64, 7 middle blocks, encoder and decoder
levels of [5, 6, 7, 7] blocks (87,404,483 parameters). Files recognised as IRConStyle's have their ``NAFNet`` read as
this class (:mod:`.irconstyle_files`); the keys are NAFNet's, so their checkpoints load strictly.
"""
from basicsr.utils.registry import ARCH_REGISTRY

from ...archs.nafnet_arch import NAFNet


@ARCH_REGISTRY.register()
class IRConStyleNAFNet(NAFNet):
    """:class:`~mclir_basicsr.archs.nafnet_arch.NAFNet` with IRConStyle's defaults (module doc)."""

    def __init__(self, img_channel=3, width=64, middle_blk_num=7, enc_blk_nums=(5, 6, 7, 7),
                 dec_blk_nums=(5, 6, 7, 7)):
        super().__init__(img_channel, width, middle_blk_num, list(enc_blk_nums), list(dec_blk_nums))
