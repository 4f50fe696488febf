"""Every image of a dataset read in full without decoding its pixels: the header (size, channels) and a completeness
test per image, for files and for lmdb values.

Decoding 20,000 images takes minutes; the header and the last bytes take tens of microseconds per image
(``benchmarks/preflight_cost.py``). The format is told by content, as OpenCV reads it, not by the file extension:

* nothing at all (0 bytes); no format PIL or OpenCV recognises (a text file renamed ``.png``): refused;
* PNG: the last chunk must be ``IEND``; JPEG: the data must end with the EOI marker ``FF D9`` (OpenCV decodes a
  cut-off JPEG with only a warning, the missing part grey); BMP and WebP: at least the size their header records;
* data failing that tail test is decoded in full by PIL (which refuses truncated data) before it is refused: bytes
  after the end marker are legal and both decoders ignore them;
* the header gives ``(h, w, c)`` (PIL, lazily); formats PIL cannot parse are decoded by OpenCV, as BasicSR will.

Not caught: damage inside the compressed data of an image whose header and end are intact (the first ``N_DECODE``
pairs are decoded in full, see :mod:`.sizes`).

Images are read by ``IO_THREADS`` threads: on cold storage each read waits for the disk, and the waits overlap (10,000
lmdb values: 12 s in one thread, 3 s in 16, on the benchmark machine); the parsing itself holds the GIL.
"""
import cv2
import io
import numpy as np
import os
from concurrent.futures import ThreadPoolExecutor
from PIL import Image

from ...utils import few
from ..options import OptionError

HEAD = 32  # bytes read from the start: the signature and the BMP / WebP size fields
TAIL = 12  # bytes read from the end: the PNG IEND chunk (length, type, CRC) and the JPEG EOI marker
HEADER_BYTES = 4096  # bytes of an lmdb value given to PIL for its header (a PNG's is ~100; no copy of the value)
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'\x00\x00\x00\x00IEND\xaeB`\x82'  # the IEND chunk, always the same 12 bytes
JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
IO_THREADS = 16  # concurrent readers of one dataset side
_GRAY_MODES = ('1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F')


class BadImage(Exception):
    """An image that BasicSR could not read in full; ``str()`` says why (``is truncated: ...``)."""


def pil_shape(im):
    """``(h, w, channels)`` of an opened PIL image, counted as OpenCV's ``IMREAD_UNCHANGED`` would."""
    w, h = im.size
    if im.mode in _GRAY_MODES:
        return h, w, 2 if im.mode in ('LA', 'La') else 1
    return h, w, len(im.getbands()) if im.mode != 'P' else 3


def _tail_problem(head, tail, size):
    """Why data of ``size`` bytes starting with ``head`` and ending with ``tail`` is incomplete, or None."""
    if size == 0:
        return 'is empty (0 bytes)'
    if head.startswith(PNG_SIGNATURE) and tail != PNG_END:
        return 'is truncated (the PNG does not end with its IEND chunk)'
    if head.startswith(JPEG_START) and not tail.endswith(JPEG_END):
        return 'is truncated (the JPEG does not end with the EOI marker FF D9)'
    if head.startswith(b'BM') and len(head) >= 6:
        declared = int.from_bytes(head[2:6], 'little')
        if size < declared:
            return f'is truncated (its BMP header records {declared} bytes, there are {size})'
    if head.startswith(b'RIFF') and head[8:12] == b'WEBP':
        declared = int.from_bytes(head[4:8], 'little') + 8
        if size < declared:
            return f'is truncated (its WebP header records {declared} bytes, there are {size})'
    return None


def _decodes_in_full(stream):
    """PIL decodes every pixel of ``stream`` (refusing truncated data, unlike OpenCV for JPEG)."""
    try:
        stream.seek(0)
        with Image.open(stream) as im:
            im.load()
        return True
    except Exception:  # noqa: BLE001 - any failure means BasicSR's read would fail or be partial
        return False


