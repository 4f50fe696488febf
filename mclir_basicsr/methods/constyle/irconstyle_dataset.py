"""The dataset types of IRConStyle's option files (Dongqi-Fan/IRConStyle, ``data/image_datasets.py``), their rules.

* Paired types read as BasicSR's ``PairedImageDataset`` (their base here: lmdb, ``meta_info_file`` or folders;
  ``gt_size`` crop, flips and rotations in training; CHW RGB float32 in [0, 1]), but ``Dataset_Dehaze`` /
  ``Dataset_Maxim_Dehaze`` always, and ``Dataset_Derain`` / ``Dataset_Derain_Maxim`` for folders, pair the k-th file
  of the sorted LQ folder with the k-th of the sorted GT folder, whatever the names.
* Gaussian types read GT only (``dataroot_lq``, ``none`` in their files, is never read); LQ = GT (RGB with
  ``in_ch: 3``) + noise, never clipped: training ``torch.randn * sigma / 255`` after crop and flips, sigma by
  ``sigma_type`` / ``sigma_range`` (Python's ``random``); validation and test ``N(0, sigma_test / 255)`` from NumPy
  seeded 0 anew for every image, in H, W, C order (a private ``RandomState(0)``: their ``np.random.seed(0)``'s numbers,
  NumPy's global generator untouched).
* ``PAD(f)``: GT and LQ reflect-padded at the bottom and right to the next multiple of ``f``, never cropped back: 8 in
  test (Paired, Derain, Dehaze), 64 in test (Derain_Maxim), 64 always (Maxim, Maxim_Dehaze, Maxim_GaussianDenoising),
  8 outside training (GaussianDenoising).

``scale`` defaults to 1 (theirs read it in training only). Items: ``{'lq', 'gt', 'lq_path', 'gt_path'}`` (Gaussian:
``lq_path`` is the GT path). ``Dataset_Derain_Maxim`` is unregistered in their code; here it is registered. Dehaze
types refuse lmdb (their code lists folders, then cannot open them). For the pre-flight checks each class declares
``dataroot_keys``, ``paired_files(ds, key)`` (its pairs where they are not BasicSR's by name) and ``check_options``.
"""
import cv2
import numpy as np
import os.path as osp
import random
import torch
import torch.nn.functional as F
from basicsr.data.data_util import paths_from_lmdb
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, imfrombytes, img2tensor, scandir
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data as data

from ...checks.options import OptionError, check_bool, check_number

SIGMA_TYPES = ('constant', 'random', 'choice')


def pad_to_multiple(img, factor):
    """Their ``PAD(factor)``: reflect-pad a CHW tensor at the bottom and right to the next multiple of ``factor``."""
    pad_h, pad_w = -img.shape[-2] % factor, -img.shape[-1] % factor
    return F.pad(img, (0, pad_w, 0, pad_h), mode='reflect')


def _phase(ds, key):
    """BasicSR's ``phase``, else the prefix of the block's key (``datasets.val_2`` -> val)."""
    return ds.get('phase') or key.rsplit('.', 1)[-1].split('_')[0]


def _io_type(ds):
    io = ds.get('io_backend')
    return io.get('type') if isinstance(io, dict) else None


def _check_flips(ds, key):
    """Training reads ``use_hflip`` and ``use_rot`` without defaults (a missing one stops their code)."""
    for flag in ('use_hflip', 'use_rot'):
        if flag not in ds:
            raise OptionError(f'{key}.{flag} is missing: {ds.get("type")} reads it in training (true or false).')
        check_bool(ds[flag], f'{key}.{flag}')


