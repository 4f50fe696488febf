"""All-in-one restoration data: one dataset carrying several degradation tasks, each sample labelled with its task.

The setting of AirNet (Li et al., "All-in-one image restoration for unknown corruption", CVPR 2022) and PromptIR
(Potlapalli et al., "PromptIR: Prompting for all-in-one blind image restoration", NeurIPS 2023): one network trained
on denoising (BSD400 + WED, sigma 15/25/50), deraining (Rain100L) and dehazing (RESIDE OTS), the 3-task setting,
where PromptIR repeats the smaller sets (e.g. denoise x3, derain x120) to balance an epoch; the 5-task setting adds
deblurring (GoPro) and low-light enhancement (LOL). Stock BasicSR 1.4.2 accepts one ``train`` dataset, so the tasks
live in one. Layouts (pairing rules in :mod:`.degradation_tasks`)::

    denoise   dataroot_gt: a folder or a list of folders of clean images; Gaussian noise is added on the fly
    derain    <dataroot>/rainy/rain-N.png                  <-> <dataroot>/gt/norain-N.png           (Rain100L)
    dehaze    <dataroot>/synthetic/[partX/]NNNN_A_beta.jpg <-> <dataroot>/original/NNNN.<ext>     (RESIDE OTS)
              <dataroot>/hazy/NNNN_A_beta.<ext>            <-> <dataroot>/gt/NNNN.<ext>           (SOTS outdoor)
    deblur    <dataroot>/blur/X                            <-> <dataroot>/sharp/X                 (GoPro)
    lowlight  <dataroot>/low/X                             <-> <dataroot>/high/X                  (LOL)
    paired    dataroot_gt + dataroot_lq (+ filename_tmpl), folders or lmdbs, exactly as PairedImageDataset

Only ``paired`` reads lmdb; for the other kinds pack the pairs with ``mclir-make-lmdb`` and use ``kind: paired``
(denoise reads clean folders from disk only). Every task also takes ``name`` (the label's name in logs, default the
kind; unique), ``repeat`` (int >= 1, default 1), ``meta_info_file`` (one image per line, first token = path relative
to the GT-side folder, kept in its order; denoise: the first of the folders that holds it; dehaze: relative to
``synthetic/`` or ``hazy/``, listing hazy images; paired: as BasicSR reads it) and ``io_backend`` (default: the
dataset's, itself default ``{type: disk}``). Folder listings are sorted by name.

Items are ``{'lq', 'gt', 'lq_path', 'gt_path', 'label'}``: CHW float32 RGB tensors in [0, 1] as BasicSR's
``PairedImageDataset`` returns them (GT and LQ of the same size: scale 1), ``label`` the task's index in ``tasks``.
Index ``i`` runs over the tasks' samples concatenated, each task's repeated ``repeat`` times. Train: random
``gt_size`` crops (``paired_random_crop``), flips and rotations (``augment``; ``use_hflip``/``use_rot``, default
true); val/test: whole images, no augmentation. Denoise: ``lq = clip(gt * 255 + N(0, 1) * sigma, 0, 255) / 255``
(not quantised), sigma drawn from a list, from ``{min, max}`` (uniform, as DSRIR) or fixed; in training after the
crop.

Determinism: training draws crops, flips, sigma (Python's ``random``) and noise (NumPy's global RNG) in the process
that loads, as BasicSR's datasets do; BasicSR seeds those per worker and our resume restores them. Validation and
test draw the sigma and noise of image ``j`` of a task from ``np.random.default_rng([seed, j])``, so every run, in
any order, with any workers or task order, gives the same noisy images.

``balanced: true`` (train): AirNet-style balanced batches, every batch holds every task (``batch_size_per_gpu``
must be at least the number of tasks): the sampler takes the order from :meth:`AllInOneDataset.balanced_indices`,
seeded by epoch and rank, so resume and DDP stay exact. Default false: samples are shuffled freely.

Example::

    datasets:
      train:
        type: AllInOneDataset
        name: all_in_one_3task
        gt_size: 128
        use_hflip: true
        use_rot: true
        io_backend: {type: disk}
        tasks:
          - {kind: denoise, dataroot_gt: [datasets/BSD400, datasets/WED], sigma: [15, 25, 50], repeat: 3}
          - {kind: derain, dataroot: datasets/Rain100L/train, repeat: 120}
          - {kind: dehaze, dataroot: datasets/RESIDE/OTS}
        batch_size_per_gpu: 8
        num_worker_per_gpu: 4
      val_denoise25:
        type: AllInOneDataset
        name: bsd68_s25
        seed: 0
        tasks: [{kind: denoise, dataroot_gt: datasets/BSD68, sigma: 25}]
"""
import bisect
import itertools
import numpy as np
import random
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, get_root_logger, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data as data

from ..checks.options import OptionError, check_bool, check_int, check_known_keys
from ..training.progressive import RESTORMER_KEYS
from .degradation_tasks import check_io_backend, check_task

