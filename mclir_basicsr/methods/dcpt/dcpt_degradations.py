"""What DCPT's dataset types share (hoatong2411/dcpt at edd4c7a: ``basicsr/data/paired_image_dataset.py``,
``transforms.py``, ``utils/mosaic_util.py``): their ``augment`` and ``center_crop``, the degradations the GT-only
types synthesise (Gaussian noise, JPEG, Bayer mosaic, inpainting lines), reading and tensor conversion, and the
checks of the keys they read.

Random numbers come from the generators theirs use: Python's ``random`` for crops, flips, levels and lines; NumPy for
the noise, from a private ``RandomState(seed)``, which draws what their ``np.random.seed(seed)`` followed by
``np.random.normal`` draws without resetting NumPy's global generator (other code in the loading process keeps its
stream).
"""
import bisect
import copy
import cv2
import itertools
import numpy as np
import random
from basicsr.data.transforms import paired_random_crop
from basicsr.utils import FileClient, imfrombytes, img2tensor
from torch.utils import data
from torchvision.transforms.functional import normalize

from ...checks.options import OptionError, check_bool, check_int, check_number

LEVEL_TYPES = ('constant', 'random', 'choice')  # sigma_type / q_type
UNSUPPORTED = {'decode': True, 'depth': 8, 'prctile_norm': False}  # readable only with these values (no DCPT file
# sets them: raw uint16 buffers, 16-bit decoding of 8-bit bytes and percentile normalisation are not reproduced)


def their_augment(imgs):
    """Their ``augment``, the same for every image: a horizontal flip, a vertical flip or none (1/3 each), then a
    transpose of H and W with probability 3/4. Two ``random.randint`` calls; ``use_hflip`` / ``use_rot`` are not read
    (theirs ignores them too). Returns new contiguous arrays (theirs flips in place)."""
    flip = random.randint(0, 2)  # 0: horizontal, 1: vertical, 2: none
    transpose = random.randint(0, 3) != 0
    out = []
    for img in imgs:
        img = img[:, ::-1] if flip == 0 else img[::-1] if flip == 1 else img
        out.append(np.ascontiguousarray(img.swapaxes(0, 1) if transpose else img))
    return out


def center_crop(img, size, path):
    """The middle ``size`` x ``size`` of an HWC image, their slice ``[(h - size) // 2:(h + size) // 2]`` per axis.

    Raises:
        ValueError: the image is smaller than ``size`` (their slice would silently return a smaller, shifted part).
    """
    h, w = img.shape[:2]
    if h < size or w < size:
        raise ValueError(f'center_crop {size} is larger than the image {path} ({h}x{w}, HxW): lower center_crop or '
                         f'remove the image.')
    return img[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2]


def draw_level(kind, levels):
    """The noise sigma or JPEG quality of one item: ``levels`` itself (constant), uniform in ``[levels[0],
    levels[1]]`` (random) or one of ``levels`` (choice), from Python's ``random`` as theirs."""
    if kind == 'constant':
        return levels
    return random.uniform(levels[0], levels[1]) if kind == 'random' else random.choice(levels)


def gaussian_noise(img, sigma, seed):
    """``img + N(0, sigma / 255)`` drawn in the array's (HWC) order from ``RandomState(seed)``, kept in ``img``'s
    dtype and never clipped: their ``np.random.seed(seed); img += np.random.normal(0, sigma / 255., img.shape)``."""
    return (img + np.random.RandomState(seed).normal(0, sigma / 255., img.shape)).astype(img.dtype)


def jpeg(img, quality):
    """An HWC BGR float image in [0, 1] through OpenCV's JPEG encoder at ``quality`` (rounded to 8 bits first) and
    back: float32 HWC in [0, 1]. A quality drawn by ``q_type: random`` is rounded (OpenCV refuses a float)."""
    quantised = (img * 255).round().astype(np.uint8)
    if quantised.shape[-1] == 1:
        quantised = quantised[..., 0]
    _, encoded = cv2.imencode('.jpg', quantised, [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])
    out = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.
    return out[..., None] if out.ndim == 2 else out


