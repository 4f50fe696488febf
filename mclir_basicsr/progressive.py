"""Progressive training: larger patches and smaller batches as training goes on (``train.progressive``).

    train:
      progressive:
        milestones: [128000, 240000, 336000]   # the iteration after which the next stage starts
        patch_sizes: [128, 160, 192, 256]      # GT patch size of each stage
        batch_sizes: [16, 14, 12, 8]           # batch per GPU of each stage

Stage ``k`` covers iterations ``milestones[k-1] + 1 .. milestones[k]``. The training dataset crops the largest
patch (``datasets.train.gt_size >= max(patch_sizes)``) with the largest batch (``batch_size_per_gpu >=
max(batch_sizes)``); at each step the model crops one random window of the stage's size from the whole batch (LQ at
``patch / scale``, the same place) and keeps a random subset of the stage's batch size, as Restormer's training loop
does. The window and the subset come from a generator of their own (seeded from ``manual_seed`` and the rank),
whose state is in every training state, so a resumed run crops as the uninterrupted one. Every model class of this
plugin reads the key.
"""
import bisect
import torch

from .options import OptionError, check_int, check_known_keys

PROGRESSIVE_KEYS = ('milestones', 'patch_sizes', 'batch_sizes')
SEED_OFFSET = 104729  # the crop generator: manual_seed + offset + rank
BATCH_KEYS = ('lq', 'gt', 'label')  # a model's per-sample tensors that the subset applies to


def check_progressive(opt):
    """``train.progressive`` of a parsed option dict, checked (also against ``datasets.train``); None if absent."""
    block = (opt.get('train') or {}).get('progressive')
    if block is None:
        return None
    path = 'train.progressive'
    if not isinstance(block, dict):
        raise OptionError(f'{path} must be a mapping with keys {", ".join(PROGRESSIVE_KEYS)}, got {block!r}.')
    check_known_keys(block, PROGRESSIVE_KEYS, path)
    lists = {}
    for key in PROGRESSIVE_KEYS:
        value = block.get(key)
        if not isinstance(value, (list, tuple)) or (key != 'milestones' and not value):
            raise OptionError(f'{path}.{key} must be a list of integers, got {value!r}.')
        lists[key] = [check_int(v, f'{path}.{key}[{i}]', low=1) for i, v in enumerate(value)]
    milestones, patches, batches = (lists[k] for k in PROGRESSIVE_KEYS)
    if len(patches) != len(batches) or len(milestones) != len(patches) - 1:
        raise OptionError(f'{path}: patch_sizes and batch_sizes need one entry per stage and milestones one fewer '
                          f'(the iterations between stages); got {len(patches)}, {len(batches)} and {len(milestones)}.')
    if any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise OptionError(f'{path}.milestones must increase, got {milestones}.')
    scale = int(opt.get('scale') or 1)
    odd = [p for p in patches if p % scale]
    if odd:
        raise OptionError(f'{path}.patch_sizes are GT sizes and must be multiples of scale ({scale}); {odd} are not.')
    train_set = (opt.get('datasets') or {}).get('train') or {}
    gt_size, batch = train_set.get('gt_size'), train_set.get('batch_size_per_gpu')
    if gt_size is not None and int(gt_size) < max(patches):
        raise OptionError(f'datasets.train.gt_size ({gt_size}) is smaller than the largest {path}.patch_sizes '
                          f'({max(patches)}): the dataset must crop the largest patch. Set gt_size: {max(patches)}.')
    if batch is not None and int(batch) < max(batches):
        raise OptionError(f'datasets.train.batch_size_per_gpu ({batch}) is smaller than the largest '
                          f'{path}.batch_sizes ({max(batches)}). Set batch_size_per_gpu: {max(batches)}.')
    return lists


class ProgressivePatches:
    """The schedule of :func:`check_progressive` applied to a model's batch (see the module doc)."""

    def __init__(self, milestones, patch_sizes, batch_sizes, seed):
        self.milestones, self.patch_sizes, self.batch_sizes = list(milestones), list(patch_sizes), list(batch_sizes)
        self.generator = torch.Generator().manual_seed(seed)
        self.current_stage = None

    def stage(self, current_iter):
        return bisect.bisect_left(self.milestones, current_iter)

    def apply(self, tensors, current_iter):
        """``tensors`` (name -> (B, ...) tensor; ``lq``, ``gt`` images) cropped and subsampled for ``current_iter``;
        returns ``(tensors, stage_changed)``."""
        stage = self.stage(current_iter)
        changed, self.current_stage = stage != self.current_stage, stage
        lq, gt = tensors['lq'], tensors.get('gt')
        out = dict(tensors)
        keep = self.batch_sizes[stage]
        if lq.shape[0] > keep:
            index = torch.randperm(lq.shape[0], generator=self.generator)[:keep].sort().values
            out = {k: (v[index.to(v.device)] if torch.is_tensor(v) and v.dim() and v.shape[0] == lq.shape[0] else v)
                   for k, v in out.items()}
        if gt is not None:
            scale = gt.shape[-1] // lq.shape[-1]
            size = self.patch_sizes[stage] // scale
            h, w = lq.shape[-2:]
            if size < h or size < w:
                top = int(torch.randint(0, max(h - size, 0) + 1, (1, ), generator=self.generator))
                left = int(torch.randint(0, max(w - size, 0) + 1, (1, ), generator=self.generator))
                out['lq'] = out['lq'][..., top:top + size, left:left + size]
                out['gt'] = out['gt'][..., top * scale:(top + size) * scale, left * scale:(left + size) * scale]
        return out, changed

    def state_dict(self):
        return {'generator': self.generator.get_state(), 'schedule': [self.milestones, self.patch_sizes,
                                                                      self.batch_sizes]}

    def load_state_dict(self, state):
        """Restore the crop generator; returns False when the state was written with another schedule."""
        self.generator.set_state(state['generator'])
        return state.get('schedule') == [self.milestones, self.patch_sizes, self.batch_sizes]
