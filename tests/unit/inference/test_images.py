"""Images as people have them: bit depth, gray, alpha, EXIF orientation read and written back; atomic writes."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from mclir_basicsr.inference.images import ImageError, Picture, read_picture, write_picture


def _random(shape, dtype, seed=0):
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top + 1, shape, dtype=np.int64).astype(dtype)


@pytest.mark.parametrize('ext', ['.png', '.tif'])
@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
@pytest.mark.parametrize('channels', [1, 2, 3, 4])
def test_written_back_exactly_at_the_bit_depth(ext, dtype, channels, tmp_path):
    stored = _random((13, 17, channels), dtype)
    if channels == 2:  # stored by OpenCV as BGRA with equal colour planes
        stored = np.concatenate([stored[..., :1]] * 3 + [stored[..., 1:]], axis=2)
    src, dst = str(tmp_path / f'in{ext}'), str(tmp_path / f'out{ext}')
    assert cv2.imwrite(src, stored[..., 0] if channels == 1 else stored)
    picture = read_picture(src)
    assert picture.depth == (16 if dtype == np.uint16 else 8)
    assert picture.grayscale == (channels == 1)
    assert (picture.alpha is not None) == (channels in (2, 4))
    write_picture(picture, dst)
    assert np.array_equal(cv2.imread(dst, cv2.IMREAD_UNCHANGED), cv2.imread(src, cv2.IMREAD_UNCHANGED))


def test_sixteen_bits_become_eight_only_where_the_format_cannot_hold_them(tmp_path):
    src = str(tmp_path / 'in.png')
    cv2.imwrite(src, _random((8, 8, 3), np.uint16))
    write_picture(read_picture(src), str(tmp_path / 'out.jpg'))
    assert cv2.imread(str(tmp_path / 'out.jpg'), cv2.IMREAD_UNCHANGED).dtype == np.uint8


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_is_applied_as_pil_applies_it(orientation, tmp_path):
    pixels = _random((6, 10, 3), np.uint8)
    path = str(tmp_path / 'photo.png')
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path)))  # RGB
    assert np.array_equal((read_picture(path).colour * 255).round().astype(np.uint8)[..., ::-1], upright)


@pytest.mark.parametrize('content', [b'', b'\x89PNG\r\n\x1a\n truncated', b'plain text'])
def test_an_unreadable_image_is_one_line(content, tmp_path):
    path = tmp_path / 'broken.png'
    path.write_bytes(content)
    with pytest.raises(ImageError) as err:
        read_picture(str(path))
    assert 'broken.png' in str(err.value) and '\n' not in str(err.value)


def test_a_failed_write_leaves_neither_a_partial_image_nor_a_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / 'out.png'
    target.write_bytes(b'the previous output')
    picture = Picture(np.zeros((4, 4, 3), np.float32))

    def disk_full(fd, *args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr('mclir_basicsr.utils.os.fsync', disk_full)
    with pytest.raises(OSError):
        write_picture(picture, str(target))
    assert target.read_bytes() == b'the previous output'
    assert os.listdir(tmp_path) == ['out.png']
    monkeypatch.undo()
    write_picture(picture, str(target))
    assert cv2.imread(str(target)).shape == (4, 4, 3)
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
