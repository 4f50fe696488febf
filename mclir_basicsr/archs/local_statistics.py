"""Test-time local statistics (TLC): the global average pools of a U-Net's attention become local ones at test time.

Reference:
    X. Chu, L. Chen, C. Chen, X. Lu. "Improving Image Restoration by Revisiting Global Information Aggregation".
    ECCV 2022 (arXiv:2112.04491); used by NAFNet's ``NAFNetLocal`` and ``BaselineLocal``.

A network trained on ``train_size`` crops pools each attention over its whole (crop-sized) feature map. On a larger
test image a global pool would average over far more content than in training; TLC pools over a window 1.5x the
training crop instead, and falls back to the global pool where the window covers the whole map (so training crops
are unaffected). The window of each pool is fixed by its level in the U-Net: a level-``l`` map of the padded
training crop has ``Hp / 2**l`` rows, and its window ``Hp / 2**l * int(1.5 H) // H`` rows (the authors fix it with a
forward pass of a random ``train_size`` tensor; here it is computed, so building the network runs nothing and
draws no random numbers).
"""
import torch.nn as nn
import torch.nn.functional as F

FAST_REDUCTIONS = (5, 4, 3, 2, 1)  # subsampling factors tried by the fast approximation, largest first
WINDOW_SCALE = 1.5  # the window is 1.5x the training crop


class LocalAvgPool2d(nn.Module):
    """Average over a ``kernel_size`` window around each position (replicate-padded to the input size), or over the
    whole map when the window covers it: (N, C, H, W) -> (N, C, H, W) or (N, C, 1, 1).

    Args:
        kernel_size (tuple[int, int]): Window rows and columns.
        fast_imp (bool): The authors' faster, non-equivalent approximation: sums over a subsampled map, upsampled
            by nearest neighbour. Default: False.
        max_reduction (tuple[int, int]): Largest subsampling per axis for ``fast_imp``.
    """

    def __init__(self, kernel_size, fast_imp=False, max_reduction=(5, 5)):
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.fast_imp = fast_imp
        self.max_reduction = tuple(int(r) for r in max_reduction)

    def extra_repr(self):
        return f'kernel_size={self.kernel_size}, fast_imp={self.fast_imp}'

    def forward(self, x):
        h, w = x.shape[-2:]
        kh, kw = self.kernel_size
        if kh >= h and kw >= w:
            return F.adaptive_avg_pool2d(x, 1)
        out = self._fast_windows(x) if self.fast_imp else self._windows(x)
        dh, dw = h - out.shape[-2], w - out.shape[-1]
        return F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode='replicate')

    def _windows(self, x):
        """Exact window means from a summed-area table: one value per position where the window fits."""
        k1, k2 = min(x.shape[-2], self.kernel_size[0]), min(x.shape[-1], self.kernel_size[1])
        table = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        sums = table[..., k1:, k2:] + table[..., :-k1, :-k2] - table[..., :-k1, k2:] - table[..., k1:, :-k2]
        return sums / (k1 * k2)

    def _fast_windows(self, x):
        h, w = x.shape[-2:]
        r1 = min(self.max_reduction[0], next(r for r in FAST_REDUCTIONS if h % r == 0))
        r2 = min(self.max_reduction[1], next(r for r in FAST_REDUCTIONS if w % r == 0))
        table = x[..., ::r1, ::r2].cumsum(dim=-1).cumsum(dim=-2)
        k1 = min(table.shape[-2] - 1, self.kernel_size[0] // r1)
        k2 = min(table.shape[-1] - 1, self.kernel_size[1] // r2)
        sums = table[..., :-k1, :-k2] - table[..., :-k1, k2:] - table[..., k1:, :-k2] + table[..., k1:, k2:]
        return F.interpolate(sums / (k1 * k2), scale_factor=(r1, r2))


def check_train_size(train_size, network):
    """``train_size`` as a tuple (N, C, H, W) of positive ints, or ValueError naming the network."""
    size = tuple(train_size) if isinstance(train_size, (list, tuple)) else ()
    if len(size) != 4 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size):
        raise ValueError(f'{network}: train_size must be the training batch shape [N, C, H, W] (positive integers), '
                         f'e.g. [1, 3, 256, 256]; got {train_size!r}')
    return size


def use_local_statistics(levels, train_size, padder_size, fast_imp=False):
    """Replace every ``nn.AdaptiveAvgPool2d`` in each ``(module, level)`` of ``levels`` by its :class:`LocalAvgPool2d`
    for a network trained on ``train_size`` crops, padded to a multiple of ``padder_size``.

    Returns:
        list[tuple[str, tuple[int, int]]]: ``(name within its module, kernel_size)`` of every pool replaced, in order.
    """
    _, _, h, w = train_size
    window = (int(h * WINDOW_SCALE), int(w * WINDOW_SCALE))
    padded = (-(-h // padder_size) * padder_size, -(-w // padder_size) * padder_size)
    replaced = []
    for module, level in levels:
        rows, cols = padded[0] >> level, padded[1] >> level
        kernel = (rows * window[0] // h, cols * window[1] // w)
        max_reduction = (max(1, FAST_REDUCTIONS[0] * rows // h), max(1, FAST_REDUCTIONS[0] * cols // w))
        for name, parent in list(module.named_modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, nn.AdaptiveAvgPool2d):
                    setattr(parent, child_name, LocalAvgPool2d(kernel, fast_imp, max_reduction))
                    replaced.append((f'{name}.{child_name}' if name else child_name, kernel))
    return replaced