def _header(stream, head, decode):
    """``(h, w, c)`` from the header (PIL), else from a full decode (``decode()``: OpenCV, as BasicSR reads)."""
    try:
        stream.seek(0)
        with Image.open(stream) as im:
            return pil_shape(im)
    except Exception:  # noqa: BLE001 - formats PIL cannot parse: ask OpenCV, as BasicSR does
        img = decode()
    if img is None:
        raise BadImage(f'is not an image OpenCV can read (it starts with {head[:8]!r})')
    return img.shape[0], img.shape[1], (img.shape[2] if img.ndim == 3 else 1)


def inspect_file(path):
    """``(h, w, c)`` of the image file ``path`` from its header, after the completeness test.

    Raises:
        BadImage: the file is empty, truncated or not an image.
    """
    with open(path, 'rb') as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(HEAD)
        f.seek(max(size - TAIL, 0))
        tail = f.read(TAIL)
        problem = _tail_problem(head, tail, size)
        if problem is not None and (size == 0 or not _decodes_in_full(f)):
            raise BadImage(problem)
        return _header(f, head, lambda: cv2.imread(path, cv2.IMREAD_UNCHANGED))


def inspect_bytes(buf):
    """``(h, w, c)`` of the encoded image ``buf`` (bytes or an lmdb buffer), as :func:`inspect_file`.

    Raises:
        BadImage: the value is empty, truncated or not an image.
    """
    size = len(buf)
    head, tail = bytes(buf[:HEAD]), bytes(buf[max(size - TAIL, 0):])
    problem = _tail_problem(head, tail, size)
    if problem is not None and (size == 0 or not _decodes_in_full(io.BytesIO(bytes(buf)))):
        raise BadImage(problem)
    try:
        return _header(io.BytesIO(bytes(buf[:HEADER_BYTES])), head, lambda: None)
    except BadImage:  # a longer header (JPEG EXIF), or a format only OpenCV reads: the whole value
        return _header(io.BytesIO(bytes(buf)), head,
                       lambda: cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED))


def inspect_all(names, reader):
    """Inspect the images ``names`` in ``IO_THREADS`` threads.

    Args:
        names (list): the images, e.g. file names or lmdb keys.
        reader (callable): a context manager factory; ``with reader() as read:`` gives ``read(name) -> (h, w, c)``
            (raising :class:`BadImage`), one per thread (an lmdb read transaction belongs to one thread).
    Returns:
        tuple: ``({name: (h, w, c)}, [(name, why)])``, the unreadable ones in the order of ``names``.
    """
    threads = max(1, min(IO_THREADS, len(names)))

    def run(chunk):
        found, bad = {}, []
        with reader() as read:
            for name in chunk:
                try:
                    found[name] = read(name)
                except BadImage as err:
                    bad.append((name, str(err)))
        return found, bad

    with ThreadPoolExecutor(threads) as pool:  # interleaved chunks: every thread reads all over the set
        results = list(pool.map(run, [names[i::threads] for i in range(threads)]))
    found = {n: s for part, _ in results for n, s in part.items()}
    order = {n: i for i, n in enumerate(names)}
    return found, sorted((b for _, part in results for b in part), key=lambda b: order[b[0]])


def unreadable(key, bad, total, partner=True, lmdb=False):
    """The error for the images ``bad`` (``[(name, printable reference, reason)]``) of ``total`` under ``key``;
    ``partner``: each has a GT/LQ partner to remove with it; ``lmdb``: they are values of an lmdb."""
    _, ref, reason = bad[0]
    one = len(bad) == 1
    if lmdb:
        fix = 'rebuild the lmdb from intact images with mclir-make-lmdb'
    else:
        it = 'it' if one else 'them'
        fix = f're-export {it}, or remove {it}' + ((' and its partner' if one else ' and their partners')
                                                   if partner else '')
    if one:
        return OptionError(f'{key}: {ref} {reason}; {fix}. Training would stop on it (or read it partly grey) when '
                           f'it is drawn.')
    return OptionError(f'{key}: {len(bad)} of {total} images cannot be read in full {few(n for n, _, _ in bad)}; '
                       f'e.g. {ref} {reason}. {fix[0].upper()}{fix[1:]}. Training would stop on them (or read them '
                       f'partly grey) when they are drawn.')
