"""The GT/LQ pairs a ``PairedImageDataset`` will read, listed by BasicSR's own path functions.

``paired_paths_from_lmdb``, ``paired_paths_from_meta_info_file`` and ``paired_paths_from_folder`` are called exactly
as ``PairedImageDataset`` calls them. Their bare assertions and errors become key-named :class:`OptionError`
messages; the details (which side, which names) are worked out only after they failed. Checked here because they
are not: lmdb ``data.mdb``, the ``meta_info.txt`` format and keys present in the lmdb, image-only folders, files
named by a ``meta_info_file`` existing, no image or key listed twice (BasicSR would train on it once per line).

:class:`Pairs` also reads every image's header and end (:mod:`.images`): files one by one, lmdb values in one
read-only transaction without copying them.
"""
import contextlib
import cv2
import lmdb
import numpy as np
import os.path as osp
import re
from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_lmdb, paired_paths_from_meta_info_file
from basicsr.utils import scandir

from ...utils import few, is_image_file
from ..options import OptionError
from .files import where
from .images import inspect_all, inspect_bytes, inspect_file
from .sizes import header_shape

_META_SHAPE = re.compile(r'\((\d+)\s*,\s*(\d+)\s*,\s*(\d+)\)')
_BASICSR_FAILS = (AssertionError, ValueError, OSError, KeyError, IndexError)  # the last two: str.format of a template


class Pairs:
    """Paired samples: sorted names, printable references, and how to get their shape (h, w, c) and pixels."""

    def __init__(self, names, refs, shape, decode, where, keys, inspect, partnered=True, lmdb=False):
        self.names = names
        self.gt_ref, self.lq_ref = refs['gt'], refs['lq']  # name -> path or lmdb key, for messages
        self.shape = shape  # (side, name) -> (h, w, c), or None when unknown without decoding
        self.decode = decode  # (side, name) -> ndarray, or None when undecodable
        self.where = where  # side -> where the samples live ('lmdb X' or the folder)
        self.keys = keys  # side -> the option key naming that side's data ('datasets.train.dataroot_gt')
        self.inspect = inspect  # side -> ({name: (h, w, c)}, [(name, why unreadable)]): every image's header and end
        self.partnered = partnered  # False when GT and LQ are the same file (denoising from clean images)
        self.lmdb = lmdb  # names are lmdb keys


def _open_lmdb(root):
    return lmdb.open(root, readonly=True, lock=False, readahead=False, max_readers=8)  # as BasicSR's LmdbBackend


# ---- lmdb
def lmdb_meta(key, root):
    """``{lmdb key: (h, w, c) or None}`` from ``root/meta_info.txt``, refusing lines BasicSR would misread and keys
    listed twice."""
    if not osp.isfile(osp.join(root, 'data.mdb')):
        raise OptionError(f'{key}: {root} is not an lmdb (no data.mdb inside) but the io_backend type is lmdb. Build '
                          f'one with mclir-make-lmdb, or set io_backend: {{type: disk}} for an image folder.')
    meta = osp.join(root, 'meta_info.txt')
    if not osp.isfile(meta):
        raise OptionError(f'{key}: lmdb {root} has no meta_info.txt, which BasicSR reads to list the keys. Rebuild '
                          f'the lmdb with mclir-make-lmdb (it writes meta_info.txt), or write one line per image: '
                          f'"<key>.png (h,w,c) 1".')
    try:
        with open(meta) as f:
            lines = f.readlines()
    except (UnicodeDecodeError, OSError) as err:
        raise OptionError(f'{key}: cannot read {meta}: {err}. Rebuild the lmdb with mclir-make-lmdb.') from None
    entries, lines_of = {}, {}
    for i, line in enumerate(lines, 1):
        name = line.split('.')[0]  # exactly what BasicSR takes as the key
        if not name or any(c.isspace() for c in name) or not name.isascii():
            raise OptionError(f'{key}: line {i} of {meta} ({line.rstrip(chr(10))!r}) does not start with an '
                              f'ASCII key followed by ".png": BasicSR takes everything before the first "." '
                              f'as the key. Each line must read "<key>.png (h,w,c) <level>"; rebuild with '
                              f'mclir-make-lmdb or fix the line.')
        m = _META_SHAPE.search(line)
        entries[name] = tuple(int(x) for x in m.groups()) if m else None
        lines_of.setdefault(name, []).append(i)
    repeated = [f'{n} (lines {", ".join(map(str, found))})' for n, found in lines_of.items() if len(found) > 1]
    if repeated:
        raise OptionError(f'{key}: {meta} lists {len(repeated)} key(s) more than once: {few(repeated)}. BasicSR '
                          f'would train on each such image once per line; remove the repeated lines, or rebuild the '
                          f'lmdb with mclir-make-lmdb.')
    if not entries:
        raise OptionError(f'{key}: lmdb {root} is an empty dataset ({meta} lists no images). Rebuild it from a '
                          f'non-empty folder with mclir-make-lmdb.')
    return entries