def bayer_mosaic(rgb):
    """Their mosaic of a uint8 RGB image: one channel sampled in an RGGB pattern (R at even row and column, G at
    even/odd and odd/even, B at odd/odd), demosaiced by OpenCV's edge-aware ``COLOR_BAYER_BG2BGR_EA``. OpenCV's
    output is in BGR order, so the channels come back reversed with respect to ``rgb``; theirs keeps it so (their
    pairs), and so does this."""
    cfa = np.empty(rgb.shape[:2], np.uint8)
    cfa[0::2, 0::2] = rgb[0::2, 0::2, 0]
    cfa[0::2, 1::2] = rgb[0::2, 1::2, 1]
    cfa[1::2, 0::2] = rgb[1::2, 0::2, 1]
    cfa[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return cv2.cvtColor(cfa, cv2.COLOR_BAYER_BG2BGR_EA)


def draw_lines(img):
    """Their inpainting degradation of an HWC float image in [0, 1]: 5..10 straight lines 5..10 pixels thick, all
    white (+1) or all black (-1), then clipped to [0, 1]. Python's ``random`` in their order: number of lines,
    thickness, colour, then ``x1, y1, x2, y2`` per line (end points in ``[0, w]`` x ``[0, h]``)."""
    n_lines, thickness = random.randint(5, 10), random.randint(5, 10)
    h, w = img.shape[:2]
    mask = np.zeros((h, w, 3), np.uint8)
    white = random.choice(['white', 'black']) == 'white'
    for _ in range(n_lines):
        x1, y1 = random.randint(0, w), random.randint(0, h)
        x2, y2 = random.randint(0, w), random.randint(0, h)
        ends = np.array([[x1, y1], [x2, y2]], np.int32).reshape(-1, 1, 2)
        cv2.polylines(mask, [ends], False, (1, 1, 1), thickness)
    return np.clip(img + mask if white else img - mask, 0, 1)


# ------------------------------------------------------------------------ reading, as every DCPT type reads
def is_lmdb(ds):
    io = ds.get('io_backend')
    return isinstance(io, dict) and io.get('type') == 'lmdb'


def to_rgb(img):
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img.shape[-1] == 3 else img


class TheirReading:
    """Reading, cropping and tensor conversion shared by their types (``self.opt`` holds the block)."""

    def _read(self, path, side, float32=True):
        """HWC BGR (grayscale with ``color: y``: one channel); float32 in [0, 1], or uint8."""
        if getattr(self, '_client', None) is None:  # opened in the loading process, as BasicSR's datasets do
            backend = dict(self.opt['io_backend'])
            self._client = FileClient(backend.pop('type'), **backend)
        gray = self.opt.get('color') == 'y'
        try:
            img = imfrombytes(self._client.get(path, side), flag='grayscale' if gray else 'color', float32=float32)
            return img[..., None] if img.ndim == 2 else img
        except AttributeError:  # imdecode gave None
            raise OSError(f'cannot decode the image {path}') from None

    def _crop(self, gt, lq, path, scale=1):
        """Training: a random ``gt_size`` patch, then their augment; else the middle ``center_crop`` if set."""
        if self.opt['phase'] == 'train':
            gt, lq = paired_random_crop(gt, lq, self.opt.get('gt_size', 128), scale, path)
            return their_augment([gt, lq])
        size = self.opt.get('center_crop')
        return (gt, lq) if size is None else (center_crop(gt, size, path), center_crop(lq, size, path))

    def _item(self, gt, lq, lq_path, gt_path):
        """HWC arrays already in their channel order -> the item, normalised by ``mean`` / ``std`` if set."""
        gt, lq = img2tensor([gt, lq], bgr2rgb=False, float32=True)
        if self.opt.get('mean') is not None or self.opt.get('std') is not None:
            normalize(lq, self.opt.get('mean'), self.opt.get('std'), inplace=True)
            normalize(gt, self.opt.get('mean'), self.opt.get('std'), inplace=True)
        return {'lq': lq, 'gt': gt, 'lq_path': lq_path, 'gt_path': gt_path}


# ------------------------------------------------------------------------------------------ checks of their keys
def check_reading(ds, key, kind, colour_only=False, lmdb=True):
    """The keys every DCPT dataset type reads (messages start with ``key``): ``center_crop``, ``gt_size``, ``color``,
    ``use_hflip`` / ``use_rot`` (their augment ignores them, so false would silently do nothing), ``mean`` / ``std``,
    the unsupported ``decode`` / ``depth`` / ``prctile_norm`` values, lmdb where the type cannot read it."""
    io = ds.get('io_backend')
    if not lmdb and isinstance(io, dict) and io.get('type') == 'lmdb':
        raise OptionError(f'{key}.io_backend: {kind} lists the LQ image folder and cannot read lmdb (theirs raises '
                          f'NotImplementedError); set io_backend: {{type: disk}} with image folders.')
    for k in ('center_crop', 'gt_size'):
        if ds.get(k) is not None:
            check_int(ds[k], f'{key}.{k}', low=1)
    if ds.get('color') not in (None, 'y') or (colour_only and ds.get('color') == 'y'):
        allowed = 'absent (colour)' if colour_only else 'y (grayscale) or absent (colour)'
        raise OptionError(f'{key}.color must be {allowed} for {kind}, got {ds.get("color")!r}.')
    for k in ('use_hflip', 'use_rot'):
        if k in ds and not check_bool(ds[k], f'{key}.{k}'):
            raise OptionError(f'{key}.{k}: {kind} flips and transposes training patches whatever {k} says (DCPT\'s '
                              f'augment ignores it), so false would not turn them off; remove the key or set true.')
    if (ds.get('mean') is None) != (ds.get('std') is None):
        raise OptionError(f'{key}: set both mean and std (per-channel normalisation) or neither.')
    for k in ('mean', 'std'):
        if ds.get(k) is not None and (not isinstance(ds[k], (list, tuple)) or not ds[k]):
            raise OptionError(f'{key}.{k} must be a list of numbers (one per channel), got {ds[k]!r}.')
        for i, v in enumerate(ds.get(k) or ()):
            check_number(v, f'{key}.{k}[{i}]', low=0 if k == 'std' else None, low_open=k == 'std')
    for k, value in UNSUPPORTED.items():
        if k in ds and ds[k] != value:
            raise OptionError(f'{key}.{k}: only {k}: {value} is supported here (no DCPT option file sets another '
                              f'value), got {ds[k]!r}; remove the key.')


def check_levels(ds, key, type_key, range_key, what, high=None):
    """``sigma_type`` / ``sigma_range`` or ``q_type`` / ``q_range``: a known type and levels that fit it (numbers
    >= 0, at most ``high``); messages start with ``key``."""
    kind, levels = ds.get(type_key), ds.get(range_key)
    if kind not in LEVEL_TYPES:
        raise OptionError(f'{key}.{type_key} must be one of {", ".join(LEVEL_TYPES)} ({what}: {range_key} itself, '
                          f'uniform in [{range_key}[0], {range_key}[1]], or one of the list), got {kind!r}.')
    if kind == 'constant':
        check_number(levels, f'{key}.{range_key}', low=0, high=high)
        return
    if not isinstance(levels, (list, tuple)) or not levels or (kind == 'random' and len(levels) != 2):
        like = '[low, high]' if kind == 'random' else 'a non-empty list'
        raise OptionError(f'{key}.{range_key} must be {like} with {type_key} {kind}, got {levels!r}.')
    for i, level in enumerate(levels):
        check_number(level, f'{key}.{range_key}[{i}]', low=0, high=high)
    if kind == 'random' and levels[0] > levels[1]:
        raise OptionError(f'{key}.{range_key} must be [low, high] with low <= high, got {levels!r}.')


def multi_entries(ds, key):
    """``MultiDegradationDataset``'s lists, per entry: (type name, options of its ``DCPTPairedImageDataset``,
    repeat). Raises OptionError (starting with ``key``) for lists that do not fit ``degradation_types``."""
    types = ds.get('degradation_types')
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise OptionError(f'{key}.degradation_types must be a non-empty list of names (one per GT/LQ folder '
                          f'pair), got {types!r}.')
    roots = {}
    for k in ('dataroot_gt', 'dataroot_lq'):
        roots[k] = ds.get(k) if isinstance(ds.get(k), list) else [ds.get(k)]  # theirs: a path is a 1-list
        if len(roots[k]) != len(types) or not all(isinstance(r, str) for r in roots[k]):
            raise OptionError(f'{key}.{k} must be a list of {len(types)} folder(s), one per degradation_types '
                              f'entry, got {ds.get(k)!r}.')
    ratios = ds.get('dataset_enlarge_ratio', 1)
    ratios = ratios if isinstance(ratios, list) else [ratios] * len(types)
    if len(ratios) != len(types):
        raise OptionError(f'{key}.dataset_enlarge_ratio must be an integer or a list of {len(types)}, got '
                          f'{ds.get("dataset_enlarge_ratio")!r}.')
    ratios = [check_int(r, f'{key}.dataset_enlarge_ratio', low=1) for r in ratios]
    subs = [dict(copy.deepcopy(ds), type='DCPTPairedImageDataset', dataroot_gt=gt, dataroot_lq=lq)
            for gt, lq in zip(roots['dataroot_gt'], roots['dataroot_lq'])]
    return list(zip(types, subs, ratios))


class LabelledConcat(data.Dataset):
    """DCPT's concatenation: datasets in order, dataset ``i`` repeated ``repeats[i]`` times (item ``idx`` of it is
    item ``idx % len`` of the dataset), every item labelled ``dataset_idx = i`` (its position, not its name)."""

    def concatenate(self, datasets, repeats):
        self.datasets = list(datasets)
        self.ends = list(itertools.accumulate(len(d) * r for d, r in zip(self.datasets, repeats)))

    def __len__(self):
        return self.ends[-1]

    def __getitem__(self, idx):
        block = bisect.bisect_right(self.ends, idx)
        start = self.ends[block - 1] if block else 0
        item = self.datasets[block][(idx - start) % len(self.datasets[block])]
        item['dataset_idx'] = block
        return item
