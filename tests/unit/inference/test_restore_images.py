"""restore_images and load_restorer: inputs (files, folders, globs), outputs (names, formats, never over an input),
everything refused before the first image is read, unreadable images skipped, alpha and gray carried through."""
import os

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs.edsr_arch import EDSR

from mclir_basicsr.inference import RestoreError, load_restorer, restore_images

EDSR_ARGS = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 2}


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / 'edsr.pth'
    torch.save({'params': EDSR(**EDSR_ARGS).state_dict()}, path)
    return str(path)


@pytest.fixture
def restorer(weights):
    return load_restorer(network='EDSR', network_args=EDSR_ARGS, weights=weights)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / 'photos'
    (folder / 'trip').mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / 'a.jpg'), rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / 'b.png'), rng.integers(0, 256, (16, 18, 4), dtype=np.uint8))  # with alpha
    cv2.imwrite(str(folder / 'gray.tif'), rng.integers(0, 65536, (12, 14), dtype=np.uint16))
    cv2.imwrite(str(folder / 'trip' / 'c.png'), rng.integers(0, 256, (10, 10, 3), dtype=np.uint8))
    (folder / 'notes.txt').write_text('not an image')
    return folder


def test_a_folder_is_restored_with_its_formats_depths_alpha_and_gray(photos, restorer, tmp_path):
    out = tmp_path / 'out'
    report = restore_images([str(photos)], str(out), restorer)
    assert report.ok and sorted(os.listdir(out)) == ['a.png', 'b.png', 'gray.tif']
    b = cv2.imread(str(out / 'b.png'), cv2.IMREAD_UNCHANGED)
    assert b.shape == (32, 36, 4)
    alpha = cv2.imread(str(photos / 'b.png'), cv2.IMREAD_UNCHANGED)[..., 3]
    assert np.abs(cv2.resize(b[..., 3], (18, 16), interpolation=cv2.INTER_AREA).astype(int) - alpha).mean() < 40
    gray = cv2.imread(str(out / 'gray.tif'), cv2.IMREAD_UNCHANGED)
    assert gray.shape == (24, 28) and gray.dtype == np.uint16


def test_recursive_keeps_subfolders_and_a_glob_its_matches(photos, restorer, tmp_path):
    restore_images([str(photos)], str(tmp_path / 'r'), restorer, recursive=True, suffix='_x2')
    assert os.path.isfile(tmp_path / 'r' / 'trip' / 'c_x2.png')
    restore_images([str(photos / '**' / '*.png')], str(tmp_path / 'g'), restorer, ext='tif')
    assert sorted(os.listdir(tmp_path / 'g')) == ['b.tif', 'trip']


def test_dry_run_lists_and_skip_existing_leaves(photos, restorer, tmp_path):
    lines = []
    restore_images([str(photos / 'a.jpg')], str(tmp_path / 'o'), restorer, dry_run=True, log=lines.append)
    assert lines == [f'{photos / "a.jpg"} -> {tmp_path / "o" / "a.png"}'] and not (tmp_path / 'o').exists()
    (tmp_path / 'o').mkdir()
    (tmp_path / 'o' / 'a.png').write_bytes(b'kept')
    report = restore_images([str(photos)], str(tmp_path / 'o'), restorer, skip_existing=True)
    assert (tmp_path / 'o' / 'a.png').read_bytes() == b'kept' and len(report.skipped) == 1
    assert len(report.written) == 2


def test_an_unreadable_image_is_skipped_and_the_others_are_written(photos, restorer, tmp_path):
    (photos / 'broken.png').write_bytes(b'\x89PNG truncated')
    lines = []
    report = restore_images([str(photos)], str(tmp_path / 'o'), restorer, log=lines.append)
    assert not report.ok and [f for f, _ in report.failed] == [str(photos / 'broken.png')]
    assert len(lines) == 1 and 'broken.png' in lines[0]
    assert sorted(os.listdir(tmp_path / 'o')) == ['a.png', 'b.png', 'gray.tif']


