"""DCPT's dataset types (hoatong2411/dcpt at edd4c7a, ``basicsr/data/paired_image_dataset.py``; the fork-only
``MultiDegradationDataset`` from its HEAD 0c9ea11), with their rules.

* ``DCPTPairedImageDataset`` (their ``PairedImageDataset``; BasicSR's name is taken): GT/LQ pairs by name as
  BasicSR's (lmdb, ``meta_info_file``, folders; an LQ name containing ``_HR_`` is looked up with ``_LRBI_``).
* GT only, the LQ synthesised from the GT after the crop (``dataroot_lq`` is never read):
  ``PairedImageDenoiseDataset`` (Gaussian noise of ``sigma_type`` / ``sigma_range`` on the 0..255 scale, never
  clipped; NumPy seeded with the item's index in training, 0 outside), ``PairedImageJPEGCARDataset`` (OpenCV JPEG of
  ``q_type`` / ``q_range`` on the 8-bit BGR image), ``PairedImageMosaicDataset`` (RGGB mosaic, edge-aware demosaicing;
  LQ channels reversed w.r.t. the GT, as theirs), ``PairedImageInpaintingDataset`` (5..10 white or black lines).
* ``PairedImageDehazeDataset``: each LQ file of ``dataroot_lq`` with the GT ``<LQ name up to the first _><suffix>``
  (``suffix`` default ``.jpg``) in ``dataroot_gt``: RESIDE's ``0001_0.8_0.2.jpg`` -> ``0001.jpg``. Disk only.
* ``MultiDegradationDataset``: one ``DCPTPairedImageDataset`` per ``degradation_types`` entry (lists of dataroots),
  concatenated with ``dataset_enlarge_ratio`` repeats; items carry ``dataset_idx``, the entry's position.

Training crops ``gt_size`` (default 128; paired: required) with BasicSR's ``paired_random_crop``, then their augment
(:func:`.dcpt_degradations.their_augment`); outside training ``center_crop`` (if set). ``color: y`` reads grayscale,
``mean`` / ``std`` normalise. Items: ``{'lq', 'gt', 'lq_path', 'gt_path'}``, CHW float32 RGB in [0, 1] (Denoise:
not clipped; Mosaic: LQ in BGR order), ``lq_path`` the GT path except for the two paired types.

Deliberately not as theirs: folders are listed by BasicSR's ``scandir``, sorted (theirs: ``os.listdir`` order, which
depends on the file system, hidden files and sub-folders included); noise from a private NumPy generator (theirs
reseeds the global one); a ``center_crop`` larger than an image is an error (theirs returns a smaller, shifted slice);
a ``q_type: random`` quality is rounded (OpenCV refuses theirs, a float); Mosaic works on odd sizes (theirs fails
computing an unused 4-channel CFA); refused as silently ignored or not reproduced: ``use_hflip`` / ``use_rot`` false,
``hist`` true, ``decode`` false, ``depth`` 16, ``prctile_norm``, ``multi``. Pre-flight hooks
(:mod:`mclir_basicsr.checks.preflight`): ``check_options``, ``dataroot_keys``, ``paired_files``, ``default_scale``.
"""
import os.path as osp
import re
from basicsr.data.data_util import paths_from_folder, paths_from_lmdb
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils import scandir
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data as data

from ...checks.options import OptionError
from .dcpt_degradations import (LabelledConcat, TheirReading, bayer_mosaic, check_levels, check_reading, draw_level,
                                draw_lines, gaussian_noise, is_lmdb, jpeg, multi_entries, to_rgb)


