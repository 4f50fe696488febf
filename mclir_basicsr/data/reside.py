"""RESIDE (ITS, SOTS) as downloaded, in the paired layout ``PairedImageDataset`` reads.

RESIDE names a hazy image ``<id>_<k>_<beta>.png`` (ITS) or ``<id>_<k>.png`` (SOTS) for the clear image ``<id>.png``,
so GT and LQ do not share names, and the ``.`` in ITS's names cannot be an lmdb key. :func:`pair_hazy_with_clear`
writes ``hazy/<id>_<k>.png`` and ``clear/<id>_<k>.png`` (the clear image, centre-cropped to the hazy one's size where
the two differ, as FFA-Net's loader does); ``mclir-make-lmdb`` or ``folders_to_lmdb`` turn the folders into lmdbs.
"""
import cv2
import os
import os.path as osp
from PIL import Image

from ..utils import is_image_file


def _centre_crop(img, height, width):
    top, left = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
    return img[top:top + height, left:left + width]


def pair_hazy_with_clear(hazy_dir, clear_dir, out_dir):
    """Write the pairs of ``hazy_dir`` and ``clear_dir`` under ``out_dir/{hazy,clear}``; returns their number.

    Raises ``FileNotFoundError`` naming the folder or the missing clear image, ``ValueError`` for a hazy image
    larger than its clear one, before writing anything."""
    for folder in (hazy_dir, clear_dir):
        if not osp.isdir(folder):
            raise FileNotFoundError(f'{folder}: no such folder (RESIDE as downloaded has hazy/ and clear/ or gt/)')
    clear = {osp.splitext(name)[0]: name for name in os.listdir(clear_dir) if is_image_file(name)}
    pairs = []
    for name in sorted(n for n in os.listdir(hazy_dir) if is_image_file(n)):
        parts = osp.splitext(name)[0].split('_')
        if parts[0] not in clear:
            raise FileNotFoundError(f'{osp.join(hazy_dir, name)}: no clear image {parts[0]}.* in {clear_dir}')
        pairs.append((name, clear[parts[0]], '_'.join(parts[:2])))
    if not pairs:
        raise FileNotFoundError(f'{hazy_dir}: no images')
    for hazy_name, clear_name, _ in pairs:  # image headers only
        with Image.open(osp.join(hazy_dir, hazy_name)) as hazy, Image.open(osp.join(clear_dir, clear_name)) as gt:
            if gt.width < hazy.width or gt.height < hazy.height:
                raise ValueError(f'{osp.join(hazy_dir, hazy_name)} ({hazy.width}x{hazy.height}) is larger than its '
                                 f'clear image {clear_name} ({gt.width}x{gt.height})')
    for sub in ('hazy', 'clear'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    for hazy_name, clear_name, key in pairs:
        hazy = cv2.imread(osp.join(hazy_dir, hazy_name), cv2.IMREAD_UNCHANGED)
        gt = cv2.imread(osp.join(clear_dir, clear_name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(osp.join(out_dir, 'hazy', key + '.png'), hazy)
        cv2.imwrite(osp.join(out_dir, 'clear', key + '.png'), _centre_crop(gt, *hazy.shape[:2]))
    return len(pairs)
