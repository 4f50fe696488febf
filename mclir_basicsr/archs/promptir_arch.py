"""PromptIR (Potlapalli et al., "PromptIR: Prompting for All-in-One Blind Image Restoration", NeurIPS 2023).

A Restormer U-Net (4 levels) whose decoder is conditioned on learned prompts: at each of three decoder levels a
prompt generation block mixes learnable prompt components with input-dependent weights, and a prompt interaction
block fuses the prompt into the features. Module and parameter names follow the authors' code (va1shn9v/PromptIR,
``net/model.py``) so that their released weights load with ``strict=True``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from .padding import pad_to_multiple
from .restormer_blocks import Downsample, OverlapPatchEmbed, TransformerBlock, Upsample, transformer_stage

# Prompt settings fixed in the reference implementation (they do not follow ``dim``), per decoder level 1, 2, 3.
PROMPT_LEN = 5
PROMPT_DIMS = (64, 128, 320)
PROMPT_SIZES = (64, 32, 16)
# The input height and width must be multiples of this (three 2x down-samplings); forward pads to it.
SIZE_MULTIPLE = 8


class PromptGenBlock(nn.Module):
    """Prompt generation block (PGM).

    ``prompt_len`` learnable components of shape ``(prompt_dim, prompt_size, prompt_size)`` are mixed with weights
    ``softmax(Linear(GAP(x)))``, resized bilinearly to the feature size and passed through a 3x3 conv.

    Args:
        prompt_dim (int): Channels of the prompt.
        prompt_len (int): Number of prompt components.
        prompt_size (int): Spatial size of the stored components.
        lin_dim (int): Channels of the input features ``x``.

    Shapes: ``x`` ``(B, lin_dim, H, W)`` -> prompt ``(B, prompt_dim, H, W)``.
    """

    def __init__(self, prompt_dim, prompt_len, prompt_size, lin_dim):
        super().__init__()
        self.prompt_param = nn.Parameter(torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size))
        self.linear_layer = nn.Linear(lin_dim, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x):
        weights = F.softmax(self.linear_layer(x.mean(dim=(-2, -1))), dim=1)  # (B, prompt_len)
        prompt = (weights[:, :, None, None, None] * self.prompt_param).sum(dim=1)  # (B, prompt_dim, S, S)
        prompt = F.interpolate(prompt, size=x.shape[-2:], mode='bilinear', align_corners=False)
        return self.conv3x3(prompt)


@ARCH_REGISTRY.register()
class PromptIR(nn.Module):
    """PromptIR: a Restormer encoder-decoder with prompt blocks in the decoder.

    Paper: Potlapalli, Zamir, Khan, Khan, "PromptIR: Prompting for All-in-One Blind Image Restoration",
    NeurIPS 2023 (arXiv:2306.13090); backbone: Zamir et al., "Restormer", CVPR 2022. Arguments, defaults, module
    names and parameter count (35,592,263 with ``decoder=True``; 32,107,288 with ``decoder=False``) equal the
    reference ``net/model.py``. Its checkpoint (a Lightning ``.ckpt``) holds the weights under ``state_dict`` with a
    ``net.`` prefix: strip the prefix, then ``load_state_dict(..., strict=True)``.

    Args:
        inp_channels (int): Input channels. Default: 3.
        out_channels (int): Output channels; must equal ``inp_channels`` (global residual). Default: 3.
        dim (int): Channels of level 1; levels 2-4 have 2, 4, 8 times as many. Default: 48.
        num_blocks (list[int]): Transformer blocks at levels 1-4 (encoder and decoder). Default: [4, 6, 6, 8].
        num_refinement_blocks (int): Transformer blocks after the decoder. Default: 4.
        heads (list[int]): Attention heads at levels 1-4 (the prompt interaction blocks use ``heads[2]``).
            Default: [1, 2, 4, 8].
        ffn_expansion_factor (float): Hidden-channel factor of the GDFN. Default: 2.66.
        bias (bool): Bias in the transformer convs and 1x1 reductions. Default: False.
        LayerNorm_type (str): 'WithBias' or 'BiasFree'. Default: 'WithBias'.
        decoder (bool): Build the prompt blocks (the published model). Default: False, as in the reference.

    Shapes: ``(B, inp_channels, H, W)`` -> ``(B, out_channels, H, W)``, any H, W >= 1. H and W are padded inside
    ``forward`` to multiples of 8 (reflect; replicate when the image is too small to reflect) and the output is
    cropped back, so odd sizes work.

    Prompts: the prompt sizes are fixed as in the reference: ``prompt1``/``prompt2``/``prompt3`` have 64/128/320
    channels and 64/32/16 px components, whatever ``dim`` is; the channels of the interaction blocks
    ``noise_level1..3`` are computed from ``dim`` and these prompt dims, giving the reference's shapes at ``dim=48``.

    Hooks (intermediate decoder features; ``H', W'`` = H, W padded to multiples of 8):
        - ``decoder_level3``: ``(B, 4 * dim, H'/4, W'/4)`` (192 channels by default), before prompt level 2;
        - ``decoder_level2``: ``(B, 2 * dim, H'/2, W'/2)`` (96), before prompt level 1;
        - ``decoder_level1``: ``(B, 2 * dim, H', W')`` (96), before ``refinement``.
        The prompt-conditioned features are the outputs of ``reduce_noise_level3`` ``(B, 4 * dim, H'/8, W'/8)``,
        ``reduce_noise_level2`` ``(B, 4 * dim, H'/4, W'/4)`` and ``reduce_noise_level1`` ``(B, 2 * dim, H'/2, W'/2)``.

    Quirks kept from the reference for weight compatibility:
        - ``chnl_reduce1..3`` and ``reduce_noise_channel_1..3`` are built and counted but never used in
          ``forward`` (they get no gradient); ``patch_embed`` has no bias whatever ``bias`` is.
        - ``decoder=False`` builds the reference's modules (interaction blocks included, unused) but, as in the
          reference, has no consistent forward pass (``up4_3`` expects ``4 * dim`` channels, the latent has
          ``8 * dim``): ``forward`` raises ``NotImplementedError``.
    """

    def __init__(self,
                 inp_channels=3,
                 out_channels=3,
                 dim=48,
                 num_blocks=[4, 6, 6, 8],
                 num_refinement_blocks=4,
                 heads=[1, 2, 4, 8],
                 ffn_expansion_factor=2.66,
                 bias=False,
                 LayerNorm_type='WithBias',
                 decoder=False):
        super().__init__()
        if out_channels != inp_channels:
            raise ValueError(f'out_channels ({out_channels}) must equal inp_channels ({inp_channels}): '
                             'the output is added to the input')
        c1, c2, c3, c4 = dim, 2 * dim, 4 * dim, 8 * dim
        p1, p2, p3 = PROMPT_DIMS

        def stage(num, channels, num_heads):
            return transformer_stage(num, channels, num_heads, ffn_expansion_factor, bias, LayerNorm_type)

        def block(channels, num_heads):
            return TransformerBlock(channels, num_heads, ffn_expansion_factor, bias, LayerNorm_type)

        def conv1x1(cin, cout):
            return nn.Conv2d(cin, cout, kernel_size=1, bias=bias)

        # Registration order follows the reference, so state_dict() lists the keys in the same order.
        self.patch_embed = OverlapPatchEmbed(inp_channels, c1)
        self.decoder = decoder
        if decoder:
            # Prompt generation blocks; lin_dim = channels of the features each one reads.
            self.prompt1 = PromptGenBlock(p1, PROMPT_LEN, PROMPT_SIZES[0], lin_dim=c2)
            self.prompt2 = PromptGenBlock(p2, PROMPT_LEN, PROMPT_SIZES[1], lin_dim=c3)
            self.prompt3 = PromptGenBlock(p3, PROMPT_LEN, PROMPT_SIZES[2], lin_dim=c4)
        # Unused in forward (kept for checkpoint compatibility).
        self.chnl_reduce1 = conv1x1(p1, p1)
        self.chnl_reduce2 = conv1x1(p2, p2)
        self.chnl_reduce3 = conv1x1(p3, 256)
        self.reduce_noise_channel_1 = conv1x1(c1 + p1, c1)

        # Encoder.
        self.encoder_level1 = stage(num_blocks[0], c1, heads[0])
        self.down1_2 = Downsample(c1)
        self.reduce_noise_channel_2 = conv1x1(c2 + p2, c2)  # unused
        self.encoder_level2 = stage(num_blocks[1], c2, heads[1])
        self.down2_3 = Downsample(c2)
        self.reduce_noise_channel_3 = conv1x1(c3 + 256, c3)  # unused
        self.encoder_level3 = stage(num_blocks[2], c3, heads[2])
        self.down3_4 = Downsample(c3)
        self.latent = stage(num_blocks[3], c4, heads[3])

        # Decoder level 3: prompt interaction on the latent (c4 + p3 -> c3), up to level 3, skip, reduce.
        self.up4_3 = Upsample(c3)
        self.reduce_chan_level3 = conv1x1(c2 + c3, c3)
        self.noise_level3 = block(c4 + p3, heads[2])
        self.reduce_noise_level3 = conv1x1(c4 + p3, c3)
        self.decoder_level3 = stage(num_blocks[2], c3, heads[2])

        # Decoder level 2.
        self.up3_2 = Upsample(c3)
        self.reduce_chan_level2 = conv1x1(c3, c2)
        self.noise_level2 = block(c3 + p2, heads[2])
        self.reduce_noise_level2 = conv1x1(c3 + p2, c3)
        self.decoder_level2 = stage(num_blocks[1], c2, heads[1])

        # Decoder level 1 (the skip concatenation is not reduced: level 1 works at 2 * dim).
        self.up2_1 = Upsample(c2)
        self.noise_level1 = block(c2 + p1, heads[2])
        self.reduce_noise_level1 = conv1x1(c2 + p1, c2)
        self.decoder_level1 = stage(num_blocks[0], c2, heads[0])

        self.refinement = stage(num_refinement_blocks, c2, heads[0])
        self.output = nn.Conv2d(c2, out_channels, kernel_size=3, padding=1, bias=bias)

    def _interact(self, level, feat):
        """Prompt generation + interaction at decoder ``level`` (1-3): concat prompt, transformer block, 1x1."""
        prompt = getattr(self, f'prompt{level}')(feat)
        feat = getattr(self, f'noise_level{level}')(torch.cat([feat, prompt], dim=1))
        return getattr(self, f'reduce_noise_level{level}')(feat)

    def forward(self, x):
        """``(B, inp_channels, H, W)`` -> ``(B, out_channels, H, W)``; restored image = input + predicted residual."""
        if not self.decoder:
            raise NotImplementedError(
                'PromptIR(decoder=False) has no consistent forward pass in the reference implementation '
                '(up4_3 expects 4 * dim channels, the latent has 8 * dim); use decoder=True (the published model)')
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, SIZE_MULTIPLE)

        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        feat = self.latent(self.down3_4(enc3))

        feat = self._interact(3, feat)
        feat = self.reduce_chan_level3(torch.cat([self.up4_3(feat), enc3], dim=1))
        feat = self.decoder_level3(feat)

        feat = self._interact(2, feat)
        feat = self.reduce_chan_level2(torch.cat([self.up3_2(feat), enc2], dim=1))
        feat = self.decoder_level2(feat)

        feat = self._interact(1, feat)
        feat = self.decoder_level1(torch.cat([self.up2_1(feat), enc1], dim=1))

        out = self.output(self.refinement(feat)) + x
        return out[..., :h, :w]