PHASES = ('train', 'val', 'test')
OWN_KEYS = ('type', 'name', 'phase', 'scale', 'gt_size', 'use_hflip', 'use_rot', 'io_backend', 'seed', 'tasks',
            'balanced', 'check_images')  # check_images: read by the pre-flight checks (mclir_basicsr.preflight)
LOADER_KEYS = ('batch_size_per_gpu', 'num_worker_per_gpu', 'use_shuffle', 'dataset_enlarge_ratio', 'prefetch_mode',
               'num_prefetch_queue', 'pin_memory', 'persistent_workers')  # read by BasicSR's build_dataloader/train
LOADER_KEYS += tuple(RESTORMER_KEYS)  # Restormer's progressive training, read by progressive.py


def _phase(ds, key):
    """``phase`` (set by BasicSR's ``parse_options``), else the prefix of the key (``datasets.val_2`` -> val)."""
    phase = ds.get('phase')
    if phase is None and key.startswith('datasets.'):
        phase = key.split('.', 1)[1].split('_')[0]
    if phase not in PHASES:
        raise OptionError(f'{key}.phase must be one of {", ".join(PHASES)}, got {phase!r}.')
    return phase


def check_dataset_options(ds, key):
    """Check a whole ``AllInOneDataset`` block; return ``(settings dict, [Task, ...])``. Lists files, decodes none."""
    if not isinstance(ds, dict):
        raise OptionError(f'{key} must be a mapping of dataset options, got {ds!r}.')
    check_known_keys(ds, OWN_KEYS + LOADER_KEYS, key)
    phase = _phase(ds, key)
    if ds.get('scale', 1) != 1:
        raise OptionError(f'{key}.scale: AllInOneDataset pairs same-size images (scale 1), got {ds["scale"]!r}. Set '
                          f'the top-level scale: 1.')
    s = {'phase': phase, 'seed': check_int(ds.get('seed', 0), f'{key}.seed', low=0),
         'use_hflip': check_bool(ds.get('use_hflip', True), f'{key}.use_hflip'),
         'use_rot': check_bool(ds.get('use_rot', True), f'{key}.use_rot'), 'gt_size': ds.get('gt_size')}
    if phase == 'train' and s['gt_size'] is None:
        raise OptionError(f'{key}.gt_size is missing: training crops square GT patches of gt_size pixels, e.g. '
                          f'gt_size: 128.')
    if s['gt_size'] is not None:
        s['gt_size'] = check_int(s['gt_size'], f'{key}.gt_size', low=1)
    io = check_io_backend(ds.get('io_backend', {'type': 'disk'}), f'{key}.io_backend')
    tasks = ds.get('tasks')
    if not isinstance(tasks, list) or not tasks:
        raise OptionError(f'{key}.tasks must be a non-empty list of tasks (kind: denoise, derain, dehaze, deblur, '
                          f'lowlight or paired), got {tasks!r}.')
    s['balanced'] = check_bool(ds.get('balanced', False), f'{key}.balanced')
    check_bool(ds.get('check_images', True), f'{key}.check_images')
    batch = ds.get('batch_size_per_gpu')
    if s['balanced'] and isinstance(batch, int) and batch < len(tasks):
        raise OptionError(f'{key}.balanced: every batch must hold every task, but batch_size_per_gpu ({batch}) is '
                          f'smaller than the number of tasks ({len(tasks)}). Raise the batch size or set balanced: '
                          f'false.')
    checked, seen = [], {}
    for i, t in enumerate(tasks):
        task = check_task(t, f'{key}.tasks[{i}]', io)
        if task.name in seen:
            raise OptionError(f'{key}.tasks[{i}].name: {task.name!r} is also the name of tasks[{seen[task.name]}]; '
                              f'give each task its own name (e.g. name: {task.name}_{i}).')
        seen[task.name] = i
        checked.append(task)
    return s, checked


def add_noise(img, sigma, rng=None):
    """``clip(img * 255 + N(0, 1) * sigma, 0, 255) / 255`` (float32) with sigma drawn from the rule ``sigma``.

    ``rng=None`` (training): sigma from Python's ``random``, noise from NumPy's global RNG (BasicSR restores both
    on resume). Otherwise a ``np.random.Generator`` draws both (validation: one generator per image).
    """
    if sigma[0] == 'range':
        level = random.uniform(*sigma[1:]) if rng is None else rng.uniform(*sigma[1:])
    else:
        level = random.choice(sigma[1]) if rng is None else sigma[1][int(rng.integers(len(sigma[1])))]
    noise = np.random.randn(*img.shape) if rng is None else rng.standard_normal(img.shape)
    return (np.clip(img * 255. + noise * level, 0, 255) / 255.).astype(np.float32)