class _PairedByTheirRules(PairedImageDataset):
    """BasicSR's paired reading with the listing and padding rules of one of their types (class attributes)."""

    pad_factor = 8
    pad_when = 'test'  # 'test', or 'always'
    by_position = 'never'  # 'never' (by name, BasicSR), 'folder' (when listing folders), 'always'
    dataroot_keys = ('dataroot_gt', 'dataroot_lq')
    default_scale = 1

    @classmethod
    def _pairs_by_position(cls, ds):
        folders = _io_type(ds) != 'lmdb' and ds.get('meta_info_file') is None
        return cls.by_position == 'always' or (cls.by_position == 'folder' and folders)

    @classmethod
    def check_options(cls, ds, key):
        """Refuse what their code cannot run (the message starts with ``key``): lmdb for a Dehaze type, a missing
        ``use_hflip`` / ``use_rot`` in training."""
        if cls.by_position == 'always' and _io_type(ds) == 'lmdb':
            raise OptionError(f'{key}.io_backend: {cls.__name__} pairs image folders by sorted position and cannot '
                              f'read lmdb (their code lists the folders, then cannot open them as lmdb); set '
                              f'io_backend: {{type: disk}} with image folders.')
        if _phase(ds, key) == 'train':
            _check_flips(ds, key)

    @classmethod
    def paired_files(cls, ds, key):
        """``{name: {'gt': path, 'lq': path}}`` in position order: the k-th file of the sorted LQ folder with the k-th
        of the sorted GT folder (their ``paired_paths_from_folder_dehaze``); None where the class pairs by name as
        BasicSR does. Raises OptionError (starting with ``key``) for folders holding different numbers of files."""
        if not cls._pairs_by_position(ds):
            return None
        gt_dir, lq_dir = ds['dataroot_gt'], ds['dataroot_lq']
        gt_names, lq_names = sorted(scandir(gt_dir)), sorted(scandir(lq_dir))
        if len(gt_names) != len(lq_names):
            raise OptionError(f'{key}: {cls.__name__} pairs the k-th file of dataroot_lq with the k-th of dataroot_gt '
                              f'(each sorted by name), so both folders must hold as many files, but {gt_dir} holds '
                              f'{len(gt_names)} and {lq_dir} {len(lq_names)}. Add the missing images or remove the '
                              f'extra ones.')
        # a pair's name shows both files: their names need not agree (rain-001.png <-> norain-001.png)
        return {f'{q} <-> {g}': {'gt': osp.join(gt_dir, g), 'lq': osp.join(lq_dir, q)}
                for q, g in zip(lq_names, gt_names)}

    def __init__(self, opt):
        key = str(opt.get('name') or type(self).__name__)  # the block's key path is unknown here
        self.check_options(opt, key)
        opt.setdefault('scale', self.default_scale)  # BasicSR's __getitem__ reads it in every phase
        if self._pairs_by_position(opt):
            # BasicSR's __init__ would pair the folders by name: set what it sets, with their listing
            data.Dataset.__init__(self)
            self.opt, self.file_client, self.io_backend_opt = opt, None, opt['io_backend']
            self.gt_folder, self.lq_folder = opt['dataroot_gt'], opt['dataroot_lq']
            self.filename_tmpl = opt.get('filename_tmpl', '{}')
            self.paths = [{'lq_path': f['lq'], 'gt_path': f['gt']} for f in self.paired_files(opt, key).values()]
        else:
            super().__init__(opt)
        self.mean = self.std = None  # their types never normalise

    def __getitem__(self, index):
        item = super().__getitem__(index)
        if self.pad_when == 'always' or self.opt['phase'] == 'test':
            item['gt'] = pad_to_multiple(item['gt'], self.pad_factor)
            item['lq'] = pad_to_multiple(item['lq'], self.pad_factor)
        return item


@DATASET_REGISTRY.register()
class Dataset_Paired(_PairedByTheirRules):  # noqa: N801
    """GT/LQ pairs by name (as BasicSR); reflect-padded to a multiple of 8 in test."""


@DATASET_REGISTRY.register()
class Dataset_Derain(_PairedByTheirRules):  # noqa: N801
    """Folders paired by sorted position (lmdb and ``meta_info_file`` as BasicSR); padded to 8 in test."""
    by_position = 'folder'


@DATASET_REGISTRY.register()
class Dataset_Derain_Maxim(_PairedByTheirRules):  # noqa: N801
    """As Dataset_Derain, padded to a multiple of 64 in test (unregistered in their code)."""
    by_position = 'folder'
    pad_factor = 64


