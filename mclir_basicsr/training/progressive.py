"""Progressive training: larger patches and smaller batches as training goes on (``train.progressive``).

    train:
      progressive:
        milestones: [128000, 240000, 336000]   # the iteration after which the next stage starts
        patch_sizes: [128, 160, 192, 256]      # GT patch size of each stage
        batch_sizes: [16, 14, 12, 8]           # batch per GPU of each stage

Restormer's (and DSRIR's) spelling in ``datasets.train`` is accepted as an alias: ``iters`` (iterations of each
stage), ``gt_sizes`` and ``mini_batch_sizes``; ``iters: [92000, 64000, ...]`` means ``milestones: [92000, 156000,
...]`` (its last entry only closes the schedule; the last stage runs to the end).

Stage ``k`` covers iterations ``milestones[k-1] + 1 .. milestones[k]``. The training dataset crops the largest
patch (``datasets.train.gt_size >= max(patch_sizes)``) with the largest batch (``batch_size_per_gpu >=
max(batch_sizes)``); at each step the model crops one random window of the stage's size from the whole batch (LQ at
``patch / scale``, the same place) and keeps a random subset of the stage's batch size, as Restormer's training loop
does. The window and the subset come from a generator of their own (seeded from ``manual_seed`` and the rank),
whose state is in every training state, so a resumed run crops as the uninterrupted one. Every model class of this
plugin reads the key.
"""
import bisect
import numbers
import torch
import warnings

from ..checks.options import OptionError, check_int, check_known_keys

PROGRESSIVE_KEYS = ('milestones', 'patch_sizes', 'batch_sizes')
SEED_OFFSET = 104729  # the crop generator: manual_seed + offset + rank
BATCH_KEYS = ('lq', 'gt', 'label')  # a model's per-sample tensors that the subset applies to


RESTORMER_KEYS = {'iters': 'milestones', 'gt_sizes': 'patch_sizes', 'mini_batch_sizes': 'batch_sizes'}


def restormer_spelling(opt):
    """``train.progressive`` made from Restormer's ``datasets.train`` keys (see the module doc); None without them."""
    train_set = (opt.get('datasets') or {}).get('train') or {}
    given = [k for k in RESTORMER_KEYS if k in train_set]
    if not given:
        return None
    path = 'datasets.train'
    if len(given) < len(RESTORMER_KEYS):
        missing = ', '.join(f'{path}.{k}' for k in RESTORMER_KEYS if k not in given)
        raise OptionError(f'{path}.{given[0]} is Restormer\'s progressive training, which also needs {missing} '
                          f'(or write train.progressive: milestones, patch_sizes, batch_sizes).')
    if (opt.get('train') or {}).get('progressive') is not None:
        raise OptionError(f'{path}.{", ".join(given)} and train.progressive both describe progressive training: keep '
                          f'one of them.')
    iters = train_set['iters']
    if not isinstance(iters, (list, tuple)) or not iters:
        raise OptionError(f'{path}.iters must be a list of integers (iterations of each stage), got {iters!r}.')
    durations = [check_int(v, f'{path}.iters[{i}]', low=1) for i, v in enumerate(iters)]
    return {'milestones': [sum(durations[:i + 1]) for i in range(len(durations) - 1)],
            'patch_sizes': train_set['gt_sizes'], 'batch_sizes': train_set['mini_batch_sizes']}


def check_progressive(opt):
    """``train.progressive`` of a parsed option dict (or Restormer's spelling of it), checked (also against
    ``datasets.train``); None if absent."""
    block = restormer_spelling(opt)
    restormer = block is not None  # milestones from iters: one entry more
    if restormer:
        names = {ours: f'datasets.train.{theirs}' for theirs, ours in RESTORMER_KEYS.items()}
    else:
        block = (opt.get('train') or {}).get('progressive')
        if block is None:
            return None
        names = {key: f'train.progressive.{key}' for key in PROGRESSIVE_KEYS}
        if not isinstance(block, dict):
            raise OptionError(f'train.progressive must be a mapping with keys {", ".join(PROGRESSIVE_KEYS)}, got '
                              f'{block!r}.')
        check_known_keys(block, PROGRESSIVE_KEYS, 'train.progressive')
    lists = {}
    for key in PROGRESSIVE_KEYS:
        value = block.get(key)
        if not isinstance(value, (list, tuple)) or (key != 'milestones' and not value):
            raise OptionError(f'{names[key]} must be a list of integers, got {value!r}.')
        lists[key] = [check_int(v, f'{names[key]}[{i}]', low=1) for i, v in enumerate(value)]
    milestones, patches, batches = (lists[k] for k in PROGRESSIVE_KEYS)
    if len(patches) != len(batches) or len(milestones) != len(patches) - 1:
        raise OptionError(f'{names["patch_sizes"]} and {names["batch_sizes"]} need one entry per stage and '
                          f'{names["milestones"]} one {"per stage" if restormer else "fewer"}; '
                          f'got {len(patches)}, {len(batches)} and {len(milestones) + restormer}.')
    if any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise OptionError(f'{names["milestones"]} must increase, got {milestones}.')
    total_iter = (opt.get('train') or {}).get('total_iter')
    counted = isinstance(total_iter, numbers.Real) and not isinstance(total_iter, bool)
    late = [m for m in milestones if counted and m >= total_iter]
    if late:
        warnings.warn(f'{names["milestones"]}: {late} are at or after train.total_iter ({total_iter}), so the stages '
                      f'they start never train. Lower them or raise total_iter.')
    scale = int(opt.get('scale') or 1)
    odd = [p for p in patches if p % scale]
    if odd:
        raise OptionError(f'{names["patch_sizes"]} are GT sizes and must be multiples of scale ({scale}); {odd} are '
                          f'not.')
    train_set = (opt.get('datasets') or {}).get('train') or {}
    gt_size, batch = train_set.get('gt_size'), train_set.get('batch_size_per_gpu')
    if gt_size is not None and int(gt_size) < max(patches):
        raise OptionError(f'datasets.train.gt_size ({gt_size}) is smaller than the largest {names["patch_sizes"]} '
                          f'({max(patches)}): the dataset must crop the largest patch. Set gt_size: {max(patches)}.')
    if batch is not None and int(batch) < max(batches):
        raise OptionError(f'datasets.train.batch_size_per_gpu ({batch}) is smaller than the largest '
                          f'{names["batch_sizes"]} ({max(batches)}). Set batch_size_per_gpu: {max(batches)}.')
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
