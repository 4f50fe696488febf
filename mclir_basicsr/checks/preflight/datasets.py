"""Dataset checks: a registered type, existing dataroots, a dataset class's own checks (a classmethod
``check_options(ds_opt, key)``, as this plugin's datasets have), and for ``PairedImageDataset`` (and subclasses)
and ``AllInOneDataset`` the options they read, the pairs they will build, every image and their sizes and colour.

A dataset class may say what it reads (the hooks of :mod:`mclir_basicsr.checks.preflight`): ``dataroot_keys``
(only these dataroots are checked; without ``dataroot_lq`` each GT image is its own partner, at scale 1),
``paired_files(ds_opt, key)`` (the GT/LQ files it pairs from folders, or None for BasicSR's pairing by name; a class
with it is checked as pairs even if it is no ``PairedImageDataset``) and ``default_scale`` (when no ``scale`` is set).

``datasets.<phase>.check_images`` (true or false, default true) switches off, for one dataset, reading every image's
header and end; see :mod:`mclir_basicsr.preflight`."""
import os.path as osp
from basicsr.data.paired_image_dataset import PairedImageDataset  # importing basicsr.data fills DATASET_REGISTRY
from basicsr.utils.registry import DATASET_REGISTRY

from ...data.all_in_one_dataset import AllInOneDataset
from ..options import OptionError, check_bool, nearest, registered_name
from .all_in_one import check_all_in_one
from .files import where
from .pairs import _check_folder, check_lmdb_keys, disk_pairs, file_pairs, key_pairs, lmdb_meta, lmdb_pairs
from .sizes import check_sizes

SWITCH = 'check_images'  # datasets.<phase>.check_images: false skips reading every image's header and end


def check_dataset(opt, phase_key, ds):
    """Check the dataset ``opt['datasets'][phase_key]`` (``ds``).

    Raises:
        OptionError: the first problem found; the message starts with ``datasets.<phase_key>``.
    """
    key = f'datasets.{phase_key}'
    if not isinstance(ds, dict):
        raise OptionError(f'{key} must be a mapping of dataset options, got {ds!r}.')
    cls = registered_name(DATASET_REGISTRY, ds.get('type'), 'dataset', f'{key}.type')
    paired = isinstance(cls, type) and issubclass(cls, PairedImageDataset)
    listing = getattr(cls, 'paired_files', None)  # a class that lists its own GT/LQ files
    read = getattr(cls, 'dataroot_keys', None)  # the dataroots a class reads, where it says (others: not paths)
    if paired:
        for k in ('dataroot_gt', 'dataroot_lq'):
            if ds.get(k) is None:
                raise OptionError(f'{key}.{k} is missing: {ds["type"]} needs both dataroot_gt and dataroot_lq '
                                  f'(the GT and LQ image folders or lmdbs).')
    for k in (k for k in ds if k.startswith('dataroot_') and ds[k] is not None and (read is None or k in read)):
        path = ds[k]
        if not isinstance(path, str):
            if paired or read is not None:
                raise OptionError(f'{key}.{k} must be a path, got {path!r}.')
            continue  # another dataset's own convention: not ours to judge
        if not osp.exists(path):
            raise OptionError(f'{key}.{k}: {path} does not exist{where(path)}. Fix the path, or create the data '
                              f'(mclir-make-lmdb packs image folders into lmdb).')
    every = _switch(key, ds)
    own_checks = getattr(cls, 'check_options', None)
    if callable(own_checks):
        own_checks(ds, key)
    if paired or callable(listing):
        _check_paired(opt, key, ds, every, cls)
    elif isinstance(cls, type) and issubclass(cls, AllInOneDataset):
        check_all_in_one(key, ds, every)


def _switch(key, ds):
    """``datasets.<phase>.check_images``: a boolean, default true; a misspelt one is refused (BasicSR's datasets
    ignore unknown keys, so the misspelt switch would silently do nothing)."""
    typo = next((k for k in ds if k != SWITCH and nearest(k, (SWITCH, ), cutoff=0.75)), None)
    if typo is not None:
        raise OptionError(f'{key}.{typo} is not an option of {key} (BasicSR would ignore it). Did you mean '
                          f'{key}.{SWITCH}?')
    return check_bool(ds.get(SWITCH, True), f'{key}.{SWITCH}')


