"""``PSNRLoss``: NAFNet's training loss, the negative PSNR (megvii-research/NAFNet, ``train.pixel_opt`` of all their
option files)."""
import math
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from ...checks.options import OptionError, check_bool, check_known_keys, check_number

# BT.601 luma of 0..1 RGB, in 0..255 (+16 after)
Y_COEFFICIENTS = (65.481, 128.553, 24.966)
EPS = 1e-8


@LOSS_REGISTRY.register()
class PSNRLoss(nn.Module):
    """``loss_weight * 10 / ln 10 * mean_b log(mean_chw (pred - target)^2 + 1e-8)``: minus the PSNR of each image
    (peak 1), averaged over the batch; lower is better and it goes negative.

    Args:
        loss_weight (float): Default: 1.
        reduction (str): Only ``mean`` (the batch mean). Default: ``mean``.
        toY (bool): Compare the Y channel of RGB images (BT.601, rescaled to 0..1 after the +16 offset, as NAFNet's).
            Default: False.
    """

    negative_values = True  # a log: SPN's automatic weight, a fraction of the reconstruction loss, cannot follow it

    def __init__(self, loss_weight=1.0, reduction='mean', toY=False):
        super().__init__()
        self.check_options(dict(loss_weight=loss_weight, reduction=reduction, toY=toY), 'PSNRLoss')
        self.loss_weight = loss_weight
        self.toY = toY
        self.register_buffer('y_coefficients', torch.tensor(Y_COEFFICIENTS).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def check_options(cls, block, path):
        check_known_keys(block, ['loss_weight', 'reduction', 'toY'], path)
        check_number(block.get('loss_weight', 1.0), f'{path}.loss_weight', low=0)
        if block.get('reduction', 'mean') != 'mean':
            raise OptionError(f'{path}.reduction: PSNRLoss averages over the batch only (reduction: mean), got '
                              f'{block["reduction"]!r}.')
        check_bool(block.get('toY', False), f'{path}.toY')

    def forward(self, pred, target):
        if pred.dim() != 4:
            raise ValueError(f'PSNRLoss takes (N, C, H, W) images, got shape {tuple(pred.shape)}.')
        if self.toY:
            pred = ((pred * self.y_coefficients).sum(dim=1, keepdim=True) + 16.) / 255.
            target = ((target * self.y_coefficients).sum(dim=1, keepdim=True) + 16.) / 255.
        mse = (pred - target).pow(2).mean(dim=(1, 2, 3))
        return self.loss_weight * (10 / math.log(10)) * torch.log(mse + EPS).mean()
