"""Pack image folders into lmdb databases that BasicSR's ``io_backend: {type: lmdb}`` reads.

Each lmdb is written by BasicSR's ``make_lmdb_from_imgs`` (PNG-encoded values, ``meta_info.txt``
inside). Paired folders get the SAME keys (the GT basenames) in both lmdbs, which is what
``PairedImageDataset`` requires. Outputs are built under a temporary name and renamed at the end,
so a failed run never leaves a half-written lmdb under the final name.

CLI: ``mclir-make-lmdb --gt GT_DIR --lq LQ_DIR --out-gt gt.lmdb --out-lq lq.lmdb [--lq-template '{}x4']``
"""
import argparse
import contextlib
import cv2
import os
import os.path as osp
import shutil
import sys
from basicsr.utils import scandir
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from PIL import Image

from ..utils import IMG_EXTENSIONS, is_image_file, why_not_writable

_SHOW = 10  # how many offending names an error message lists


def _short(names):
    names = sorted(names)
    return repr(names[:_SHOW]) + (f' ... and {len(names) - _SHOW} more' if len(names) > _SHOW else '')


def scan_images(folder, what='image folder'):
    """Map basename (without extension) -> file name for the images directly inside ``folder``.

    Args:
        folder (str): Folder to scan (not recursive; hidden files are skipped).
        what (str): How to call the folder in error messages, e.g. ``'GT folder (--gt)'``.

    Returns:
        dict[str, str]: ``{basename: file name}``.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        ValueError: No image in it, or two images share a basename (``a.png`` and ``a.jpg``).
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{what} {folder!r} does not exist or is not a directory.')
    found = {}
    for name in sorted(scandir(folder)):
        stem, ext = osp.splitext(name)
        if not is_image_file(name):
            continue
        if stem in found:
            raise ValueError(f'{what} {folder!r} has two images with the basename {stem!r} '
                             f'({found[stem]!r} and {name!r}); keep only one.')
        found[stem] = name
    if not found:
        raise ValueError(f'{what} {folder!r} contains no images (looked for {", ".join(IMG_EXTENSIONS)}, '
                         'any case, not in sub-folders).')
    return found


def _check_keys(keys, folder):
    # BasicSR reads keys back from meta_info.txt as ``line.split('.')[0]`` and encodes them as ASCII.
    bad = [k for k in keys if '.' in k or not k.isascii() or any(c.isspace() for c in k)]
    if bad:
        raise ValueError(f'image names in {folder!r} cannot be lmdb keys: {_short(bad)}. BasicSR needs ASCII '
                         "basenames without '.' or spaces (it cuts keys at the first '.'); rename these files.")


def _check_out(lmdb_path, what):
    if not str(lmdb_path).endswith('.lmdb'):
        raise ValueError(f'{what} {lmdb_path!r} must end with ".lmdb" (BasicSR requires it).')
    if osp.exists(lmdb_path):
        raise FileExistsError(f'{what} {lmdb_path!r} already exists; delete it or choose another path.')
    why = why_not_writable(lmdb_path, make_folders=True)
    if why:
        raise ValueError(f'{what} {lmdb_path!r} cannot be created: {why}. Choose another path.')


def _map_size(folder, names):
    """Upper bound of the lmdb size, from image headers (PNG at any level is at most ~raw size)."""
    total = 0
    for name in names:
        path = osp.join(folder, name)
        try:
            with Image.open(path) as im:
                w, h = im.size
                per_px = len(im.getbands()) * (4 if im.mode in ('I', 'F') else 2)  # 2: 16-bit PNG opens as 8-bit
        except Exception:  # formats PIL cannot parse: decode with OpenCV
            img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if img is None:
                raise ValueError(f'cannot read image {path!r}; it is corrupt or not an image, remove it.') from None
            h, w = img.shape[:2]
            per_px = img.itemsize * (img.shape[2] if img.ndim == 3 else 1)
        total += h * (w * per_px + 1) + 4096
    return int(total * 1.1) + (16 << 20)


def _write_tmp(folder, names, keys, lmdb_path, compress_level, n_thread, quiet):
    """Write ``<lmdb_path minus .lmdb>.tmp-<pid>.lmdb`` and return its path (removed on failure)."""
    map_size = _map_size(folder, names)  # also rejects files that are not readable images
    tmp = f'{lmdb_path[:-len(".lmdb")]}.tmp-{os.getpid()}.lmdb'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(osp.dirname(osp.abspath(tmp)), exist_ok=True)
    sink = open(os.devnull, 'w') if quiet else None
    try:
        with contextlib.redirect_stdout(sink or sys.stdout), contextlib.redirect_stderr(sink or sys.stderr):
            make_lmdb_from_imgs(folder, tmp, list(names), list(keys), compress_level=compress_level,
                                multiprocessing_read=n_thread > 1, n_thread=n_thread,
                                map_size=map_size)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, Exception):
            raise RuntimeError(f'writing the lmdb {lmdb_path!r} from {folder!r} failed ({type(err).__name__}: '
                               f'{err}); nothing was written. Check that {osp.dirname(osp.abspath(lmdb_path))!r} '
                               'has free space and that the images are readable.') from err
        raise
    finally:
        if sink:
            sink.close()
    return tmp


def _publish(pairs):
    """Rename finished temporary lmdbs ``[(tmp, final), ...]`` to their final names."""
    for tmp, final in pairs:
        if osp.exists(final):
            for t, _ in pairs:
                shutil.rmtree(t, ignore_errors=True)
            raise FileExistsError(f'{final!r} appeared while it was being built; delete it or choose another path.')
    for tmp, final in pairs:
        os.replace(tmp, final)


def folder_to_lmdb(folder, lmdb_path, compress_level=1, n_thread=1, quiet=False):
    """Pack the images of one folder into an lmdb keyed by basename.

    Args:
        folder (str): Image folder (png/jpg/jpeg/bmp/tif/tiff, not recursive).
        lmdb_path (str): Output path ending in ``.lmdb``; must not exist.
        compress_level (int): PNG compression level (0-9) of the stored values.
        n_thread (int): >1 reads images with a process pool, holding all encoded images in memory
            (BasicSR's ``multiprocessing_read``); 1 streams them.
        quiet (bool): Silence BasicSR's progress output.

    Returns:
        list[str]: The keys written, sorted.
    """
    _check_out(lmdb_path, 'output lmdb')
    found = scan_images(folder)
    keys = sorted(found)
    _check_keys(keys, folder)
    tmp = _write_tmp(folder, [found[k] for k in keys], keys, lmdb_path, compress_level, n_thread, quiet)
    _publish([(tmp, lmdb_path)])
    return keys


def pair_images(gt_folder, lq_folder, lq_name_template='{}'):
    """Pair GT and LQ images by basename.

    Args:
        gt_folder (str): GT image folder.
        lq_folder (str): LQ image folder.
        lq_name_template (str): Maps a GT basename to its LQ basename, e.g. ``'{}x4'`` for DIV2K
            (``0001.png`` <-> ``0001x4.png``).

    Returns:
        list[tuple[str, str, str]]: ``(key, gt file name, lq file name)`` sorted by key (= GT basename).

    Raises:
        ValueError: Bad template, or images without a partner (the message lists them).
    """
    if not isinstance(lq_name_template, str) or lq_name_template.count('{}') != 1 or \
            lq_name_template.replace('{}', '').count('{') or lq_name_template.replace('{}', '').count('}'):
        raise ValueError(f'lq_name_template {lq_name_template!r} must contain exactly one "{{}}" '
                         "(the GT basename) and no other braces, e.g. '{}' or '{}x4'.")
    gt = scan_images(gt_folder, 'GT folder')
    lq = scan_images(lq_folder, 'LQ folder')
    want = {lq_name_template.format(k): k for k in gt}
    no_lq = [gt[k] for lq_k, k in want.items() if lq_k not in lq]
    no_gt = [lq[k] for k in lq if k not in want]
    if no_lq or no_gt:
        raise ValueError(
            f'GT folder {gt_folder!r} and LQ folder {lq_folder!r} do not pair up with lq_name_template '
            f'{lq_name_template!r} (LQ basename = template.format(GT basename)).\n'
            f'  {len(no_lq)} GT image(s) without LQ: {_short(no_lq)}\n'
            f'  {len(no_gt)} LQ image(s) without GT: {_short(no_gt)}\n'
            "Fix the file names or the template (DIV2K bicubic x4 uses '{}x4').")
    _check_keys(list(gt), gt_folder)
    return [(k, gt[k], lq[lq_name_template.format(k)]) for k in sorted(gt)]


def folders_to_lmdb(gt_folder, lq_folder, gt_lmdb, lq_lmdb, lq_name_template='{}', compress_level=1, n_thread=1,
                    quiet=False):
    """Pack paired GT/LQ folders into two lmdbs with identical keys (the GT basenames).

    The result works with BasicSR's ``PairedImageDataset`` and ``io_backend: {type: lmdb}``
    (``dataroot_gt: gt_lmdb``, ``dataroot_lq: lq_lmdb``). Both lmdbs appear only if both were written.

    Args:
        gt_folder (str): GT image folder (png/jpg/jpeg/bmp/tif/tiff, any case, not recursive).
        lq_folder (str): LQ image folder.
        gt_lmdb (str): Output GT lmdb, ending in ``.lmdb``; must not exist.
        lq_lmdb (str): Output LQ lmdb, ending in ``.lmdb``; must not exist.
        lq_name_template (str): LQ basename from GT basename, e.g. ``'{}x4'``. Default ``'{}'``.
        compress_level (int): PNG compression level (0-9) of the stored values.
        n_thread (int): See :func:`folder_to_lmdb`.
        quiet (bool): Silence BasicSR's progress output.

    Returns:
        list[str]: The keys written (sorted), the same in both lmdbs.

    Raises:
        FileExistsError: An output exists (it is left untouched).
        FileNotFoundError: An input folder is missing.
        ValueError: No images, unpaired names, names unusable as keys, or bad paths/template.
    """
    if osp.abspath(gt_lmdb) == osp.abspath(lq_lmdb):
        raise ValueError(f'GT and LQ lmdb must be different paths, both are {gt_lmdb!r}.')
    _check_out(gt_lmdb, 'GT output lmdb')
    _check_out(lq_lmdb, 'LQ output lmdb')
    pairs = pair_images(gt_folder, lq_folder, lq_name_template)
    keys = [k for k, _, _ in pairs]
    tmp_gt = _write_tmp(gt_folder, [g for _, g, _ in pairs], keys, gt_lmdb, compress_level, n_thread, quiet)
    try:
        tmp_lq = _write_tmp(lq_folder, [q for _, _, q in pairs], keys, lq_lmdb, compress_level, n_thread, quiet)
    except BaseException:
        shutil.rmtree(tmp_gt, ignore_errors=True)
        raise
    _publish([(tmp_gt, gt_lmdb), (tmp_lq, lq_lmdb)])
    return keys


def _du(path):
    return sum(osp.getsize(osp.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main(argv=None):
    """``mclir-make-lmdb``: pack paired GT/LQ image folders into two lmdbs. Returns the exit code."""
    parser = argparse.ArgumentParser(
        prog='mclir-make-lmdb',
        description='Pack paired GT/LQ image folders into two lmdbs with the same keys (GT basenames) for '
        "BasicSR's PairedImageDataset with io_backend: {type: lmdb}.",
        epilog="example (DIV2K x4): mclir-make-lmdb --gt DIV2K_train_HR --lq DIV2K_train_LR_bicubic/X4 "
        "--out-gt DIV2K_HR.lmdb --out-lq DIV2K_LRx4.lmdb --lq-template '{}x4'")
    parser.add_argument('--gt', required=True, metavar='DIR', help='GT image folder')
    parser.add_argument('--lq', required=True, metavar='DIR', help='LQ image folder')
    parser.add_argument('--out-gt', required=True, metavar='X.lmdb', help='GT lmdb to create (must not exist)')
    parser.add_argument('--out-lq', required=True, metavar='Y.lmdb', help='LQ lmdb to create (must not exist)')
    parser.add_argument('--lq-template', default='{}', metavar='TMPL',
                        help="LQ basename from GT basename, e.g. '{}x4' (default '{}': same names)")
    parser.add_argument('--compress-level', type=int, default=1, choices=range(10), metavar='0-9',
                        help='PNG compression level of stored images (default 1)')
    parser.add_argument('--threads', type=int, default=1,
                        help='>1: read with a process pool, holding all images in memory (default 1)')
    parser.add_argument('--quiet', action='store_true', help="hide BasicSR's progress output")
    args = parser.parse_args(argv)
    try:
        keys = folders_to_lmdb(args.gt, args.lq, args.out_gt, args.out_lq, args.lq_template, args.compress_level,
                               max(1, args.threads), args.quiet)
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f'mclir-make-lmdb: error: {err}', file=sys.stderr)
        return 2
    print(f'wrote {len(keys)} pairs (keys {keys[0]!r} ... {keys[-1]!r}):')
    for path in (args.out_gt, args.out_lq):
        print(f'  {path}  ({_du(path) / 2**20:.1f} MiB, keys in {osp.join(path, "meta_info.txt")})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