@pytest.mark.parametrize('case, match', [
    ('over_input', 'an input: never written over'),
    ('same_output', 'would both be written to'),
    ('missing', 'no such file or folder'),
    ('empty_folder', 'no image files in this folder'),
    ('glob', 'matches no image file'),
    ('unwritable', 'is a file, not a folder'),
])
def test_refused_before_anything_runs(case, match, photos, restorer, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError('an image was read')

    monkeypatch.setattr('mclir_basicsr.inference.inputs_outputs.read_picture', never)
    (tmp_path / 'empty').mkdir()
    (photos / 'b.jpg').write_bytes(b'')
    (tmp_path / 'a_file').write_text('')
    inputs, output = {
        'over_input': ([str(photos / 'b.png')], str(photos)),
        'same_output': ([str(photos)], str(tmp_path / 'o')),  # b.jpg and b.png -> b.png
        'missing': ([str(tmp_path / 'nowhere.png')], str(tmp_path / 'o')),
        'empty_folder': ([str(tmp_path / 'empty')], str(tmp_path / 'o')),
        'glob': ([str(tmp_path / '*.webp')], str(tmp_path / 'o')),
        'unwritable': ([str(photos / 'a.jpg')], str(tmp_path / 'a_file' / 'out')),
    }[case]
    with pytest.raises(RestoreError, match=match) as err:
        restore_images(inputs, output, restorer)
    assert '\n' not in str(err.value) and not (tmp_path / 'o').exists()


@pytest.mark.parametrize('kwargs, match', [
    ({'network': 'EDSRR'}, 'Did you mean EDSR'),
    ({'network_args': dict(EDSR_ARGS, num_feat=16)}, 'do not fit EDSR'),
    ({'network_args': dict(EDSR_ARGS, colour=1)}, 'colour'),
    ({'scale': 4}, '--scale 4, but the network upscales by 2'),
    ({'tile': 16, 'overlap': 16}, '--tile-overlap 16 must be smaller than --tile 16'),
    ({'precision': 'fp8'}, '--precision'),
    ({'weights': 'missing.pth'}, 'does not exist'),
    ({'device': 'cuda:7'} if not torch.cuda.is_available() else {'device': 'tpu'}, '--device'),
])
def test_a_model_that_cannot_run_is_refused_in_one_line(kwargs, match, weights):
    args = dict(network='EDSR', network_args=EDSR_ARGS, weights=weights)
    args.update(kwargs)
    with pytest.raises(RestoreError, match=match) as err:
        load_restorer(**args)
    assert '\n' not in str(err.value)


def test_tiled_restoring_through_the_function_equals_whole(photos, weights, tmp_path):
    whole = load_restorer(network='EDSR', network_args=EDSR_ARGS, weights=weights)
    tiled = load_restorer(network='EDSR', network_args=EDSR_ARGS, weights=weights, tile=14, overlap=12, tile_batch=2)
    restore_images([str(photos / 'a.jpg')], str(tmp_path / 'w'), whole)
    restore_images([str(photos / 'a.jpg')], str(tmp_path / 't'), tiled)
    a, b = (cv2.imread(str(tmp_path / f / 'a.png')).astype(int) for f in ('w', 't'))
    assert np.abs(a - b).max() <= 1  # equal floats, rounded to 8 bits


def test_bf16_autocast_on_request_stays_close_to_fp32(weights):
    """--precision bf16 on the CPU (autocast): the same image within bf16's precision."""
    image = torch.rand(1, 3, 20, 24)
    fp32 = load_restorer(network='EDSR', network_args=EDSR_ARGS, weights=weights).run(image)
    bf16 = load_restorer(network='EDSR', network_args=EDSR_ARGS, weights=weights, precision='bf16').run(image)
    assert fp32.dtype == bf16.dtype == torch.float32 and bf16.shape == fp32.shape == (1, 3, 40, 48)
    assert 0 < (bf16 - fp32).abs().max() < 0.05