@DATASET_REGISTRY.register()
class Dataset_Dehaze(_PairedByTheirRules):  # noqa: N801
    """Folders always paired by sorted position (disk only); padded to 8 in test."""
    by_position = 'always'


@DATASET_REGISTRY.register()
class Dataset_Maxim(_PairedByTheirRules):  # noqa: N801
    """As Dataset_Paired, padded to a multiple of 64 in every phase."""
    pad_factor = 64
    pad_when = 'always'


@DATASET_REGISTRY.register()
class Dataset_Maxim_Dehaze(_PairedByTheirRules):  # noqa: N801
    """As Dataset_Dehaze, padded to a multiple of 64 in every phase."""
    by_position = 'always'
    pad_factor = 64
    pad_when = 'always'


def _check_sigmas(ds, key):
    """``sigma_type`` / ``sigma_range`` (training) or ``sigma_test`` (validation, test): present, valid sigmas."""
    if _phase(ds, key) != 'train':
        if 'sigma_test' not in ds:
            raise OptionError(f'{key}.sigma_test is missing: {ds.get("type")} adds Gaussian noise of this sigma '
                              f'(on the 0..255 scale, e.g. 25) to every validation or test image.')
        check_number(ds['sigma_test'], f'{key}.sigma_test', low=0)
        return
    kind, sigmas = ds.get('sigma_type'), ds.get('sigma_range')
    if kind not in SIGMA_TYPES:
        raise OptionError(f'{key}.sigma_type must be one of {", ".join(SIGMA_TYPES)} (training noise level: '
                          f'sigma_range itself, uniform in [sigma_range[0], sigma_range[1]], or one of the list), got '
                          f'{kind!r}.')
    if kind == 'constant':
        check_number(sigmas, f'{key}.sigma_range', low=0)
        return
    if not isinstance(sigmas, (list, tuple)) or not sigmas or (kind == 'random' and len(sigmas) != 2):
        like = '[low, high], e.g. [0, 50]' if kind == 'random' else 'a non-empty list, e.g. [15, 25, 50]'
        raise OptionError(f'{key}.sigma_range must be {like} with sigma_type {kind}, got {sigmas!r}.')
    for i, sigma in enumerate(sigmas):
        check_number(sigma, f'{key}.sigma_range[{i}]', low=0)


