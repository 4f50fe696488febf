"""Small leaf helpers shared by the package: checkpoint keys, atomic saves, image file names, short lists."""
import os
import re
import tempfile
import time
import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

WRAPPER_PREFIXES = ('module.', '_orig_mod.')  # DataParallel / DDP, and torch.compile's OptimizedModule

# The one list of image file extensions (lower case): what OpenCV's imread decodes. BasicSR reads every file of a
# disk dataset folder as an image; our lmdb tool packs these and the pre-flight checks refuse anything else.
IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pbm', '.jp2', '.exr',
                  '.hdr', '.pic', '.sr', '.ras', '.pxm', '.pnm', '.pfm')


def is_image_file(name):
    return os.path.splitext(name)[1].lower() in IMG_EXTENSIONS


def few(names, n=5):
    """``[a, b, c, ... and 7 more]``: the first ``n`` of ``names`` for an error message."""
    names = list(names)
    shown = ', '.join(str(x) for x in names[:n])
    return f'[{shown}{f", ... and {len(names) - n} more" if len(names) > n else ""}]'


def why_not_writable(path, make_folders=False):
    """None if a file can be created at ``path``; else why not, naming the folder (a sentence fragment).

    Found by creating and removing a temporary file in the folder: permission bits say nothing for root or on a
    read-only mount. With ``make_folders``, missing folders are fine when the nearest existing one takes new files
    (the writer creates them). Nothing is left behind.
    """
    wanted = folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):  # the nearest existing folder ('/' always exists)
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return f'{folder} is a file, not a folder'
    if folder != wanted and not make_folders:
        return f'the folder {wanted} does not exist'
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.write-check-')
    except OSError as err:
        return f'no file can be created in {folder} ({err.strerror or err})'
    os.close(fd)
    os.remove(tmp)
    return None


def strip_wrapper_prefixes(key):
    """``module._orig_mod.conv.weight`` -> ``conv.weight``: the state-dict key of the bare network."""
    key = str(key)
    while key.startswith(WRAPPER_PREFIXES):
        key = key.split('.', 1)[1]
    return key


# ``.<name>.tmp-<pid>``: the temporary file :func:`atomic_torch_save` writes before renaming it to ``<name>``
TEMPORARY_FILE = re.compile(r'^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$')


def temporary_path(path):
    """Where :func:`atomic_torch_save` writes ``path`` first: ``<folder>/.<name>.tmp-<pid of this process>``."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f'.{name}.tmp-{os.getpid()}')


def atomic_torch_save(obj, path, retries=3):
    """``torch.save`` to ``path`` atomically: write a temporary file beside it, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the complete new one, never a partial file under
    ``path``. Transient errors are retried ``retries`` times, then raised (a lost checkpoint is not ignored).
    A process killed while writing leaves its temporary file (:data:`TEMPORARY_FILE`); the next start of the
    training removes it (:func:`mclir_basicsr.experiment_files.remove_stale_temporaries`).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = temporary_path(path)
    for attempt in range(1, retries + 1):
        try:
            with open(tmp, 'wb') as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(directory)  # make the rename itself durable
            return
        except OSError:
            if os.path.exists(tmp):
                os.remove(tmp)
            if attempt == retries:
                raise
            time.sleep(1)


def atomic_write_bytes(data, path):
    """``data`` to ``path`` as :func:`atomic_torch_save` writes: a temporary file beside it, fsynced, then renamed
    (a kill or a full disk leaves the old file or none, never a partial one); the temporary file goes on failure."""
    tmp = temporary_path(path)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def bare_module(net):
    """Unwrap DataParallel / DistributedDataParallel and ``torch.compile`` (``_orig_mod``)."""
    while True:
        if isinstance(net, (DataParallel, DistributedDataParallel)):
            net = net.module
        elif isinstance(getattr(net, '_orig_mod', None), nn.Module):
            net = net._orig_mod
        else:
            return net
