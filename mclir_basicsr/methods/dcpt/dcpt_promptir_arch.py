"""The DCPT authors' PromptIR, registered as ``DCPTPromptIR`` (their ``PromptIR``).

Reference: Hu et al., "Universal Image Restoration Pre-training via Degradation Classification", ICLR 2025; code
hoatong2411/dcpt at edd4c7ac320de52224ef1b8665ecdfb86e3e25dd (``basicsr/archs/promptir_arch.py``).

Theirs is the PromptIR reference (our ``PromptIR``, :mod:`mclir_basicsr.archs.promptir_arch`, same blocks and
numerics) without the six 1x1 convs the reference builds and never uses (``chnl_reduce1..3``,
``reduce_noise_channel_1..3``): 542 state-dict keys and 35,376,967 parameters instead of 548 and 35,592,263, so
their checkpoints (``dcpt_promptir_5d.pth``) do not load strictly into our ``PromptIR``. Also: ``decoder`` defaults
to True, a ``window_size`` argument (their models pad inputs to a multiple of it; unused here) and
``forward(inp, hook=True)`` stops after ``reduce_noise_level1`` (returns None).

Theirs hard-codes the prompt-block channels for ``dim: 48``; ours computes them from ``dim`` (the same at 48).
Padding: theirs needs H and W multiples of 8; ours pads bottom/right to a multiple of 8 (reflection, replication
where the image is too small) and crops back: sizes theirs accepts give their outputs.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from ...archs.padding import pad_to_multiple
from ...archs.promptir_arch import SIZE_MULTIPLE, PromptIR

UNUSED_MODULES = ('chnl_reduce1', 'chnl_reduce2', 'chnl_reduce3', 'reduce_noise_channel_1', 'reduce_noise_channel_2',
                  'reduce_noise_channel_3')  # built by the PromptIR reference, never called, absent from DCPT's


@ARCH_REGISTRY.register()
class DCPTPromptIR(PromptIR):
    """The DCPT authors' ``PromptIR`` (see the module doc).

    Args:
        decoder (bool): Build the prompt blocks (the published model; False cannot run, as in theirs).
            Default: True.
        window_size (int): Kept for their models, which pad inputs to a multiple of it. Default: 8.
        Others: as :class:`~mclir_basicsr.archs.promptir_arch.PromptIR` (``inp_channels``, ``out_channels``,
        ``dim``, ``num_blocks``, ``num_refinement_blocks``, ``heads``, ``ffn_expansion_factor``, ``bias``,
        ``LayerNorm_type``).

    Hooks: DCPT reads ``reduce_noise_level1`` (2 dim channels, H/2), ``reduce_noise_level2`` (4 dim, H/4) and
    ``reduce_noise_level3`` (4 dim, H/8): reversed, the classifier's ``feature_dims: [96, 192, 192]`` at dim 48.
    """

    def __init__(self, inp_channels=3, out_channels=3, dim=48, num_blocks=(4, 6, 6, 8), num_refinement_blocks=4,
                 heads=(1, 2, 4, 8), ffn_expansion_factor=2.66, bias=False, LayerNorm_type='WithBias', decoder=True,
                 window_size=8):
        super().__init__(inp_channels, out_channels, dim, list(num_blocks), num_refinement_blocks, list(heads),
                         ffn_expansion_factor, bias, LayerNorm_type, decoder)
        for name in UNUSED_MODULES:  # the rest keeps the reference's order, which is theirs
            delattr(self, name)
        self.window_size = window_size

    def forward(self, inp_img, hook=False):
        """(B, inp_channels, H, W) -> (B, out_channels, H, W), any H, W >= 1 (padded to multiples of 8 inside);
        ``hook`` true: runs up to ``reduce_noise_level1`` (for feature hooks) and returns None."""
        if not self.decoder:
            return super().forward(inp_img)  # raises the reference's explanation
        h, w = inp_img.shape[-2:]
        x = pad_to_multiple(inp_img, SIZE_MULTIPLE)
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        feat = self._interact(3, self.latent(self.down3_4(enc3)))
        feat = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(feat), enc3], dim=1)))
        feat = self._interact(2, feat)
        feat = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(feat), enc2], dim=1)))
        feat = self._interact(1, feat)
        if hook:
            return None
        feat = self.decoder_level1(torch.cat([self.up2_1(feat), enc1], dim=1))
        out = self.output(self.refinement(feat)) + x
        return out[..., :h, :w]
