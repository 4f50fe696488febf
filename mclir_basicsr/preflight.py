"""Pre-flight checks of the data and checkpoints an option file names, run before anything is written.

Called from our entry points right after the options are parsed (see ``compat._wrap_parse_options``), before
BasicSR creates or renames the experiment folder. Every problem raises :class:`~mclir_basicsr.options.OptionError`
(a ``ValueError``) whose message starts with the option key (``datasets.train.dataroot_gt: ...``), names the file
and says what to do; the entry points print it without a traceback.

What is checked (cheap enough for every start: no dataset is decoded in full):

* every dataset with ``dataroot_*`` keys: the type is registered and the paths exist;
* ``PairedImageDataset`` (and subclasses): both dataroots, ``io_backend``, an integer ``scale``;

  - lmdb: ``.lmdb`` name, ``data.mdb``, ``meta_info.txt`` with ``<key>.png (h,w,c) <level>`` lines, the same key
    set for GT and LQ, every key present in the lmdb (read-only transaction, no value copied);
  - disk: only image files (BasicSR reads every file of the folder), GT/LQ names pair up under
    ``filename_tmpl`` (or the ``meta_info_file`` names exist);
  - not empty; image sizes (lmdb: all, from ``meta_info.txt``; disk: headers of up to ``MAX_HEADER_PAIRS`` pairs)
    satisfy ``GT = LQ * scale`` (train) or ``GT // scale = LQ`` (val/test: BasicSR crops GT to ``LQ * scale``),
    and the LQ fits the training patch ``gt_size // scale``; the first ``N_DECODE`` pairs are decoded with OpenCV;
  - colour: a pair whose GT is grayscale and LQ colour (or the reverse) is an error (BasicSR reads both as
    3-channel colour, so the network would learn to add or remove colour); consistent grayscale pairs in a colour
    dataset only warn (they are valid colourless samples once BasicSR replicates the channel);

* ``path.pretrain_network_<x>`` (skipped when a resume will replace it): exists, loads with
  ``torch.load(weights_only=True)``, has ``path.param_key_<x>``, and fits ``network_<x>`` (keys and shapes with
  ``strict_load_<x>: true``; at least one tensor with ``false``);
* VGG weights that training will load: ``train.spn_opt.vgg_weights`` (SPNLoss) and the VGG of
  ``train.perceptual_opt``: the file is found and is a torchvision state dict of that ``vgg_type``.
"""
import os
import os.path as osp
import re
import warnings

import numpy as np

from .options import OptionError, nearest
from .utils import strip_wrapper_prefixes

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pbm', '.jp2', '.exr',
                  '.hdr', '.pic', '.sr', '.ras', '.pxm', '.pnm', '.pfm')
MAX_HEADER_PAIRS = 1000  # disk backend: image headers read per dataset (spread over the dataset)
N_DECODE = 3  # pairs decoded in full with OpenCV, as BasicSR will read them
_SHOW = 5  # names listed in a message
_META_SHAPE = re.compile(r'\((\d+)\s*,\s*(\d+)\s*,\s*(\d+)\)')
_STATE_RE = re.compile(r'^\d+\.state$')
_GRAY_MODES = ('1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F')


def _few(names, n=_SHOW):
    names = list(names)
    shown = ', '.join(str(x) for x in names[:n])
    return f'[{shown}{f", ... and {len(names) - n} more" if len(names) > n else ""}]'


def _where(path):
    return '' if osp.isabs(path) else f' (relative to the current directory {os.getcwd()})'


def check_inputs(opt):
    """Raise a clear error (naming the option key or file, saying what to do) for bad data or checkpoints.

    Args:
        opt (dict): options as parsed by BasicSR's ``parse_options`` (after ``check_options``).
    Raises:
        OptionError: the first problem found; the message starts with the key path.
    """
    datasets = opt.get('datasets') or {}
    if not isinstance(datasets, dict):
        raise OptionError('datasets must be a mapping of phase -> dataset options.')
    for phase_key, ds in datasets.items():
        _check_dataset(opt, str(phase_key), ds)
    _check_resume_state(opt)
    _check_pretrained(opt)
    if opt.get('is_train', True):
        _check_vgg_weights(opt)


