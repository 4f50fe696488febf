"""Running a network on an image of any size: its geometry found by probing, whole or in tiles.

:func:`probe_geometry` finds what a registered network needs without knowing its class: the input channels it
takes (3, else 1), the size multiple (the smallest m in 1, 2, 4, ... 128 for which a 3m x 3m input comes back
whole) and the scale (output / input size). Images are then padded (reflect) to that multiple and cropped back.

Tiles (:func:`restore_tiled`): the image is cut into a grid of ``tile`` x ``tile`` cores; each core is run with
``overlap`` pixels of its neighbours around it (every window has the same size, shifted inward at the borders, so
several go in one batch), and the outputs are blended with linear ramps ``overlap`` wide centred on the seams (the
weights of neighbours sum to one). Each output pixel thus comes from windows that hold at least ``overlap / 2``
pixels of context around it: for a network whose receptive field reaches at most ``overlap / 2`` pixels, the tiled
output equals the whole-image output (to float rounding). Memory follows the window, not the image.
"""
import math
import numpy as np
import torch

from ..archs.padding import pad_to_multiple

MULTIPLES = (1, 2, 4, 8, 16, 32, 64, 128)


class GeometryError(Exception):
    """The network cannot be run on images (the message says what was tried)."""


def image_of(output):
    """The restored image among what a network returns: a tensor, a dict's ``output``, or the last image of a list
    or tuple (NAFNet-style multi-output networks, DSRIR's stages)."""
    while not torch.is_tensor(output):
        if isinstance(output, dict) and 'output' in output:
            output = output['output']
        elif isinstance(output, (list, tuple)) and output:
            images = [o for o in output if torch.is_tensor(o) and o.dim() == 4]
            output = images[-1] if images else output[0]
        else:
            raise GeometryError(f'the network returned {type(output).__name__}, not an image.')
    return output


def probe_geometry(net, device, scale=None):
    """``(in_channels, multiple, scale)`` of ``net`` (module doc). ``scale`` given: checked against the network's."""
    errors = []
    for channels in (3, 1):
        for m in MULTIPLES:
            size = 3 * m
            try:
                with torch.no_grad():
                    out = image_of(net(torch.rand(1, channels, size, size, device=device)))
            except Exception as err:  # noqa: BLE001 - a size or channel count the network does not take
                errors.append(f'{channels}x{size}x{size}: {str(err).strip().splitlines()[0][:120]}')
                continue
            ratio = out.shape[-1] / size
            if out.shape[-2] / size != ratio or ratio != int(ratio) or ratio < 1:
                errors.append(f'{channels}x{size}x{size} gave {tuple(out.shape[-2:])}')
                continue
            if scale is not None and int(ratio) != scale:
                raise GeometryError(f'--scale {scale}, but the network upscales by {int(ratio)}.')
            return channels, m, int(ratio)
    raise GeometryError('no input size from 3x3 to 384x384 with 3 or 1 channels came back as an image; first '
                        f'failures: {"; ".join(errors[:2])}.')


def run_padded(net, batch, multiple):
    """``net`` on an N x C x H x W batch padded (reflect) to ``multiple``, cropped back to the scaled size."""
    h, w = batch.shape[-2:]
    out = image_of(net(pad_to_multiple(batch, multiple)))
    scale = out.shape[-1] // (w + (-w) % multiple)
    return out[..., :h * scale, :w * scale]


def _cores(size, tile):
    """Start of each core along one axis (the last one may be shorter)."""
    return list(range(0, size, tile))


def _window(start, core, size, window):
    """Start of the fixed-size window around a core, shifted inward at the borders."""
    return min(max(start - (window - core) // 2, 0), max(size - window, 0))


def _ramp(offset, length, size, start, end, half, scale):
    """Weights of the output pixels of a window [offset, offset + length) for its core [start, end) along one axis
    (input coordinates): 1 inside, linear to 0 over ``2 * half`` pixels centred on each seam; none at the image
    borders. Neighbours' weights sum to one."""
    x = (np.arange(length * scale) + 0.5) / scale + offset  # output pixel centres in input coordinates
    if half == 0:
        return ((x >= start) & (x < end)).astype(np.float64)
    weight = np.ones_like(x)
    if start > 0:
        weight = np.minimum(weight, np.clip((x - (start - half)) / (2 * half), 0, 1))
    if end < size:
        weight = np.minimum(weight, np.clip(((end + half) - x) / (2 * half), 0, 1))
    return weight


def tile_plan(h, w, tile, overlap):
    """``[(window (top, left), window size (wh, ww), core (top, bottom, left, right))]`` for an h x w image."""
    win_h, win_w = min(h, tile + overlap * 2), min(w, tile + overlap * 2)
    plan = []
    for top in _cores(h, tile):
        for left in _cores(w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            plan.append(((_window(top, tile, h, win_h), _window(left, tile, w, win_w)), (win_h, win_w),
                         (top, bottom, left, right)))
    return plan


def restore_tiled(net, image, multiple, scale, tile, overlap, batch_size=1, on_tiles=None):
    """``net`` on a 1 x C x H x W tensor in tiles (module doc); returns the 1 x C' x sH x sW output (CPU, float32).

    ``on_tiles(n)`` is called after each batch of ``n`` tiles (progress)."""
    _, _, h, w = image.shape
    half = overlap / 2
    plan = tile_plan(h, w, tile, overlap)
    total = weights = None
    for first in range(0, len(plan), batch_size):
        group = plan[first:first + batch_size]
        windows = torch.cat([image[..., t:t + wh, left:left + ww] for (t, left), (wh, ww), _ in group])
        with torch.no_grad():
            outs = run_padded(net, windows, multiple).float().cpu()
        for out, ((t, left), (wh, ww), (top, bottom, c_left, right)) in zip(outs, group):
            if total is None:
                total = torch.zeros(out.shape[0], h * scale, w * scale)
                weights = torch.zeros(1, h * scale, w * scale)
            wy = _ramp(t, wh, h, top, bottom, half, scale)
            wx = _ramp(left, ww, w, c_left, right, half, scale)
            weight = torch.from_numpy(np.outer(wy, wx)).float()
            ys, xs = slice(t * scale, (t + wh) * scale), slice(left * scale, (left + ww) * scale)
            total[:, ys, xs] += out * weight
            weights[:, ys, xs] += weight
        if on_tiles:
            on_tiles(len(group))
    return (total / weights.clamp_min(1e-12))[None]


def tile_count(h, w, tile):
    return math.ceil(h / tile) * math.ceil(w / tile)
