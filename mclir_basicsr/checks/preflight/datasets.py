"""Dataset checks: a registered type, existing dataroots, a dataset class's own checks (a classmethod
``check_options(ds_opt, key)``, as this plugin's datasets have), and for ``PairedImageDataset`` (and subclasses)
and ``AllInOneDataset`` the options they read, the pairs they will build, every image and their sizes and colour.

``datasets.<phase>.check_images`` (true or false, default true) switches off, for one dataset, reading every image's
header and end; see :mod:`mclir_basicsr.preflight`."""
import os.path as osp
from basicsr.data.paired_image_dataset import PairedImageDataset  # importing basicsr.data fills DATASET_REGISTRY
from basicsr.utils.registry import DATASET_REGISTRY

from ...data.all_in_one_dataset import AllInOneDataset
from ..options import OptionError, check_bool, nearest, registered_name
from .all_in_one import check_all_in_one
from .files import where
from .pairs import disk_pairs, lmdb_pairs
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
    if paired:
        for k in ('dataroot_gt', 'dataroot_lq'):
            if ds.get(k) is None:
                raise OptionError(f'{key}.{k} is missing: {ds["type"]} needs both dataroot_gt and dataroot_lq '
                                  f'(the GT and LQ image folders or lmdbs).')
    for k in (k for k in ds if k.startswith('dataroot_') and ds[k] is not None):
        path = ds[k]
        if not isinstance(path, str):
            if paired:
                raise OptionError(f'{key}.{k} must be a path, got {path!r}.')
            continue  # another dataset's own convention: not ours to judge
        if not osp.exists(path):
            raise OptionError(f'{key}.{k}: {path} does not exist{where(path)}. Fix the path, or create the data '
                              f'(mclir-make-lmdb packs image folders into lmdb).')
    every = _switch(key, ds)
    own_checks = getattr(cls, 'check_options', None)
    if callable(own_checks):
        own_checks(ds, key)
    if paired:
        _check_paired(opt, key, ds, every)
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


def _scale(opt, key, ds):
    scale = ds.get('scale', opt.get('scale'))
    if scale is None:
        raise OptionError(f'scale is missing: {ds["type"]} ({key}) needs the top-level key scale (1 for restoration '
                          f'at the same size, e.g. denoising).')
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise OptionError(f'scale must be an integer >= 1, got {scale!r} (used by {key}).')
    return scale


def _phase(key, ds):
    """``train``, ``val`` or ``test``: BasicSR's ``phase`` entry, else the key's prefix (``datasets.val_2``)."""
    return ds.get('phase') or key.split('.', 1)[1].split('_')[0]


def _check_paired(opt, key, ds, every):
    scale = _scale(opt, key, ds)
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
    if io['type'] == 'lmdb':
        pairs = lmdb_pairs(key, ds)
    elif io['type'] == 'disk':
        pairs = disk_pairs(key, ds)
    else:  # memcached etc.: nothing we can read cheaply
        return
    check_sizes(key, ds, pairs, scale, phase, gt_size, every, y_key=f'{key}.color')