# ----------------------------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------------------------
def _dataset_class(name, key):
    import basicsr.data  # noqa: F401  (fills DATASET_REGISTRY)
    from basicsr.utils.registry import DATASET_REGISTRY
    if name not in DATASET_REGISTRY:
        hint = nearest(name, list(DATASET_REGISTRY._obj_map))
        raise OptionError(f'{key}.type {name!r} is not a registered dataset.' + (f' Did you mean {hint}?' if hint
                                                                                  else '') +
                          ' Import the package that registers it before training.')
    return DATASET_REGISTRY.get(name)


def _check_dataset(opt, phase_key, ds):
    key = f'datasets.{phase_key}'
    if not isinstance(ds, dict):
        raise OptionError(f'{key} must be a mapping of dataset options, got {ds!r}.')
    from basicsr.data.paired_image_dataset import PairedImageDataset
    cls = _dataset_class(ds.get('type'), key)
    paired = isinstance(cls, type) and issubclass(cls, PairedImageDataset)
    roots = [k for k in ds if k.startswith('dataroot_') and ds[k] is not None]
    if paired:
        for k in ('dataroot_gt', 'dataroot_lq'):
            if ds.get(k) is None:
                raise OptionError(f'{key}.{k} is missing: {ds["type"]} needs both dataroot_gt and dataroot_lq '
                                  f'(the GT and LQ image folders or lmdbs).')
    for k in roots:
        path = ds[k]
        if not isinstance(path, str):
            if paired:
                raise OptionError(f'{key}.{k} must be a path, got {path!r}.')
            continue
        if not osp.exists(path):
            raise OptionError(f'{key}.{k}: {path} does not exist{_where(path)}. Fix the path, or create the data '
                              f'(mclir-make-lmdb packs image folders into lmdb).')
    if paired:
        _check_paired(opt, key, ds)


def _scale(opt, key, ds):
    scale = ds.get('scale', opt.get('scale'))
    if scale is None:
        raise OptionError(f'scale is missing: {ds["type"]} ({key}) needs the top-level key scale (1 for restoration '
                          f'at the same size, e.g. denoising).')
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise OptionError(f'scale must be an integer >= 1, got {scale!r} (used by {key}).')
    return scale


def _check_paired(opt, key, ds):
    scale = _scale(opt, key, ds)
    io = ds.get('io_backend')
    if not isinstance(io, dict) or 'type' not in io:
        raise OptionError(f'{key}.io_backend is missing or has no type: add io_backend: {{type: disk}} for image '
                          f'folders or {{type: lmdb}} for lmdbs.')
    phase = ds.get('phase') or phase_of(key)
    gt_size = None
    if phase == 'train':
        gt_size = ds.get('gt_size')
        if isinstance(gt_size, bool) or not isinstance(gt_size, int) or gt_size < scale:
            raise OptionError(f'{key}.gt_size must be an integer >= scale ({scale}) for training (the GT patch '
                              f'size), got {gt_size!r}.')
    if io['type'] == 'lmdb':
        pairs = _lmdb_pairs(key, ds)
    elif io['type'] == 'disk':
        pairs = _disk_pairs(key, ds)
    else:  # memcached etc.: nothing we can read cheaply
        return
    _check_sizes(key, ds, pairs, scale, phase, gt_size)


def phase_of(key):
    return key.split('.', 1)[1].split('_')[0]


class _Pairs:
    """Paired samples: names, and how to get their shape (h, w, channels) and decoded arrays."""

    def __init__(self, names, gt_ref, lq_ref, shape, decode, where):
        self.names = names  # sorted sample names
        self.gt_ref, self.lq_ref = gt_ref, lq_ref  # name -> printable reference (path or lmdb key)
        self.shape = shape  # (side, name) -> (h, w, c) or None (unknown without decoding)
        self.decode = decode  # (side, name) -> ndarray or None
        self.where = where  # side -> where the sample lives ('lmdb X' or folder)


