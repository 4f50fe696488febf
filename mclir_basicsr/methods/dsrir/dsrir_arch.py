"""DSRIR: a progressive network of three subnets with patch attention, registered as ``DSRIR`` in ``ARCH_REGISTRY``.

Reference:
    X. Wang et al. "DSRIR: Dynamic spatial refinement learning for progressive all-in-one image restoration".
    Information Processing & Management, 2025 (doi:10.1016/j.ipm.2025.104380).

An embedding convolution splits into three feature streams, one per subnet; each subnet's result passes a
pixel refinement unit and an uncertainty-supervised attention unit (USAU), which restores an image and a
log-variance map and gates the features handed to the next subnet:

* subnet 1: a 3-level U-Net of patch-attention blocks (width 32, +32 per level, [2, 2, 2] blocks, patch grids
  8, 4, 2);
* subnet 2: a 2-level U-Net (width 48, +16 per level, [2, 4] blocks, grids 4, 2);
* subnet 3: 4 groups of 4 blocks at full resolution (width 64, grids 8, 4, 2, 1).

The defaults are the paper's network: 3,516,837 parameters, as the authors' public model. ``net(x)`` returns the
final image, so every model class, validation and history copies use it as any restorer;
``net(x, with_stages=True)`` returns ``(images, log_variances)``, two lists ordered last subnet first, which
``DSRIRModel`` trains. The authors' checkpoints load unchanged (:mod:`.dsrir_authors_keys`). Inputs of any size:
the forward pass pads to a multiple of :attr:`DSRIR.size_multiple` (8 by default; the patch grids need it) and
crops the results back.
"""
import math
import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from ...archs.padding import pad_to_multiple
from .dsrir_authors_keys import authors_to_ours, is_authors_state_dict

DEFAULT_GROUP_GRIDS = (8, 4, 2, 1)


def _pair(grid):
    return (grid, grid) if isinstance(grid, int) else tuple(grid)


class PatchAttention(nn.Module):
    """Channel weights per patch: the map is average-pooled to a ``grid`` of patches and a squeeze-excitation MLP
    (reduction ``reduction``) weighs each patch's channels. H and W must be multiples of the grid."""

    def __init__(self, channels, reduction, grid):
        super().__init__()
        self.grid = _pair(grid)
        self.pool = nn.AdaptiveAvgPool2d(self.grid)
        self.weigh = nn.Sequential(nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
                                   nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid())

    def forward(self, x):
        b, c, h, w = x.shape
        gh, gw = self.grid
        weights = self.weigh(self.pool(x)).view(b, c, gh, 1, gw, 1)
        return (x.view(b, c, gh, h // gh, gw, w // gw) * weights).view(b, c, h, w)


class PatchAttentionBlock(nn.Module):
    """conv-ReLU-conv, patch attention, residual."""

    def __init__(self, channels, kernel_size, reduction, bias, grid):
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(nn.Conv2d(channels, channels, kernel_size, padding=pad, bias=bias),
                                  nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, kernel_size, padding=pad, bias=bias))
        self.attention = PatchAttention(channels, reduction, grid)

    def forward(self, x):
        return x + self.attention(self.body(x))


def _blocks(channels, grids, kernel_size, reduction, bias):
    """One patch-attention block per entry of ``grids`` (its patch grid)."""
    return nn.Sequential(*[PatchAttentionBlock(channels, kernel_size, reduction, bias, g) for g in grids])


class Resample(nn.Module):
    """Bilinear resize by ``scale``, then a 1x1 convolution to ``out_channels`` (no bias)."""

    def __init__(self, in_channels, out_channels, scale):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode='bilinear', align_corners=False))


class PatchUNet(nn.Module):
    """A U-Net of patch-attention blocks: level i has ``width + i * step`` channels, ``blocks[i]`` blocks in the
    encoder and the decoder with patch grid ``grids[i]``; skips pass through one more block."""

    def __init__(self, width, step, blocks, grids, kernel_size, reduction, bias):
        super().__init__()
        widths = [width + i * step for i in range(len(blocks))]
        args = (kernel_size, reduction, bias)
        self.encoders = nn.ModuleList(_blocks(c, [g] * n, *args) for n, c, g in zip(blocks, widths, grids))
        self.decoders = nn.ModuleList(_blocks(c, [g] * n, *args) for n, c, g in zip(blocks, widths, grids))
        self.downs = nn.ModuleList(Resample(c, c + step, 0.5) for c in widths[:-1])
        self.ups = nn.ModuleList(Resample(c + step, c, 2) for c in widths[:-1])
        self.skips = nn.ModuleList(PatchAttentionBlock(c, kernel_size, reduction, bias, g)
                                   for c, g in zip(widths[:-1], grids))

    def forward(self, x):
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else self.downs[i - 1](x))
            skips.append(x)
        x = self.decoders[-1](skips.pop())
        for i in reversed(range(len(skips))):
            x = self.decoders[i](self.ups[i](x) + self.skips[i](skips[i]))
        return x