class _GaussianByTheirRules(data.Dataset):
    """Clean GT images; the LQ is the GT plus Gaussian noise (their rules, see the module docstring)."""

    pad_factor = 8
    pad_when = 'not_train'  # 'not_train' or 'always'
    dataroot_keys = ('dataroot_gt', )  # dataroot_lq is never read (their files say none)
    default_scale = 1

    @classmethod
    def check_options(cls, ds, key):
        """The keys they read without defaults (the message starts with ``key``): ``dataroot_gt``, ``in_ch``, the
        sigmas of the phase, ``use_hflip`` / ``use_rot`` in training."""
        if not isinstance(ds.get('dataroot_gt'), str):
            raise OptionError(f'{key}.dataroot_gt must be the folder (or lmdb) of clean images, got '
                              f'{ds.get("dataroot_gt")!r}.')
        if ds.get('in_ch') not in (1, 3) or isinstance(ds.get('in_ch'), bool):
            raise OptionError(f'{key}.in_ch must be 3 (images read as RGB) or 1 (grayscale), got '
                              f'{ds.get("in_ch")!r}.')
        _check_sigmas(ds, key)
        if _phase(ds, key) == 'train':
            _check_flips(ds, key)

    @classmethod
    def _listed(cls, ds):
        """The GT paths (lmdb keys) in their order, without reading an image."""
        gt_folder = ds['dataroot_gt']
        if _io_type(ds) == 'lmdb':
            return paths_from_lmdb(gt_folder)  # meta_info.txt order
        if ds.get('meta_info_file') is not None:  # their code meant this (it lacks `import os.path as osp`)
            with open(ds['meta_info_file']) as f:
                return [osp.join(gt_folder, line.split()[0]) for line in f if line.strip()]
        return sorted(scandir(gt_folder, full_path=True))

    @classmethod
    def paired_files(cls, ds, key):
        """``{name: {'gt': path, 'lq': path}}`` with GT and LQ the same file (the noise is added on the fly).
        Raises OptionError (starting with ``key``) for a ``meta_info_file`` naming missing files."""
        meta_file = ds.get('meta_info_file')
        if meta_file is not None and not osp.isfile(str(meta_file)):
            raise OptionError(f'{key}.meta_info_file: {meta_file} does not exist. Fix the path, or remove the key to '
                              f'read every image of dataroot_gt.')
        paths = cls._listed(ds)
        missing = [p for p in paths if not osp.isfile(p)]
        if missing:
            raise OptionError(f'{key}.meta_info_file: {meta_file} names {len(missing)} image(s) missing from '
                              f'{ds["dataroot_gt"]}, e.g. {missing[0]}. Fix the list or the files.')
        return {osp.relpath(p, ds['dataroot_gt']): {'gt': p, 'lq': p} for p in paths}

    def __init__(self, opt):
        super().__init__()
        self.check_options(opt, str(opt.get('name') or type(self).__name__))  # the block's key is unknown here
        opt.setdefault('scale', self.default_scale)
        self.opt, self.phase, self.in_ch = opt, opt['phase'], opt['in_ch']
        self.file_client, self.io_backend_opt, self.gt_folder = None, opt['io_backend'], opt['dataroot_gt']
        if self.io_backend_opt['type'] == 'lmdb':
            self.io_backend_opt['db_paths'], self.io_backend_opt['client_keys'] = [self.gt_folder], ['gt']
        self.paths = self._listed(opt)

    def __len__(self):
        return len(self.paths)

    def _read_gt(self, gt_path):
        """HWC float32 in [0, 1]: RGB (``in_ch: 3``) or grayscale with a channel axis."""
        img_bytes = self.file_client.get(gt_path, 'gt')
        try:
            if self.in_ch == 3:
                return cv2.cvtColor(imfrombytes(img_bytes, float32=True), cv2.COLOR_BGR2RGB)
            return imfrombytes(img_bytes, flag='grayscale', float32=True)[..., None]
        except (AttributeError, cv2.error):  # imdecode gave None
            raise OSError(f'cannot decode the GT image {gt_path}') from None

    def _sigma(self):
        kind, sigmas = self.opt['sigma_type'], self.opt['sigma_range']
        if kind == 'constant':
            return sigmas
        return random.uniform(sigmas[0], sigmas[1]) if kind == 'random' else random.choice(sigmas)

    def __getitem__(self, index):
        if self.file_client is None:  # opened in the loading process, as BasicSR's datasets do
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        gt_path = self.paths[index % len(self.paths)]
        img_gt = self._read_gt(gt_path)
        img_lq = img_gt.copy()
        if self.phase == 'train':
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.opt['gt_size'], self.opt['scale'], gt_path)
            img_gt, img_lq = augment([img_gt, img_lq], self.opt['use_hflip'], self.opt['use_rot'])
            img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=False, float32=True)
            level = torch.tensor([self._sigma()], dtype=torch.float32) / 255.  # float32 as their FloatTensor
            img_lq += torch.randn(img_lq.shape) * level
        else:
            # their np.random.seed(0) before every image, without touching NumPy's global generator
            img_lq += np.random.RandomState(0).normal(0, self.opt['sigma_test'] / 255., img_lq.shape)
            img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=False, float32=True)
        if self.pad_when == 'always' or self.phase != 'train':
            img_gt, img_lq = pad_to_multiple(img_gt, self.pad_factor), pad_to_multiple(img_lq, self.pad_factor)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': gt_path, 'gt_path': gt_path}


@DATASET_REGISTRY.register()
class Dataset_GaussianDenoising(_GaussianByTheirRules):  # noqa: N801
    """Clean images plus Gaussian noise; padded to a multiple of 8 outside training."""


@DATASET_REGISTRY.register()
class Dataset_Maxim_GaussianDenoising(_GaussianByTheirRules):  # noqa: N801
    """As Dataset_GaussianDenoising, padded to a multiple of 64 in every phase."""
    pad_factor = 64
    pad_when = 'always'