# ---- lmdb
def _read_meta(key, root):
    meta = osp.join(root, 'meta_info.txt')
    if not osp.isfile(meta):
        raise OptionError(f'{key}: lmdb {root} has no meta_info.txt, which BasicSR reads to list the keys. Rebuild '
                          f'the lmdb with mclir-make-lmdb (it writes meta_info.txt), or write one line per image: '
                          f'"<key>.png (h,w,c) 1".')
    entries = {}
    with open(meta) as f:
        for i, line in enumerate(f, 1):
            name = line.split('.')[0]  # exactly what BasicSR takes as the key
            if not name or any(c.isspace() for c in name) or not name.isascii():
                raise OptionError(f'{key}: line {i} of {meta} ({line.rstrip(chr(10))!r}) does not start with an '
                                  f'ASCII key followed by ".png": BasicSR takes everything before the first "." '
                                  f'as the key. Each line must read "<key>.png (h,w,c) <level>"; rebuild with '
                                  f'mclir-make-lmdb or fix the line.')
            m = _META_SHAPE.search(line)
            entries[name] = tuple(int(x) for x in m.groups()) if m else None
    if not entries:
        raise OptionError(f'{key}: lmdb {root} is an empty dataset ({meta} lists no images). Rebuild it from a '
                          f'non-empty folder with mclir-make-lmdb.')
    return entries


def _lmdb_pairs(key, ds):
    import lmdb
    roots = {'gt': ds['dataroot_gt'], 'lq': ds['dataroot_lq']}
    metas = {}
    for side, root in roots.items():
        k = f'{key}.dataroot_{side}'
        if not str(root).endswith('.lmdb'):
            raise OptionError(f'{k}: {root} must end with ".lmdb" with io_backend type lmdb (BasicSR requires '
                              f'it). Rename it, or set {key}.io_backend: {{type: disk}} for an image folder.')
        if not osp.isfile(osp.join(root, 'data.mdb')):
            raise OptionError(f'{k}: {root} is not an lmdb (no data.mdb inside) but {key}.io_backend.type is lmdb. '
                              f'Build one with mclir-make-lmdb, or set io_backend: {{type: disk}} for an image '
                              f'folder.')
        metas[side] = _read_meta(k, root)
    only_gt = sorted(set(metas['gt']) - set(metas['lq']))
    only_lq = sorted(set(metas['lq']) - set(metas['gt']))
    if only_gt or only_lq:
        raise OptionError(f'{key}: the GT lmdb {roots["gt"]} and the LQ lmdb {roots["lq"]} list different keys in '
                          f'meta_info.txt (BasicSR pairs GT and LQ by key): {len(only_gt)} only in GT '
                          f'{_few(only_gt)}, {len(only_lq)} only in LQ {_few(only_lq)}. Rebuild both from paired '
                          f'folders with mclir-make-lmdb.')
    envs = {}
    try:
        for side, root in roots.items():
            try:
                envs[side] = lmdb.open(root, readonly=True, lock=False, readahead=False, max_readers=8)
            except lmdb.Error as err:
                raise OptionError(f'{key}.dataroot_{side}: cannot open lmdb {root}: {err}. Rebuild it with '
                                  f'mclir-make-lmdb.') from err
            with envs[side].begin(buffers=True) as txn:
                missing = [n for n in metas[side] if txn.get(n.encode('ascii')) is None]
            if missing:
                raise OptionError(f'{key}.dataroot_{side}: {len(missing)} key(s) listed in '
                                  f'{osp.join(root, "meta_info.txt")} are not in the lmdb: {_few(missing)}. The lmdb '
                                  f'and its meta_info.txt disagree; rebuild the lmdb with mclir-make-lmdb.')
    finally:
        for env in envs.values():
            env.close()

    def decode(side, name):
        import cv2
        env = lmdb.open(roots[side], readonly=True, lock=False, readahead=False, max_readers=8)
        try:
            with env.begin() as txn:
                buf = txn.get(name.encode('ascii'))
        finally:
            env.close()
        return cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED)

    return _Pairs(sorted(metas['gt']), lambda n: f'{n!r} in {roots["gt"]}', lambda n: f'{n!r} in {roots["lq"]}',
                  lambda side, n: metas[side][n], decode, {s: f'lmdb {r}' for s, r in roots.items()})