@DATASET_REGISTRY.register()
class DCPTPairedImageDataset(TheirReading, PairedImageDataset):
    """Their ``PairedImageDataset``: BasicSR's pairing (plus ``_HR_`` -> ``_LRBI_``), their augment,
    ``center_crop`` outside training, GT cropped to LQ x ``scale`` outside training."""

    dataroot_keys = ('dataroot_gt', 'dataroot_lq')
    default_scale = None  # theirs reads opt['scale'] without a default (their files set scale: 1)

    @classmethod
    def check_options(cls, ds, key):
        """Their keys (messages start with ``key``), and ``hist`` / ``multi``, which theirs ignores / we do not read."""
        check_reading(ds, key, 'DCPTPairedImageDataset')
        if ds.get('hist', False) is not False:
            raise OptionError(f'{key}.hist: DCPT\'s PairedImageDataset ignores it (only their '
                              f'PairedImageTxtlistDataset equalises histograms), so {ds["hist"]!r} would do nothing; '
                              f'remove the key or set false.')
        if ds.get('multi', False) is not False:
            raise OptionError(f'{key}.multi: LQ names without extension are not supported here (no DCPT option file '
                              f'uses them); remove the key.')
        tmpl = ds.get('filename_tmpl', '{}')
        if not isinstance(tmpl, str) or '{}' not in tmpl:
            raise OptionError(f'{key}.filename_tmpl must be a string containing "{{}}" (the GT basename), got '
                              f'{tmpl!r}.')

    @classmethod
    def paired_files(cls, ds, key):
        """``{GT name: {'gt', 'lq'}}`` for folders (GT sorted; LQ name ``filename_tmpl`` of the GT basename plus its
        extension, ``_HR_`` -> ``_LRBI_``); None for lmdb and ``meta_info_file`` (BasicSR's pairing, as theirs)."""
        if is_lmdb(ds) or ds.get('meta_info_file') is not None:
            return None
        gt_dir, lq_dir = ds['dataroot_gt'], ds['dataroot_lq']
        gt_names, lq_names = sorted(scandir(gt_dir)), set(scandir(lq_dir))
        if len(gt_names) != len(lq_names):
            raise OptionError(f'{key}.dataroot_lq: {lq_dir} holds {len(lq_names)} files but {gt_dir} (dataroot_gt) '
                              f'{len(gt_names)}; each GT image needs one LQ partner. Add or remove images.')
        files = {}
        for name in gt_names:
            base, ext = osp.splitext(name)
            partner = (ds.get('filename_tmpl', '{}').format(base) + ext).replace('_HR_', '_LRBI_')
            if partner not in lq_names:
                raise OptionError(f'{key}.dataroot_lq: {osp.join(lq_dir, partner)} (the partner of '
                                  f'{osp.join(gt_dir, name)}) does not exist. Add it, or fix filename_tmpl.')
            files[name] = {'gt': osp.join(gt_dir, name), 'lq': osp.join(lq_dir, partner)}
        return files

    def __init__(self, opt):
        key = str(opt.get('name') or type(self).__name__)  # the block's key path is unknown here
        self.check_options(opt, key)
        files = self.paired_files(opt, key)
        if files is None:
            super().__init__(opt)  # BasicSR's lmdb / meta_info_file listing (theirs is the same)
        else:  # what BasicSR's __init__ sets, with their folder pairing
            data.Dataset.__init__(self)
            self.opt, self.file_client, self.io_backend_opt = opt, None, opt['io_backend']
            self.gt_folder, self.lq_folder = opt['dataroot_gt'], opt['dataroot_lq']
            self.filename_tmpl = opt.get('filename_tmpl', '{}')
            self.paths = [{'lq_path': f['lq'], 'gt_path': f['gt']} for f in files.values()]

    def __getitem__(self, index):
        gt_path, lq_path = self.paths[index]['gt_path'], self.paths[index]['lq_path']
        scale = self.opt['scale']
        gt, lq = self._crop(self._read(gt_path, 'gt'), self._read(lq_path, 'lq'), gt_path, scale)
        if self.opt['phase'] != 'train':  # GT cropped to LQ x scale (SR benchmark sets)
            gt = gt[:lq.shape[0] * scale, :lq.shape[1] * scale]
        if gt.shape[-1] == lq.shape[-1] == 3:
            gt, lq = to_rgb(gt), to_rgb(lq)
        return self._item(gt, lq, lq_path, gt_path)