@DATASET_REGISTRY.register()
class AllInOneDataset(data.Dataset):
    """Several degradation tasks in one dataset; see the module docstring for layouts, options and determinism.

    Args:
        opt (dict): the dataset's options (``datasets.<phase>``): ``tasks`` (list of ``{kind, ...}``),
            ``phase``, ``gt_size`` (train), ``use_hflip``, ``use_rot``, ``io_backend``, ``seed`` (val/test noise).

    Attributes:
        tasks (list[Task]): the checked tasks, in label order.
        task_names (list[str]): ``name`` of each task (label -> name).
        task_sizes (dict): ``{name: {'kind', 'images', 'repeat', 'samples'}}``.
    """

    @classmethod
    def check_options(cls, ds_opt, key):
        """Run every check of ``ds_opt`` (key path ``key``, e.g. ``datasets.train``) without building the dataset.

        Raises:
            OptionError: the first problem; the message starts with the key path.
        """
        check_dataset_options(ds_opt, key)

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.key = str(opt.get('name') or 'AllInOneDataset')  # the block's key path is unknown here
        settings, self.tasks = check_dataset_options(opt, self.key)
        self.phase, self.seed, self.gt_size = settings['phase'], settings['seed'], settings['gt_size']
        self.use_hflip, self.use_rot = settings['use_hflip'], settings['use_rot']
        self.balanced = settings['balanced'] and self.phase == 'train'
        self.task_names = [t.name for t in self.tasks]
        self.task_sizes = {t.name: {'kind': t.kind, 'images': len(t.samples), 'repeat': t.repeat,
                                    'samples': len(t.samples) * t.repeat} for t in self.tasks}
        self._ends = list(itertools.accumulate(len(t.samples) * t.repeat for t in self.tasks))
        self._clients = {}  # label -> FileClient, opened lazily in the loading process (as BasicSR's datasets)
        logger = get_root_logger()
        for label, t in enumerate(self.tasks):
            logger.info(f'AllInOneDataset {self.key}: label {label} {t.name} (kind {t.kind}): {len(t.samples)} '
                        f'images x repeat {t.repeat} = {len(t.samples) * t.repeat} samples.')

    def __len__(self):
        return self._ends[-1]

    def balanced_indices(self, count, seed):
        """``count`` dataset indices in which position ``p`` holds task ``p % T``: any ``B >= T`` consecutive ones,
        so every batch, contain every task (AirNet-style balanced batches). Each task's samples are drawn in a
        shuffled order (seeded by ``seed``), cycling. BasicSR's sampler asks for this when ``balanced: true``
        (through our resumable sampler; see :mod:`mclir_basicsr.runtime.resume`)."""
        rng = np.random.default_rng(seed)
        starts = [0] + self._ends[:-1]
        streams = [iter(()) for _ in self.tasks]
        out = []
        for p in range(count):
            t = p % len(self.tasks)
            nxt = next(streams[t], None)
            if nxt is None:  # a new shuffled pass over this task's samples
                streams[t] = iter((starts[t] + rng.permutation(self._ends[t] - starts[t])).tolist())
                nxt = next(streams[t])
            out.append(nxt)
        return out

    def locate(self, index):
        """``(label, j)``: the task of dataset index ``index`` and the index of its image in ``tasks[label]``."""
        if not 0 <= index < len(self):
            raise IndexError(f'index {index} out of range for AllInOneDataset {self.key} of length {len(self)}.')
        label = bisect.bisect_right(self._ends, index)
        start = self._ends[label - 1] if label else 0
        return label, (index - start) % len(self.tasks[label].samples)

    def _read(self, label, path, side):
        if label not in self._clients:
            io = dict(self.tasks[label].io_backend)  # a copy: FileClient's caller in BasicSR pops 'type'
            if io['type'] == 'lmdb':
                io.update(db_paths=list(self.tasks[label].roots), client_keys=['lq', 'gt'])
            self._clients[label] = FileClient(io.pop('type'), **io)
        return imfrombytes(self._clients[label].get(path, side), float32=True)

    def __getitem__(self, index):
        label, j = self.locate(index)
        task = self.tasks[label]
        lq_path, gt_path = task.samples[j]
        img_gt = self._read(label, gt_path, 'gt')
        img_lq = None if task.kind == 'denoise' else self._read(label, lq_path, 'lq')
        if img_lq is not None and img_lq.shape[:2] != img_gt.shape[:2]:
            raise OptionError(f'{task.key}: LQ {lq_path} is {img_lq.shape[0]}x{img_lq.shape[1]} but its GT {gt_path} '
                              f'is {img_gt.shape[0]}x{img_gt.shape[1]}; all-in-one pairs must have the same size.')
        if self.phase == 'train':
            h, w = img_gt.shape[:2]
            if min(h, w) < self.gt_size:
                raise OptionError(f'{self.key}.gt_size: {gt_path} ({task.key}) is {h}x{w}, smaller than the '
                                  f'{self.gt_size}x{self.gt_size} patch; lower gt_size or remove the image.')
            if img_lq is None:
                img_gt = augment(paired_random_crop(img_gt, img_gt, self.gt_size, 1, gt_path)[0], self.use_hflip,
                                 self.use_rot)
            else:
                img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.gt_size, 1, gt_path)
                img_gt, img_lq = augment([img_gt, img_lq], self.use_hflip, self.use_rot)
        if task.kind == 'denoise':
            rng = None if self.phase == 'train' else np.random.default_rng([self.seed, j])
            img_lq = add_noise(img_gt, task.sigma, rng)
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': lq_path, 'gt_path': gt_path, 'label': label}