# ---- disk
def _list_files(key, folder):
    """Files BasicSR's ``scandir`` yields for ``folder`` (not recursive, hidden files skipped)."""
    if not osp.isdir(folder):
        raise OptionError(f'{key}: {folder} is not a folder but io_backend type is disk. Give the image folder, or '
                          f'set io_backend: {{type: lmdb}} for an lmdb.')
    if osp.isfile(osp.join(folder, 'data.mdb')) or folder.rstrip('/').endswith('.lmdb'):
        raise OptionError(f'{key}: {folder} looks like an lmdb but io_backend type is disk; set io_backend: '
                          f'{{type: lmdb}}.')
    files = sorted(e.name for e in os.scandir(folder) if not e.name.startswith('.') and e.is_file())
    other = [f for f in files if osp.splitext(f)[1].lower() not in IMG_EXTENSIONS]
    if other:
        raise OptionError(f'{key}: {folder} contains {len(other)} file(s) that are not images: {_few(other)}. '
                          f'BasicSR reads every file of the folder as an image; move them out.')
    return files


def _disk_pairs(key, ds):
    gt_dir, lq_dir = ds['dataroot_gt'], ds['dataroot_lq']
    tmpl = ds.get('filename_tmpl', '{}')
    if not isinstance(tmpl, str) or '{}' not in tmpl:
        raise OptionError(f'{key}.filename_tmpl must be a string containing "{{}}" (the GT basename), such as "{{}}" '
                          f'or "{{}}x4", got {tmpl!r}.')
    gt_files = _list_files(f'{key}.dataroot_gt', gt_dir)
    lq_files = _list_files(f'{key}.dataroot_lq', lq_dir)
    meta_file = ds.get('meta_info_file')

    def lq_name(gt_name):
        base, ext = osp.splitext(osp.basename(gt_name))
        return f'{tmpl.format(base)}{ext}'

    if meta_file is not None:
        if not osp.isfile(meta_file):
            raise OptionError(f'{key}.meta_info_file: {meta_file} does not exist{_where(meta_file)}. Fix the path or '
                              f'remove the key to pair the folders by file name.')
        with open(meta_file) as f:
            names = [line.strip().split(' ')[0] for line in f if line.strip()]
        if not names:
            raise OptionError(f'{key}.meta_info_file: {meta_file} lists no images (empty dataset).')
        no_gt = [n for n in names if not osp.isfile(osp.join(gt_dir, n))]
        no_lq = [lq_name(n) for n in names if not osp.isfile(osp.join(lq_dir, lq_name(n)))]
        if no_gt or no_lq:
            raise OptionError(f'{key}.meta_info_file: {meta_file} names images that do not exist: {len(no_gt)} '
                              f'missing in {gt_dir} {_few(no_gt)}, {len(no_lq)} missing in {lq_dir} {_few(no_lq)} '
                              f'(LQ name = filename_tmpl {tmpl!r} applied to the GT basename). Fix the list, the '
                              f'files or {key}.filename_tmpl.')
        pairs = {n: (osp.join(gt_dir, n), osp.join(lq_dir, lq_name(n))) for n in names}
    else:
        if not gt_files and not lq_files:
            raise OptionError(f'{key}: empty dataset: {gt_dir} (dataroot_gt) and {lq_dir} (dataroot_lq) contain no '
                              f'images. Put the GT and LQ images there (same names, or LQ names given by '
                              f'{key}.filename_tmpl).')
        for side, folder, files in (('gt', gt_dir, gt_files), ('lq', lq_dir, lq_files)):
            if not files:
                raise OptionError(f'{key}.dataroot_{side}: {folder} contains no images (empty dataset).')
        lq_set = set(lq_files)
        want = {lq_name(g): g for g in gt_files}
        no_lq = [g for g in gt_files if lq_name(g) not in lq_set]
        no_gt = [q for q in lq_files if q not in want]
        if no_lq or no_gt:
            raise OptionError(f'{key}: GT folder {gt_dir} and LQ folder {lq_dir} do not pair up with filename_tmpl '
                              f'{tmpl!r} (LQ name = filename_tmpl.format(GT basename) + GT extension): {len(no_lq)} '
                              f'GT image(s) without LQ {_few(no_lq)}, {len(no_gt)} LQ image(s) without GT '
                              f'{_few(no_gt)}. Fix the file names or {key}.filename_tmpl (e.g. "{{}}x4" for '
                              f'DIV2K-style LQ names).')
        pairs = {g: (osp.join(gt_dir, g), osp.join(lq_dir, lq_name(g))) for g in gt_files}
    names = sorted(pairs)
    cache = {}

    def shape(side, name):
        path = pairs[name][0 if side == 'gt' else 1]
        if path not in cache:
            cache[path] = _header_shape(path, f'{key}.dataroot_{side}')
        return cache[path]

    def decode(side, name):
        import cv2
        return cv2.imread(pairs[name][0 if side == 'gt' else 1], cv2.IMREAD_UNCHANGED)

    return _Pairs(names, lambda n: pairs[n][0], lambda n: pairs[n][1], shape, decode,
                  {'gt': gt_dir, 'lq': lq_dir})


