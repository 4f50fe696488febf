"""Small leaf helpers shared by the package: checkpoint keys, atomic saves, image file names, short lists."""
import os
import time
import torch

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


def strip_wrapper_prefixes(key):
    """``module._orig_mod.conv.weight`` -> ``conv.weight``: the state-dict key of the bare network."""
    key = str(key)
    while key.startswith(WRAPPER_PREFIXES):
        key = key.split('.', 1)[1]
    return key


def atomic_torch_save(obj, path, retries=3):
    """``torch.save`` to ``path`` atomically: write a temporary file beside it, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the complete new one, never a partial file under
    ``path``. Transient errors are retried ``retries`` times, then raised (a lost checkpoint is not ignored).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f'.{os.path.basename(path)}.tmp-{os.getpid()}')
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