def _lmdb_failure(key, roots, err):
    """The key-named error for a failure of ``paired_paths_from_lmdb``."""
    for side, root in roots.items():
        if not str(root).endswith('.lmdb'):
            return OptionError(f'{key}.dataroot_{side}: {root} must end with ".lmdb" with io_backend type lmdb '
                               f'(BasicSR requires it). Rename it, or set {key}.io_backend: {{type: disk}} for an '
                               f'image folder.')
    metas = {side: lmdb_meta(f'{key}.dataroot_{side}', root) for side, root in roots.items()}
    only_gt, only_lq = sorted(set(metas['gt']) - set(metas['lq'])), sorted(set(metas['lq']) - set(metas['gt']))
    if only_gt or only_lq:
        return OptionError(f'{key}: the GT lmdb {roots["gt"]} and the LQ lmdb {roots["lq"]} list different keys in '
                           f'meta_info.txt (BasicSR pairs GT and LQ by key): {len(only_gt)} only in GT '
                           f'{few(only_gt)}, {len(only_lq)} only in LQ {few(only_lq)}. Rebuild both from paired '
                           f'folders with mclir-make-lmdb.')
    return OptionError(f'{key}: BasicSR cannot pair the lmdbs {roots["gt"]} and {roots["lq"]}: {err}. Rebuild them '
                       f'with mclir-make-lmdb.')


def check_lmdb_keys(key, side, root, names):
    """Refuse keys listed in meta_info.txt but absent from the lmdb (read-only transaction, keys only: walking them
    with a cursor touches no value page, where a ``get`` per key reads one page of each value from disk)."""
    try:
        env = _open_lmdb(root)
    except lmdb.Error as err:
        raise OptionError(f'{key}.dataroot_{side}: cannot open lmdb {root}: {err}. Rebuild it with '
                          f'mclir-make-lmdb.') from None
    try:
        with env.begin() as txn:
            stored = set(txn.cursor().iternext(keys=True, values=False))
    finally:
        env.close()
    missing = [n for n in names if n.encode('ascii') not in stored]
    if missing:
        raise OptionError(f'{key}.dataroot_{side}: {len(missing)} key(s) listed in {osp.join(root, "meta_info.txt")} '
                          f'are not in the lmdb: {few(missing)}. The lmdb and its meta_info.txt disagree; rebuild '
                          f'the lmdb with mclir-make-lmdb.')


def lmdb_pairs(key, ds):
    """The pairs of a dataset with ``io_backend: {type: lmdb}``, from ``paired_paths_from_lmdb``."""
    roots = {'gt': ds['dataroot_gt'], 'lq': ds['dataroot_lq']}
    try:
        paths = paired_paths_from_lmdb([roots['lq'], roots['gt']], ['lq', 'gt'])
    except (AssertionError, ValueError, OSError) as err:
        raise _lmdb_failure(key, roots, err) from None
    metas = {side: lmdb_meta(f'{key}.dataroot_{side}', root) for side, root in roots.items()}
    names = [p['gt_path'] for p in paths]  # the lmdb keys, sorted, the same for GT and LQ
    for side, root in roots.items():
        check_lmdb_keys(key, side, root, names)
    return key_pairs(names, roots, metas, {s: f'{key}.dataroot_{s}' for s in roots})


def key_pairs(names, roots, metas, keys):
    """:class:`Pairs` of the lmdb keys ``names`` in the lmdbs ``roots`` (side -> path) whose meta_info.txt entries
    are ``metas`` (side -> {key: shape}); ``keys``: side -> option key."""

    def decode(side, name):
        env = _open_lmdb(roots[side])
        try:
            with env.begin() as txn:
                buf = txn.get(name.encode('ascii'))
        finally:
            env.close()
        return cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED)

    def inspect(side):  # read-only transactions, values read in place (buffers), never copied in full
        env = _open_lmdb(roots[side])

        @contextlib.contextmanager
        def reader():
            with env.begin(buffers=True) as txn:
                yield lambda name: inspect_bytes(txn.get(name.encode('ascii')))

        try:
            return inspect_all(names, reader)
        finally:
            env.close()

    return Pairs(names, {s: (lambda n, r=r: f'{n!r} in {r}') for s, r in roots.items()},
                 lambda side, n: metas[side][n], decode, {s: f'lmdb {r}' for s, r in roots.items()}, keys, inspect,
                 lmdb=True)


