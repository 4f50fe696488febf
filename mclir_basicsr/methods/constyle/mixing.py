"""``train.mixing_augs``: Restormer's mixup of training batches, which the ConStyle files carry.

With ``mixup: true`` each training batch is, with probability 1/2 when ``use_identity`` (else always), replaced by
``lam * batch + (1 - lam) * batch[perm]`` for GT and LQ alike: one ``lam ~ Beta(mixup_beta, mixup_beta)`` (torch's
generator) and one permutation per batch; the 1/2 is Python's ``random.randint(0, 1)``, as Restormer draws it.
Validation and test images are never mixed (Restormer mixes in ``feed_train_data`` only; IRConStyle's ConStyle
model mixes in ``feed_data``, which its code never reaches: it does not import ``random``).
"""
import random
import torch

from ...checks.options import OptionError, check_bool, check_known_keys, check_number

MIXING_KEYS = ('mixup', 'mixup_beta', 'use_identity')
DEFAULTS = {'mixup': False, 'mixup_beta': 1.2, 'use_identity': False}  # IRConStyle's ConStyle model's defaults


def parse_mixing(block, path='train.mixing_augs'):
    """The checked ``mixing_augs`` block with defaults, or None when absent."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise OptionError(f'{path} must be a mapping such as {{mixup: true, mixup_beta: 1.2, use_identity: true}}, '
                          f'got {block!r}.')
    check_known_keys(block, MIXING_KEYS, path)
    out = dict(DEFAULTS, **{k: v for k, v in block.items() if v is not None})
    check_bool(out['mixup'], f'{path}.mixup')
    check_bool(out['use_identity'], f'{path}.use_identity')
    out['mixup_beta'] = check_number(out['mixup_beta'], f'{path}.mixup_beta', low=0, low_open=True)
    return out


class MixingAugment:
    """Mixes training batches as the module doc says; ``cfg`` is :func:`parse_mixing`'s result."""

    def __init__(self, cfg):
        beta = torch.tensor([float(cfg['mixup_beta'])])
        self.distribution = torch.distributions.Beta(beta, beta)
        self.use_identity = cfg['use_identity']

    def __call__(self, gt, lq):
        if self.use_identity and random.randint(0, 1) == 1:
            return gt, lq
        lam = self.distribution.rsample((1, 1)).item()
        perm = torch.randperm(gt.shape[0]).to(gt.device)
        return lam * gt + (1 - lam) * gt[perm], lam * lq + (1 - lam) * lq[perm]