def _header_shape(path, key):
    """(h, w, channels) from the image header (PIL), falling back to a full OpenCV decode."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.mode in _GRAY_MODES:
                c = 2 if im.mode in ('LA', 'La') else 1
            else:
                c = len(im.getbands()) if im.mode != 'P' else 3
            return h, w, c
    except Exception:  # noqa: BLE001 - formats PIL cannot parse: ask OpenCV, as BasicSR does
        import cv2
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise OptionError(f'{key}: cannot read image {path}; it is corrupt or not an image. Remove or replace '
                              f'it.') from None
        return img.shape[0], img.shape[1], (img.shape[2] if img.ndim == 3 else 1)


# ---- sizes and colour
def _sample(names):
    n = len(names)
    if n <= MAX_HEADER_PAIRS:
        return list(names)
    idx = sorted(set(np.linspace(0, n - 1, MAX_HEADER_PAIRS).round().astype(int).tolist()))
    return [names[i] for i in idx]


def _is_gray(c):
    return c in (1, 2)


def _check_sizes(key, ds, pairs, scale, phase, gt_size):
    if not pairs.names:
        raise OptionError(f'{key}: empty dataset ({pairs.where["gt"]} holds no images).')
    shapes = {}
    # decode the first pairs as BasicSR will (catches undecodable values and stale meta_info shapes)
    for name in pairs.names[:N_DECODE]:
        for side, ref in (('gt', pairs.gt_ref), ('lq', pairs.lq_ref)):
            img = pairs.decode(side, name)
            if img is None:
                raise OptionError(f'{key}.dataroot_{side}: cannot decode image {ref(name)}; it is corrupt or not an '
                                  f'image. Remove it (and its partner) or rebuild the data.')
            got = (img.shape[0], img.shape[1], img.shape[2] if img.ndim == 3 else 1)
            listed = pairs.shape(side, name)
            if listed is not None and listed[:2] != got[:2]:
                raise OptionError(f'{key}.dataroot_{side}: {ref(name)} is {got[0]}x{got[1]} but meta_info.txt says '
                                  f'{listed[0]}x{listed[1]}; the lmdb and its meta_info.txt disagree. Rebuild it '
                                  f'with mclir-make-lmdb.')
            shapes[side, name] = got
    bad_scale, too_small, mixed, gray = [], [], [], []
    for name in _sample(pairs.names):
        g = shapes.get(('gt', name)) or pairs.shape('gt', name)
        q = shapes.get(('lq', name)) or pairs.shape('lq', name)
        if g is None or q is None:
            continue
        if phase == 'train':
            ok = g[0] == q[0] * scale and g[1] == q[1] * scale
        else:  # BasicSR crops GT to LQ * scale outside training
            ok = g[0] // scale == q[0] and g[1] // scale == q[1]
        if not ok:
            bad_scale.append((name, g, q))
        if gt_size is not None and (q[0] < gt_size // scale or q[1] < gt_size // scale):
            too_small.append((name, q))
        if _is_gray(g[2]) != _is_gray(q[2]):
            mixed.append((name, g, q))
        elif _is_gray(g[2]):
            gray.append(name)
    if bad_scale:
        name, g, q = bad_scale[0]
        rule = ('GT = LQ x scale' if phase == 'train' else
                'GT // scale = LQ (outside training BasicSR crops GT to LQ x scale)')
        raise OptionError(f'{key}: GT/LQ sizes do not match scale {scale} ({rule}) for {len(bad_scale)} pair(s) '
                          f'{_few(n for n, _, _ in bad_scale)}; e.g. GT {pairs.gt_ref(name)} is {g[0]}x{g[1]} (HxW) '
                          f'and LQ {pairs.lq_ref(name)} is {q[0]}x{q[1]}, so GT should be '
                          f'{q[0] * scale}x{q[1] * scale}. Check the top-level scale, or regenerate the LQ images '
                          f'(mod-crop GT to a multiple of the scale first).')
    if too_small:
        name, q = too_small[0]
        p = gt_size // scale
        raise OptionError(f'{key}.gt_size: {len(too_small)} LQ image(s) are smaller than the LQ training patch '
                          f'{p}x{p} (gt_size {gt_size} // scale {scale}): {_few(n for n, _ in too_small)}; e.g. '
                          f'{pairs.lq_ref(name)} is {q[0]}x{q[1]}. Lower {key}.gt_size or remove those images.')
    if mixed and ds.get('color') != 'y':
        name, g, q = mixed[0]
        kind = {True: 'grayscale', False: 'colour'}
        raise OptionError(f'{key}: grayscale mixed with colour in {len(mixed)} pair(s) {_few(n for n, _, _ in mixed)}; '
                          f'e.g. GT {pairs.gt_ref(name)} is {kind[_is_gray(g[2])]} ({g[2]} channel(s)) and LQ '
                          f'{pairs.lq_ref(name)} is {kind[_is_gray(q[2])]} ({q[2]} channel(s)). BasicSR reads every '
                          f'image as 3-channel colour, so the network would learn to add or remove colour. Convert '
                          f'both images of each pair to the same mode (e.g. cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)), '
                          f'or set {key}.color: y to train on the Y channel.')
    if gray and len(gray) < len(_sample(pairs.names)) and ds.get('color') != 'y':
        warnings.warn(f'{key}: {len(gray)} grayscale pair(s) in a colour dataset {_few(gray)}: BasicSR reads them as '
                      f'3 equal channels, so they train as colourless samples. Convert or remove them if that is not '
                      f'intended.')


# ----------------------------------------------------------------------------------------------------------------
# pretrained networks
# ----------------------------------------------------------------------------------------------------------------
def _will_resume(opt):
    """True if BasicSR will resume (and so replace ``pretrain_network_*`` by the experiment's own files)."""
    path_opt = opt.get('path') or {}
    if path_opt.get('resume_state'):
        return True
    if opt.get('auto_resume'):
        states = path_opt.get('training_states')
        return bool(states and osp.isdir(states) and any(_STATE_RE.match(f) for f in os.listdir(states)))
    return False


def _torch_load(path, key):
    import torch
    try:
        try:
            return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        except RuntimeError as err:  # old (non-zip) files cannot be memory-mapped
            if 'mmap' not in str(err):
                raise
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure: say which file and why
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OptionError(f'{key}: cannot read {path} with torch.load(weights_only=True): {first}. It must be a '
                          f'PyTorch checkpoint holding tensors only (e.g. a BasicSR net_g_*.pth).') from None


def _build_state_shapes(net_opt, net_key):
    """``{name: shape}`` of the network ``net_opt`` would build, without touching the global RNG.

    Built on the meta device when the architecture allows it (no memory, no initialisation cost), else on CPU.
    """
    import copy

    import basicsr.archs  # noqa: F401  (fills ARCH_REGISTRY)
    import torch
    from basicsr.utils.registry import ARCH_REGISTRY
    if not isinstance(net_opt, dict) or net_opt.get('type') not in ARCH_REGISTRY:
        name = net_opt.get('type') if isinstance(net_opt, dict) else net_opt
        hint = nearest(name, list(ARCH_REGISTRY._obj_map))
        raise OptionError(f'{net_key}.type {name!r} is not a registered architecture.' +
                          (f' Did you mean {hint}?' if hint else '') + ' Import the package that registers it first.')
    errors = []
    for device in ('meta', 'cpu'):
        with torch.random.fork_rng(devices=[]):
            try:
                # not basicsr.archs.build_network: its log call would set up BasicSR's root logger before the
                # train pipeline does, and the log file would never be written
                args = copy.deepcopy(net_opt)
                with torch.device(device):
                    net = ARCH_REGISTRY.get(args.pop('type'))(**args)
                return {k: tuple(v.shape) for k, v in net.state_dict().items()}
            except Exception as err:  # noqa: BLE001 - retry on CPU; report the CPU error
                errors.append(err)
    raise OptionError(f'{net_key}: cannot build network type {net_opt["type"]}: {errors[-1]}. Fix its arguments.')


def _check_resume_state(opt):
    """An explicit ``path.resume_state`` (without ``--auto_resume``) must be a readable training state."""
    path = (opt.get('path') or {}).get('resume_state')
    if not path or opt.get('auto_resume'):
        return
    if not isinstance(path, str):
        raise OptionError(f'path.resume_state must be a file path or ~, got {path!r}.')
    if not osp.isfile(path):
        raise OptionError(f'path.resume_state points to {path}, which does not exist{_where(path)}. Fix the path, '
                          f'or remove the key (or use --auto_resume) to pick the latest state.')
    state = _torch_load(path, 'path.resume_state')
    if not isinstance(state, dict) or 'iter' not in state:
        raise OptionError(f'path.resume_state: {path} is not a BasicSR training state (no "iter" entry); give an '
                          f'experiments/<name>/training_states/<iter>.state file.')
    # BasicSR's check_resume then loads models/net_<x>_<iter>.pth for every network_<x> not ignored
    ignore = (opt.get('path') or {}).get('ignore_resume_networks') or []
    models = (opt.get('path') or {}).get('models')
    for net in (k for k in opt if k.startswith('network_') and k not in ignore):
        if models is None:
            break
        net_file = osp.join(models, f'net_{net[len("network_"):]}_{state["iter"]}.pth')
        if not osp.isfile(net_file):
            raise OptionError(f'path.resume_state: {path} is iteration {state["iter"]}, but {net_file} (the {net} '
                              f'weights BasicSR loads with it) does not exist. Resume from a state whose network '
                              f'files were saved, or use --auto_resume to pick the latest complete one.')


def _check_pretrained(opt):
    path_opt = opt.get('path') or {}
    if _will_resume(opt):
        return
    for pkey, path in path_opt.items():
        if not pkey.startswith('pretrain_network_') or path is None:
            continue
        suffix = pkey[len('pretrain_network_'):]
        key = f'path.{pkey}'
        net_key = f'network_{suffix}'
        if not isinstance(path, str):
            raise OptionError(f'{key} must be a file path or ~, got {path!r}.')
        if not osp.isfile(path):
            todo = (f'set {key}: ~ to train from scratch' if opt.get('is_train', True) else
                    'train the model first')
            raise OptionError(f'{key}: {path} does not exist{_where(path)}. Fix the path, or {todo}.')
        if net_key not in opt:
            continue
        ckpt = _torch_load(path, key)
        param_key = path_opt.get(f'param_key_{suffix}', 'params')
        if not isinstance(ckpt, dict):
            raise OptionError(f'{key}: {path} holds a {type(ckpt).__name__}, not a state dict.')
        if param_key is not None:
            if param_key not in ckpt and 'params' in ckpt:
                param_key = 'params'  # BasicSR's load_network falls back to 'params'
            if param_key not in ckpt:
                tops = [str(k) for k in ckpt]
                bare = all(hasattr(v, 'shape') for v in ckpt.values())
                raise OptionError(f'{key}: {path} has no {param_key!r} entry (path.param_key_{suffix}); its top-level '
                                  f'keys are {_few(tops)}. ' +
                                  (f'It looks like a bare state dict: set path.param_key_{suffix}: ~.' if bare else
                                   f'Set path.param_key_{suffix} to the entry that holds the network weights.'))
            ckpt = ckpt[param_key]
        if not isinstance(ckpt, dict):
            raise OptionError(f'{key}: entry {param_key!r} of {path} is not a state dict.')
        loaded = {strip_wrapper_prefixes(k): tuple(v.shape)
                  for k, v in ckpt.items() if hasattr(v, 'shape')}
        net_type = opt[net_key].get('type') if isinstance(opt[net_key], dict) else opt[net_key]
        want = _build_state_shapes(opt[net_key], net_key)
        missing = sorted(set(want) - set(loaded))
        unexpected = sorted(set(loaded) - set(want))
        shape_diff = sorted(k for k in set(want) & set(loaded) if want[k] != loaded[k])
        strict = path_opt.get(f'strict_load_{suffix}', True)
        fits = len(set(want) & set(loaded)) - len(shape_diff)
        if strict and (missing or unexpected or shape_diff):
            parts = []
            if shape_diff:
                parts.append(f'{len(shape_diff)} tensor(s) of another shape ' + _few(
                    f'{k}: file {list(loaded[k])} vs network {list(want[k])}' for k in shape_diff))
            if missing:
                parts.append(f'{len(missing)} key(s) of the network missing from the file {_few(missing)}')
            if unexpected:
                parts.append(f'{len(unexpected)} key(s) in the file that the network lacks {_few(unexpected)}')
            raise OptionError(f'{key}: {path} does not fit {net_key} (type {net_type}): ' + '; '.join(parts) +
                              f'. It was probably saved from another architecture or configuration: fix {net_key} '
                              f'to match it, or set path.strict_load_{suffix}: false to load only the tensors that '
                              f'fit.')
        if not strict and fits == 0:
            raise OptionError(f'{key}: no tensor of {path} fits {net_key} (type {net_type}), so nothing would be '
                              f'loaded (path.strict_load_{suffix} is false). It was saved from another architecture: '
                              f'fix {net_key} or the path.')
        if not strict and fits < len(want) / 2:
            warnings.warn(f'{key}: only {fits} of the {len(want)} tensors of {net_key} (type {net_type}) fit {path}; '
                          f'with path.strict_load_{suffix}: false BasicSR loads those and leaves the rest as '
                          f'initialised. Check that the file was saved from this architecture.')


# ----------------------------------------------------------------------------------------------------------------
# VGG weights
# ----------------------------------------------------------------------------------------------------------------
def _check_vgg_file(path, vgg_type, key):
    import torch

    from .compat import build_torchvision_vgg_features, torchvision_vgg_filename
    state = _torch_load(path, key)
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    fname = torchvision_vgg_filename(vgg_type)
    if not isinstance(state, dict):
        raise OptionError(f'{key}: {path} does not hold a state dict; it must be torchvision\'s {vgg_type} weights '
                          f'({fname}).')
    have = {k[len('features.'):]: tuple(v.shape) for k, v in state.items()
            if str(k).startswith('features.') and hasattr(v, 'shape')}
    with torch.random.fork_rng(devices=[]), torch.device('meta'):
        want = {k: tuple(v.shape) for k, v in build_torchvision_vgg_features(vgg_type).state_dict().items()}
    if have != want:
        diff = sorted(set(want) ^ set(have)) + sorted(k for k in set(want) & set(have) if want[k] != have[k])
        raise OptionError(f'{key}: {path} does not match vgg_type {vgg_type!r} (features.* differ: '
                          f'{_few(diff)}). It must be torchvision\'s {vgg_type} state dict ({fname}); fix the file '
                          f'or vgg_type.')


def _check_vgg_weights(opt):
    from .compat import find_vgg_weights, missing_vgg_weights_message, torchvision_vgg_filename, vgg_weight_search_paths
    train_opt = opt.get('train') or {}
    spn = train_opt.get('spn_opt')
    if isinstance(spn, dict) and spn.get('type') == 'SPNLoss':
        key = 'train.spn_opt.vgg_weights'
        vgg_type = spn.get('vgg_type') or 'vgg16'
        weights = spn.get('vgg_weights')
        if weights != 'random':
            if weights is None:
                weights = find_vgg_weights(vgg_type)
                if weights is None:
                    raise OptionError(f'{key}: ' + missing_vgg_weights_message(vgg_type, key=key))
            else:
                weights = osp.expanduser(weights)
                if not osp.isfile(weights):
                    raise OptionError(f'{key}: {weights} does not exist{_where(weights)}. Give the path of '
                                      f'torchvision\'s {vgg_type} weights, or "random" for random VGG features.')
            _check_vgg_file(weights, vgg_type, key)
    perc = train_opt.get('perceptual_opt')
    if isinstance(perc, dict) and perc.get('type') == 'PerceptualLoss':
        # BasicSR's PerceptualLoss always asks for ImageNet VGG (pretrained=True); we never download it
        vgg_type = perc.get('vgg_type', 'vgg19')
        if (perc.get('perceptual_weight', 1.0) or perc.get('style_weight', 0.)) and find_vgg_weights(vgg_type) is None:
            places = '\n  '.join(vgg_weight_search_paths(vgg_type))
            raise OptionError(f'train.perceptual_opt: BasicSR\'s PerceptualLoss needs ImageNet weights for {vgg_type} '
                              f'and none were found (nothing is downloaded). Put torchvision\'s '
                              f'{torchvision_vgg_filename(vgg_type)} in one of:\n  {places}')