# ---- disk
def _check_folder(key, folder, only_images):
    """``folder`` must be an image folder; with ``only_images``, hold nothing else (BasicSR reads every file)."""
    if not osp.isdir(folder):
        raise OptionError(f'{key}: {folder} is not a folder but io_backend type is disk. Give the image folder, or '
                          f'set io_backend: {{type: lmdb}} for an lmdb.')
    if osp.isfile(osp.join(folder, 'data.mdb')) or folder.rstrip('/').endswith('.lmdb'):
        raise OptionError(f'{key}: {folder} looks like an lmdb but io_backend type is disk; set io_backend: '
                          f'{{type: lmdb}}.')
    other = sorted(f for f in scandir(folder) if not is_image_file(f)) if only_images else []
    if other:
        raise OptionError(f'{key}: {folder} contains {len(other)} file(s) that are not images: {few(other)}. '
                          f'BasicSR reads every file of the folder as an image; move them out.')


def _tmpl_failure(key, tmpl, err):
    return OptionError(f'{key}.filename_tmpl {tmpl!r} cannot be applied to a GT basename ({type(err).__name__}: '
                       f'{err}); use a template with one "{{}}", such as "{{}}" or "{{}}x4".')


def _folder_failure(key, gt_dir, lq_dir, tmpl, err):
    """The key-named error for a failure of ``paired_paths_from_folder``: which names do not pair up."""
    if isinstance(err, (KeyError, IndexError, ValueError)):  # only str.format raises these there
        return _tmpl_failure(key, tmpl, err)
    files = {'gt': sorted(scandir(gt_dir)), 'lq': sorted(scandir(lq_dir))}
    for side, folder in (('gt', gt_dir), ('lq', lq_dir)):
        if not files[side]:
            return OptionError(f'{key}.dataroot_{side}: {folder} contains no images (empty dataset).')

    def lq_name(gt_name):  # BasicSR's partner name, for the message only
        base, ext = osp.splitext(gt_name)
        return f'{tmpl.format(base)}{ext}'

    lq_files, wanted = set(files['lq']), {lq_name(g) for g in files['gt']}
    no_lq = [g for g in files['gt'] if lq_name(g) not in lq_files]
    no_gt = [q for q in files['lq'] if q not in wanted]
    return OptionError(f'{key}: GT folder {gt_dir} and LQ folder {lq_dir} do not pair up with filename_tmpl {tmpl!r} '
                       f'(LQ name = filename_tmpl.format(GT basename) + GT extension): {len(no_lq)} GT image(s) '
                       f'without LQ {few(no_lq)}, {len(no_gt)} LQ image(s) without GT {few(no_gt)}. Fix the file '
                       f'names or {key}.filename_tmpl (e.g. "{{}}x4" for DIV2K-style LQ names). BasicSR: {err}')