class _FromGT(TheirReading, data.Dataset):
    """A GT-only type: the LQ is made from the (cropped) GT by :meth:`degrade`."""

    dataroot_keys = ('dataroot_gt', )  # each GT image is its own partner for the pre-flight checks
    default_scale = 1
    reads_uint8 = False  # Mosaic, Inpainting: uint8 decoding, converted to RGB before the crop

    @classmethod
    def check_options(cls, ds, key):
        if not isinstance(ds.get('dataroot_gt'), str):
            raise OptionError(f'{key}.dataroot_gt must be the folder (or lmdb) of clean images, got '
                              f'{ds.get("dataroot_gt")!r}.')
        check_reading(ds, key, cls.__name__, colour_only=cls.reads_uint8)
        cls.check_degradation(ds, key)

    @classmethod
    def check_degradation(cls, ds, key):
        """The keys of the degradation (none by default)."""

    @classmethod
    def paired_files(cls, ds, key):
        """Every GT image (sorted) paired with itself."""
        return {osp.relpath(p, ds['dataroot_gt']): {'gt': p, 'lq': p} for p in cls._listed(ds)}

    @staticmethod
    def _listed(ds):
        """The GT paths (lmdb keys in ``meta_info.txt`` order); ``meta_info_file`` is not read (nor by theirs)."""
        return paths_from_lmdb(ds['dataroot_gt']) if is_lmdb(ds) else sorted(paths_from_folder(ds['dataroot_gt']))

    def __init__(self, opt):
        super().__init__()
        self.check_options(opt, str(opt.get('name') or type(self).__name__))
        self.opt = opt
        if is_lmdb(opt):
            opt['io_backend'] = dict(opt['io_backend'], db_paths=[opt['dataroot_gt']], client_keys=['gt'])
        self.paths = self._listed(opt)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        gt_path = self.paths[index]
        gt = self._read(gt_path, 'gt', float32=not self.reads_uint8)
        if self.reads_uint8:
            gt = to_rgb(gt)
        gt, lq = self._crop(gt, gt.copy(), gt_path)
        return self._item(*self.degrade(gt, lq, index), gt_path, gt_path)

    def degrade(self, gt, lq, index):
        """(GT, LQ) HWC float32 in their final channel order, from the cropped copies."""
        raise NotImplementedError


@DATASET_REGISTRY.register()
class PairedImageDenoiseDataset(_FromGT):
    """GT + N(0, sigma / 255) on the RGB image, unclipped; NumPy seeded ``index`` (training) or 0 (otherwise)."""

    @classmethod
    def check_degradation(cls, ds, key):
        check_levels(ds, key, 'sigma_type', 'sigma_range', 'noise sigma on the 0..255 scale')

    def degrade(self, gt, lq, index):
        sigma = draw_level(self.opt['sigma_type'], self.opt['sigma_range'])
        seed = index if self.opt['phase'] == 'train' else 0  # the same noise field for an image every epoch
        return to_rgb(gt), gaussian_noise(to_rgb(lq), sigma, seed)


@DATASET_REGISTRY.register()
class PairedImageJPEGCARDataset(_FromGT):
    """GT through OpenCV's JPEG at quality ``q_type`` / ``q_range`` (on the 8-bit BGR image)."""

    @classmethod
    def check_degradation(cls, ds, key):
        check_levels(ds, key, 'q_type', 'q_range', 'JPEG quality', high=100)

    def degrade(self, gt, lq, index):
        quality = draw_level(self.opt['q_type'], self.opt['q_range'])
        return to_rgb(gt), to_rgb(jpeg(lq, quality))


@DATASET_REGISTRY.register()
class PairedImageMosaicDataset(_FromGT):
    """GT RGGB-mosaiced and demosaiced by OpenCV; the LQ's channels come back in BGR order (theirs)."""
    reads_uint8 = True

    def degrade(self, gt, lq, index):
        return gt.astype('float32') / 255., bayer_mosaic(lq).astype('float32') / 255.