class PatchGroup(nn.Module):
    """Blocks with patch grids ``grids`` (one each), a convolution, a residual."""

    def __init__(self, channels, grids, kernel_size, reduction, bias):
        super().__init__()
        self.body = nn.Sequential(_blocks(channels, grids, kernel_size, reduction, bias),
                                  nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=bias))

    def forward(self, x):
        return x + self.body(x)


class PixelRefine(nn.Module):
    """A convolution whose output is gated per pixel by a small convolutional branch; residual."""

    def __init__(self, channels, reduction):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.gate = nn.Sequential(nn.Conv2d(channels, channels // reduction, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels // reduction, channels, 3, padding=1), nn.Sigmoid())

    def forward(self, x):
        res = self.conv(x)
        return x + self.gate(res) * res


class UncertaintyAttention(nn.Module):
    """USAU: from features and the degraded image, a restored image (residual on the image), a log-variance map,
    and the features gated by an attention computed from the variance branch.

    The last subnet's unit has its gate (``feature_proj``, ``attention``) too, as the authors' model, but never
    uses it: those weights are frozen (``requires_grad=False``), so no optimiser or DDP waits for their gradients.
    """

    def __init__(self, in_channels, channels, out_channels, kernel_size, bias, gates=True):
        super().__init__()
        pad = kernel_size // 2
        self.image_in = nn.Conv2d(in_channels, channels, kernel_size, padding=pad, bias=bias)
        self.image_out = nn.Conv2d(channels, out_channels, kernel_size, padding=pad, bias=bias)
        self.fuse = nn.Conv2d(channels, channels, 1, bias=bias)
        self.feature_proj = nn.Conv2d(channels, channels, 1, bias=bias)
        self.variance = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))
        self.log_var = nn.Sequential(nn.Conv2d(channels, out_channels, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))
        self.attention = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.Sigmoid())
        self.gates = gates
        if not gates:
            self.feature_proj.requires_grad_(False)
            self.attention.requires_grad_(False)

    def forward(self, x, img):
        fused = self.fuse(x) + self.image_in(img)
        restored = self.image_out(fused) + img
        hidden = self.variance(fused)
        gated = x + self.attention(hidden) * self.feature_proj(x) if self.gates else None
        return gated, restored, self.log_var(hidden)


