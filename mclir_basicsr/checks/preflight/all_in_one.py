"""The images of an ``AllInOneDataset``: each task checked as GT/LQ pairs at scale 1, as :mod:`.sizes` checks a
``PairedImageDataset``.

The tasks come from the dataset's own option check (:func:`~mclir_basicsr.data.all_in_one_dataset
.check_dataset_options`: kinds, folders, pairing, lmdb keys). Added here: no sample listed twice (a repeated
``meta_info_file`` line, a folder given twice, an lmdb key listed twice in ``meta_info.txt``), lmdb keys present in
the lmdb, every image readable (with ``check_images``), pairs of the same size, images at least ``gt_size`` for
training. Messages start with the task's key (``datasets.train.tasks[1].dataroot: ...``) or ``datasets.<phase>
.gt_size``. Denoising tasks have no LQ files: their clean images are both sides of each pair.
"""
import collections
import os.path as osp

from ...data.all_in_one_dataset import check_dataset_options
from ...utils import few
from ..options import OptionError
from .pairs import check_lmdb_keys, file_pairs, key_pairs, lmdb_meta
from .sizes import check_sizes


def _no_repeats(task, raw):
    """Refuse a sample listed twice: BasicSR-style datasets would train on it once per listing."""
    counts = collections.Counter(task.samples)
    listed = 0 if task.kind == 'dehaze' else 1  # the side a meta_info_file lists: hazy images, else GT images
    repeated = [sample[listed] for sample, n in counts.items() if n > 1]
    if not repeated:
        return
    base = osp.commonpath([osp.dirname(osp.abspath(p)) for p in repeated])
    repeated = [osp.relpath(osp.abspath(p), base) for p in repeated]
    if raw.get('meta_info_file') is not None:
        where, fix = f'{task.key}.meta_info_file', 'remove the repeated lines'
    else:
        where = f'{task.key}.dataroot_gt' if task.kind in ('denoise', 'paired') else f'{task.key}.dataroot'
        fix = 'give each folder once'
    raise OptionError(f'{where}: {len(repeated)} image(s) are listed more than once {few(repeated)}; each would be '
                      f'trained on once per listing. To train on a task more often use {task.key}.repeat; {fix}.')


def _lmdb_task_pairs(task):
    roots = {'gt': task.roots[1], 'lq': task.roots[0]}  # task.roots: (dataroot_lq, dataroot_gt)
    names = [lq for lq, _ in task.samples]  # the lmdb keys, the same for GT and LQ
    metas = {side: lmdb_meta(f'{task.key}.dataroot_{side}', root) for side, root in roots.items()}
    for side, root in roots.items():
        check_lmdb_keys(task.key, side, root, names)
    return key_pairs(names, roots, metas, {s: f'{task.key}.dataroot_{s}' for s in roots})


def _file_task_pairs(task):
    lq_paths = [lq for lq, _ in task.samples]
    base = osp.commonpath([osp.dirname(osp.abspath(p)) for p in lq_paths])
    files = {osp.relpath(osp.abspath(lq), base): {'lq': lq, 'gt': gt} for lq, gt in task.samples}
    folders = {s: osp.commonpath([osp.dirname(osp.abspath(f[s])) for f in files.values()]) for s in ('gt', 'lq')}
    if task.kind == 'denoise':
        keys = dict.fromkeys(('gt', 'lq'), f'{task.key}.dataroot_gt')
    elif task.kind == 'paired':
        keys = {s: f'{task.key}.dataroot_{s}' for s in ('gt', 'lq')}
    else:
        keys = dict.fromkeys(('gt', 'lq'), f'{task.key}.dataroot')
    return file_pairs(files, folders, keys, partnered=task.kind != 'denoise')


def check_all_in_one(key, ds, every):
    """Check the images of every task of the ``AllInOneDataset`` options ``ds`` (key path ``key``).

    Args:
        key (str): ``datasets.<phase>``.
        ds (dict): the dataset options (already checked by the class's ``check_options``).
        every (bool): read every image's header and end (``check_images``); else a sample's headers.
    Raises:
        OptionError: the first problem found.
    """
    settings, tasks = check_dataset_options(ds, key)
    phase = settings['phase']
    for task, raw in zip(tasks, ds['tasks']):
        if task.io_backend['type'] == 'lmdb':  # repeated keys: refused with the meta_info.txt line numbers
            pairs = _lmdb_task_pairs(task)
        else:
            _no_repeats(task, raw)
            pairs = _file_task_pairs(task)
        check_sizes(key, ds, pairs, 1, phase, settings['gt_size'] if phase == 'train' else None, every)