def _meta_file_paths(key, gt_dir, lq_dir, tmpl, meta_file):
    """Pairs from ``paired_paths_from_meta_info_file``, every file named there existing."""
    if not isinstance(meta_file, str):  # open() would take an int as a file descriptor
        raise OptionError(f'{key}.meta_info_file must be a file path, got {meta_file!r}.')
    try:
        paths = paired_paths_from_meta_info_file([lq_dir, gt_dir], ['lq', 'gt'], meta_file, tmpl)
    except (UnicodeDecodeError, OSError) as err:
        if not osp.isfile(meta_file):
            raise OptionError(f'{key}.meta_info_file: {meta_file} does not exist{where(meta_file)}. Fix the path or '
                              f'remove the key to pair the folders by file name.') from None
        raise OptionError(f'{key}.meta_info_file: cannot read {meta_file}: {err}. It must be a text file with one '
                          f'"<GT name> ..." line per image.') from None
    except (KeyError, IndexError, ValueError) as err:  # str.format of filename_tmpl
        raise _tmpl_failure(key, tmpl, err) from None
    if not paths:
        raise OptionError(f'{key}.meta_info_file: {meta_file} lists no images (empty dataset).')
    blank = [i for i, p in enumerate(paths, 1) if not osp.basename(p['gt_path'])]
    if blank:
        raise OptionError(f'{key}.meta_info_file: line(s) {few(blank)} of {meta_file} name no image (BasicSR would '
                          f'read the folder itself); remove them.')
    lines_of = {}
    for i, p in enumerate(paths, 1):
        lines_of.setdefault(p['gt_path'], []).append(i)
    repeated = [f'{osp.relpath(n, gt_dir)} (lines {", ".join(map(str, found))})' for n, found in lines_of.items()
                if len(found) > 1]
    if repeated:
        raise OptionError(f'{key}.meta_info_file: {meta_file} names {len(repeated)} image(s) more than once: '
                          f'{few(repeated)}. BasicSR would train on each such image once per line; remove the '
                          f'repeated lines.')
    no_gt = [osp.relpath(p['gt_path'], gt_dir) for p in paths if not osp.isfile(p['gt_path'])]
    no_lq = [osp.relpath(p['lq_path'], lq_dir) for p in paths if not osp.isfile(p['lq_path'])]
    if no_gt or no_lq:
        raise OptionError(f'{key}.meta_info_file: {meta_file} names images that do not exist: {len(no_gt)} missing '
                          f'in {gt_dir} {few(no_gt)}, {len(no_lq)} missing in {lq_dir} {few(no_lq)} (LQ name = '
                          f'filename_tmpl {tmpl!r} applied to the GT basename). Fix the list, the files or '
                          f'{key}.filename_tmpl.')
    return paths


def disk_pairs(key, ds):
    """The pairs of a dataset with ``io_backend: {type: disk}``, from ``paired_paths_from_meta_info_file`` (with
    ``meta_info_file``) or ``paired_paths_from_folder``."""
    gt_dir, lq_dir = ds['dataroot_gt'], ds['dataroot_lq']
    tmpl = ds.get('filename_tmpl', '{}')
    if not isinstance(tmpl, str) or '{}' not in tmpl:
        raise OptionError(f'{key}.filename_tmpl must be a string containing "{{}}" (the GT basename), such as "{{}}" '
                          f'or "{{}}x4", got {tmpl!r}.')
    meta_file = ds.get('meta_info_file')
    for side, folder in (('gt', gt_dir), ('lq', lq_dir)):
        _check_folder(f'{key}.dataroot_{side}', folder, only_images=meta_file is None)
    if meta_file is not None:
        paths = _meta_file_paths(key, gt_dir, lq_dir, tmpl, meta_file)
    else:
        try:
            paths = paired_paths_from_folder([lq_dir, gt_dir], ['lq', 'gt'], tmpl)
        except _BASICSR_FAILS as err:
            raise _folder_failure(key, gt_dir, lq_dir, tmpl, err) from None
        if not paths:
            raise OptionError(f'{key}: empty dataset: {gt_dir} (dataroot_gt) and {lq_dir} (dataroot_lq) contain no '
                              f'images. Put the GT and LQ images there (same names, or LQ names given by '
                              f'{key}.filename_tmpl).')
    files = {osp.relpath(p['gt_path'], gt_dir): {'gt': p['gt_path'], 'lq': p['lq_path']} for p in paths}
    return file_pairs(files, {'gt': gt_dir, 'lq': lq_dir}, {s: f'{key}.dataroot_{s}' for s in ('gt', 'lq')})


def file_pairs(files, folders, keys, partnered=True):
    """:class:`Pairs` of image files: ``files`` is ``{name: {'gt': path, 'lq': path}}``, ``folders`` and ``keys``
    map each side to its folder and option key."""
    shapes = {}  # path -> (h, w, c): one header read per image, shared by both sides when GT and LQ are one file

    def shape(side, name):
        path = files[name][side]
        if path not in shapes:
            shapes[path] = header_shape(path, keys[side])
        return shapes[path]

    def inspect(side):
        paths = sorted({files[n][side] for n in files} - set(shapes))  # GT and LQ may be one file: read once
        found, bad = inspect_all(paths, lambda: contextlib.nullcontext(inspect_file))
        shapes.update(found)
        names = {files[n][side]: n for n in files}
        return ({n: shapes[files[n][side]] for n in sorted(files) if files[n][side] in shapes},
                [(names[p], why) for p, why in bad])

    return Pairs(sorted(files), {s: (lambda n, s=s: files[n][s]) for s in ('gt', 'lq')}, shape,
                 lambda side, n: cv2.imread(files[n][side], cv2.IMREAD_UNCHANGED), folders, keys, inspect, partnered)