@ARCH_REGISTRY.register()
class DSRIR(nn.Module):
    """DSRIR (see the module doc). Patch grids are ints (square) or [gh, gw] pairs.

    Args:
        in_channels, out_channels (int): image channels. Default: 3, 3.
        widths (list[int]): channels of subnets 1, 2, 3. Default: [32, 48, 64].
        width_steps (list[int]): channels added per U-Net level in subnets 1, 2. Default: [32, 16].
        unet1_blocks, unet1_grids: blocks and patch grid per level of subnet 1. Default: [2, 2, 2], [8, 4, 2].
        unet2_blocks, unet2_grids: the same for subnet 2. Default: [2, 4], [4, 2].
        groups (int): block groups of subnet 3. Default: 4.
        group_grids (list): one block per grid in each group. Default: [8, 4, 2, 1].
        kernel_size (int): convolutions of the blocks and the embedding. Default: 3.
        reduction (int): channel reduction of the attention MLPs. Default: 8.
        bias (bool): bias of the blocks' convolutions. Default: False.
    """

    returns_stages = True  # forward(x, with_stages=True) -> (images, log_variances); read by DSRIRModel's checks
    num_stages = 3  # one image per subnet, final first

    def __init__(self, in_channels=3, out_channels=3, widths=(32, 48, 64), width_steps=(32, 16),
                 unet1_blocks=(2, 2, 2), unet1_grids=(8, 4, 2), unet2_blocks=(2, 4), unet2_grids=(4, 2), groups=4,
                 group_grids=DEFAULT_GROUP_GRIDS, kernel_size=3, reduction=8, bias=False):
        super().__init__()
        _check_layout(widths, width_steps, unet1_blocks, unet1_grids, unet2_blocks, unet2_grids, groups, group_grids,
                      reduction)
        self.widths = list(widths)
        args = (kernel_size, reduction, bias)
        self.embed = nn.Conv2d(in_channels, sum(widths), kernel_size, padding=kernel_size // 2, bias=bias)
        self.subnet1 = PatchUNet(widths[0], width_steps[0], unet1_blocks, unet1_grids, *args)
        self.subnet2 = PatchUNet(widths[1], width_steps[1], unet2_blocks, unet2_grids, *args)
        self.subnet3 = nn.Sequential(*[PatchGroup(widths[2], group_grids, *args) for _ in range(groups)])
        self.refine = nn.ModuleList(PixelRefine(w, reduction) for w in widths)
        self.usau = nn.ModuleList(UncertaintyAttention(in_channels, w, out_channels, 3, bias, gates=i < 2)
                                  for i, w in enumerate(widths))
        self.merge = nn.ModuleList(nn.Conv2d(widths[i] + widths[i + 1], widths[i + 1], 1, bias=bias) for i in (0, 1))
        self.size_multiple = _size_multiple([unet1_grids, unet2_grids], [group_grids])
        self._register_load_state_dict_pre_hook(self._rename_authors_keys)

    @staticmethod
    def checkpoint_key(key, net_opt):
        """Our name of a checkpoint key (the authors' names are renamed); for the checks before training."""
        return authors_to_ours(key, len(net_opt.get('group_grids', DEFAULT_GROUP_GRIDS)))

    def _rename_authors_keys(self, state, prefix, *args):
        """The authors' checkpoints load as they are (``path.param_key_g: state_dict``)."""
        own = {k[len(prefix):]: k for k in state if k.startswith(prefix)}
        if is_authors_state_dict(own):
            blocks = len(self.subnet3[0].body[0])
            for key, full in own.items():
                state[prefix + authors_to_ours(key, blocks)] = state.pop(full)

    def forward(self, img, with_stages=False):
        h, w = img.shape[-2:]
        padded = pad_to_multiple(img, self.size_multiple)
        streams = torch.split(self.embed(padded), self.widths, dim=1)
        subnets = (self.subnet1, self.subnet2, self.subnet3)
        images, log_vars, x = [], [], None
        for i, subnet in enumerate(subnets):
            x = streams[0] if i == 0 else self.merge[i - 1](torch.cat([x, streams[i]], dim=1))
            x, restored, log_var = self.usau[i](self.refine[i](subnet(x)), padded)
            images.insert(0, restored[..., :h, :w])
            log_vars.insert(0, log_var[..., :h, :w])
        return (images, log_vars) if with_stages else images[0]


def _check_layout(widths, width_steps, unet1_blocks, unet1_grids, unet2_blocks, unet2_grids, groups, group_grids,
                  reduction):
    """Clear errors for layouts the network cannot be built with (instead of a shape error at the first forward)."""
    if len(widths) != 3 or len(width_steps) != 2:
        raise ValueError(f'DSRIR: widths needs 3 entries (one per subnet) and width_steps 2 (the U-Net subnets), '
                         f'got {list(widths)} and {list(width_steps)}.')
    for name, blocks, grids in (('unet1', unet1_blocks, unet1_grids), ('unet2', unet2_blocks, unet2_grids)):
        if len(blocks) != len(grids) or not blocks:
            raise ValueError(f'DSRIR: {name}_blocks and {name}_grids need one entry per level, got {list(blocks)} '
                             f'and {list(grids)}.')
    if groups < 1 or not group_grids:
        raise ValueError(f'DSRIR: groups must be >= 1 and group_grids non-empty, got {groups}, {list(group_grids)}.')
    if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
        raise ValueError(f'DSRIR: reduction must be an integer >= 1, got {reduction!r}.')
    small = [w for w in widths if w // reduction < 1]
    if small:
        raise ValueError(f'DSRIR: every width must be >= reduction ({reduction}), got widths {list(widths)}.')


def _size_multiple(unet_grids, flat_grids):
    """Smallest size every level accepts: a U-Net level i runs at 1/2**i scale on a grid of patches."""
    need = [2**i * g for grids in unet_grids for i, grid in enumerate(grids) for g in _pair(grid)]
    need += [2**(len(grids) - 1) for grids in unet_grids]
    need += [g for grids in flat_grids for grid in grids for g in _pair(grid)]
    return math.lcm(*need)
