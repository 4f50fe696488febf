"""Padding inputs to the multiple a network needs (its downsamplings, windows or blocks); the output is cropped back."""
import torch.nn.functional as F


def pad_to_multiple(img, multiple):
    """``img`` (..., H, W) padded at the bottom and right so that H and W are multiples of ``multiple`` (an int, or
    ``(mh, mw)``).

    Reflection keeps image statistics at the border (zeros would be an edge the network never saw in training);
    reflection needs the pad to be smaller than the side, so tiny images are padded by replication instead.
    """
    mh, mw = (multiple, multiple) if isinstance(multiple, int) else multiple
    h, w = img.shape[-2:]
    pad_h, pad_w = -h % mh, -w % mw
    if not (pad_h or pad_w):
        return img
    return F.pad(img, (0, pad_w, 0, pad_h), mode='reflect' if pad_h < h and pad_w < w else 'replicate')
