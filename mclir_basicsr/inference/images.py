"""Images as people have them: read with their bit depth, grayscale or colour, alpha and EXIF orientation; written
back at that bit depth, atomically.

An image is read as a :class:`Picture`: ``colour`` (H x W x C float32 in 0..1, BGR as OpenCV reads; C = 1 or 3),
``alpha`` (H x W float32 in 0..1, or None) and ``depth`` (8 or 16). EXIF orientation (JPEG, TIFF, PNG with an
eXIf chunk) is applied, so the output stands as the photo is shown. Writing rounds to the bit depth (16-bit only
where the format stores it: PNG, TIFF; else 8-bit), puts the alpha back, and writes beside the final name first,
then renames: a kill or a full disk never leaves a half-written image under the final name.
"""
import cv2
import numpy as np
import os
from dataclasses import dataclass

from ..utils import atomic_write_bytes

SIXTEEN_BIT_FORMATS = ('.png', '.tif', '.tiff')
KEEP_FORMATS = ('.png', '.tif', '.tiff')  # --ext auto: these stay, every other input (JPEG, WebP, BMP) -> .png
EXIF_ORIENTATION = 0x0112


class ImageError(Exception):
    """This image cannot be read or written (the message names the file)."""


@dataclass
class Picture:
    colour: np.ndarray
    alpha: np.ndarray = None
    depth: int = 8

    @property
    def grayscale(self):
        return self.colour.shape[2] == 1


def _orientation(path):
    """The EXIF orientation (1..8) of ``path``, 1 when it has none or it cannot be read."""
    try:
        from PIL import Image
        with Image.open(path) as im:
            return int(im.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - no EXIF, or a format PIL does not read: as stored
        return 1


def apply_orientation(array, orientation):
    """Turn an H x W (x C) array stored with EXIF ``orientation`` upright (PIL's ``exif_transpose`` moves)."""
    moves = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
             8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(moves[orientation](array)) if orientation in moves else array


def read_picture(path):
    """Read ``path`` (module doc); raises :class:`ImageError` with one line for an unreadable file."""
    data = np.fromfile(path, dtype=np.uint8) if os.path.isfile(path) else None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
    if img is None:
        raise ImageError(f'{path}: not an image OpenCV can decode (empty, truncated or another format).')
    if img.dtype == np.uint8:
        depth, peak = 8, 255.
    elif img.dtype == np.uint16:
        depth, peak = 16, 65535.
    else:
        raise ImageError(f'{path}: {img.dtype} samples are not supported (8- and 16-bit images are).')
    img = apply_orientation(img, _orientation(path))
    img = img[..., None] if img.ndim == 2 else img
    channels = img.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ImageError(f'{path}: {channels} channels are not supported (gray, gray+alpha, colour, colour+alpha).')
    alpha = img[..., -1].astype(np.float32) / peak if channels in (2, 4) else None
    colour = img[..., :1 if channels in (1, 2) else 3].astype(np.float32) / peak
    return Picture(np.ascontiguousarray(colour), alpha, depth)


def output_depth(depth, path):
    return depth if os.path.splitext(path)[1].lower() in SIXTEEN_BIT_FORMATS else 8


def encode_picture(picture, path):
    """The bytes of ``picture`` in the format of ``path``'s extension."""
    depth = output_depth(picture.depth, path)
    peak, dtype = (65535., np.uint16) if depth == 16 else (255., np.uint8)
    planes = [picture.colour] + ([picture.alpha[..., None]] if picture.alpha is not None else [])
    img = np.concatenate(planes, axis=2) if len(planes) > 1 else picture.colour
    img = (np.clip(img, 0, 1) * peak).round().astype(dtype)
    if img.shape[2] == 2:  # gray + alpha: no OpenCV writer takes two channels, store as BGRA
        img = np.concatenate([img[..., :1]] * 3 + [img[..., 1:]], axis=2)
    img = img[..., 0] if img.shape[2] == 1 else img
    ok, buffer = cv2.imencode(os.path.splitext(path)[1], img)
    if not ok:
        raise ImageError(f'{path}: OpenCV cannot encode this format; choose another --ext.')
    return buffer.tobytes()


def write_picture(picture, path):
    """``picture`` to ``path`` (folders made), atomically."""
    data = encode_picture(picture, path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_bytes(data, path)