@DATASET_REGISTRY.register()
class PairedImageInpaintingDataset(_FromGT):
    """GT with 5..10 white or black lines (Python's ``random``, not seeded per item: masks change every draw)."""
    reads_uint8 = True

    def degrade(self, gt, lq, index):
        return gt.astype('float32') / 255., draw_lines(lq.astype('float32') / 255.)


@DATASET_REGISTRY.register()
class PairedImageDehazeDataset(TheirReading, data.Dataset):
    """Hazy images of ``dataroot_lq``, each with the GT ``<name up to the first _><suffix>``; ``lq_path`` is the GT
    path (theirs)."""

    dataroot_keys = ('dataroot_gt', 'dataroot_lq')
    default_scale = 1

    @classmethod
    def check_options(cls, ds, key):
        check_reading(ds, key, 'PairedImageDehazeDataset', lmdb=False)
        if not isinstance(ds.get('suffix', '.jpg'), str):
            raise OptionError(f'{key}.suffix must be the GT file extension, such as .png, got {ds["suffix"]!r}.')

    @staticmethod
    def _pairs(ds):
        """``[(lq path, gt path)]``, LQ sorted."""
        suffix = ds.get('suffix', '.jpg')
        return [(p, osp.join(ds['dataroot_gt'], osp.basename(p).split('_')[0] + suffix))
                for p in sorted(paths_from_folder(ds['dataroot_lq']))]

    @classmethod
    def paired_files(cls, ds, key):
        """``{LQ name: {'gt', 'lq'}}``; raises OptionError (naming ``dataroot_gt``) for a missing GT."""
        files = {}
        for lq, gt in cls._pairs(ds):
            if not osp.isfile(gt):
                raise OptionError(f'{key}.dataroot_gt: {gt} (the GT of {lq}: its name up to the first "_" plus '
                                  f'suffix {ds.get("suffix", ".jpg")!r}) does not exist. Add it, or fix suffix.')
            files[osp.basename(lq)] = {'gt': gt, 'lq': lq}
        return files

    def __init__(self, opt):
        super().__init__()
        self.check_options(opt, str(opt.get('name') or type(self).__name__))
        self.opt, self.paths = opt, self._pairs(opt)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        lq_path, gt_path = self.paths[index]
        gt, lq = self._crop(self._read(gt_path, 'gt'), self._read(lq_path, 'lq'), gt_path)
        if gt.shape[-1] == lq.shape[-1] == 3:
            gt, lq = to_rgb(gt), to_rgb(lq)
        return self._item(gt, lq, gt_path, gt_path)


@DATASET_REGISTRY.register()
class MultiDegradationDataset(LabelledConcat):
    """The fork's concatenation of ``DCPTPairedImageDataset`` s, one per ``degradation_types`` entry, each
    ``dataset_enlarge_ratio`` times (int, or one per entry); item ``idx`` of block ``i`` is item ``idx %
    len(block)`` of its dataset, with ``dataset_idx = i``."""

    dataroot_keys = ()  # lists: checked per entry by check_options

    @classmethod
    def check_options(cls, ds, key):
        """The lists, then each entry as a ``DCPTPairedImageDataset`` (every pre-flight check; a message's
        ``dataroot_gt`` / ``dataroot_lq`` gets the entry's index)."""
        from ...checks.preflight.datasets import check_dataset  # here: preflight imports the registered datasets
        for i, (_, sub, _) in enumerate(multi_entries(ds, key)):
            try:
                check_dataset({}, key.split('.', 1)[-1], sub)
            except OptionError as err:
                indexed = re.sub(rf'({re.escape(key)}\.dataroot_(?:gt|lq))\b', rf'\g<1>[{i}]', str(err))
                raise OptionError(indexed) from None

    def __init__(self, opt):
        super().__init__()
        self.opt, entries = opt, multi_entries(opt, str(opt.get('name') or type(self).__name__))
        self.degradation_types = [name for name, _, _ in entries]
        self.concatenate([DCPTPairedImageDataset(sub) for _, sub, _ in entries], [ratio for _, _, ratio in entries])