def _scale(opt, key, ds, default=None):
    scale = ds.get('scale', opt.get('scale', default))
    if scale is None:
        raise OptionError(f'scale is missing: {ds["type"]} ({key}) needs the top-level key scale (1 for restoration '
                          f'at the same size, e.g. denoising).')
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise OptionError(f'scale must be an integer >= 1, got {scale!r} (used by {key}).')
    return scale


def _phase(key, ds):
    """``train``, ``val`` or ``test``: BasicSR's ``phase`` entry, else the key's prefix (``datasets.val_2``)."""
    return ds.get('phase') or key.split('.', 1)[1].split('_')[0]


def _sides(cls):
    """The option key of each side's images: a class reading no ``dataroot_lq`` pairs each GT image with itself."""
    read = getattr(cls, 'dataroot_keys', ('dataroot_gt', 'dataroot_lq'))
    return {'gt': 'dataroot_gt', 'lq': 'dataroot_lq' if 'dataroot_lq' in read else 'dataroot_gt'}


def _listed_pairs(key, ds, listing, sides):
    """:class:`~.pairs.Pairs` of the files the class pairs itself (``listing``: its ``paired_files``), after checking
    its folders; None where it pairs by name as BasicSR does."""
    for k in sorted(set(sides.values())):  # a folder listing reads every file; a meta_info_file only those named
        _check_folder(f'{key}.{k}', ds[k], only_images=ds.get('meta_info_file') is None)
    files = listing(ds, key)
    if files is None:
        return None
    return file_pairs(files, {s: ds[k] for s, k in sides.items()}, {s: f'{key}.{k}' for s, k in sides.items()},
                      partnered=sides['gt'] != sides['lq'])


def _gt_lmdb_pairs(key, ds):
    """:class:`~.pairs.Pairs` of an lmdb of GT images each its own partner, in ``meta_info.txt`` order (BasicSR's
    ``paths_from_lmdb``)."""
    root, root_key = ds['dataroot_gt'], f'{key}.dataroot_gt'
    if not root.endswith('.lmdb'):
        raise OptionError(f'{root_key}: {root} must end with ".lmdb" with io_backend type lmdb (BasicSR requires it). '
                          f'Rename it, or set {key}.io_backend: {{type: disk}} for an image folder.')
    meta = lmdb_meta(root_key, root)
    names = list(meta)
    check_lmdb_keys(key, 'gt', root, names)
    pairs = key_pairs(names, {'gt': root, 'lq': root}, {'gt': meta, 'lq': meta}, dict.fromkeys(('gt', 'lq'), root_key))
    pairs.partnered = False
    return pairs


def _check_paired(opt, key, ds, every, cls):
    scale = _scale(opt, key, ds, getattr(cls, 'default_scale', None))
    io = ds.get('io_backend')
    if not isinstance(io, dict) or 'type' not in io:
        raise OptionError(f'{key}.io_backend is missing or has no type: add io_backend: {{type: disk}} for image '
                          f'folders or {{type: lmdb}} for lmdbs.')
    phase = _phase(key, ds)
    gt_size = None
    if phase == 'train':
        gt_size = ds.get('gt_size')
        if isinstance(gt_size, bool) or not isinstance(gt_size, int) or gt_size < scale:
            raise OptionError(f'{key}.gt_size must be an integer >= scale ({scale}) for training (the GT patch '
                              f'size), got {gt_size!r}.')
    sides, listing = _sides(cls), getattr(cls, 'paired_files', None)
    if io['type'] == 'lmdb':
        pairs = lmdb_pairs(key, ds) if sides['lq'] == 'dataroot_lq' else _gt_lmdb_pairs(key, ds)
    elif io['type'] == 'disk':
        pairs = _listed_pairs(key, ds, listing, sides) if callable(listing) else None
        pairs = disk_pairs(key, ds) if pairs is None else pairs
    else:  # memcached etc.: nothing we can read cheaply
        return
    check_sizes(key, ds, pairs, scale, phase, gt_size, every, y_key=f'{key}.color')
