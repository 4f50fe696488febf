"""Real photographs that can be had offline, as paired data for ``from_scratch.py`` (benchmarks only; tests use
scikit-image's photos alone).

    python -m benchmarks.photo_data [--root benchmarks/out/photo_data] [--tasks dehaze sr_x2]

Photos: scikit-image's colour photographs, and, where installed, the photographs of two Debian packages (``apt-get
install lomiri-wallpapers-16.04 mate-backgrounds``): lomiri-wallpapers-16.04 (13 photos, CC-BY-4.0, CC-BY-SA-4.0 or
CC0 per file, see /usr/share/doc/lomiri-wallpapers-16.04/copyright) and mate-backgrounds' nature folder (12 photos,
GPL-2+). Each is shrunk with INTER_AREA so its long side is ``LONG_SIDE`` (which also hides JPEG artefacts).
Every third photo in name order is a validation photo (its centre ``VAL_SIZE`` square); the others are cut into
``CROP`` px training crops. Degradations: ``dehaze`` the atmospheric scattering model of the all-in-one demo data
(``add_haze``, A and beta drawn per image from a seeded generator); ``sr_x2`` BasicSR's MATLAB bicubic x0.5.

Writes ``<root>/<task>/{train,val}/{gt,lq}/*.png`` and ``<root>/<task>/manifest.json`` (the photos, their sources
and the settings); an existing task folder with the same manifest is left as it is.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys

import mclir_basicsr  # noqa: F401  (before basicsr)
import cv2
import numpy as np
from basicsr.utils.matlab_functions import imresize

from benchmarks.common import OUT_DIR, log
from mclir_basicsr.data.demo_all_in_one import add_haze
from mclir_basicsr.data.demo_data import extract_crops, load_photo

SKIMAGE = ('astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle_left')
# package: (folder, file pattern, names left out: an abstract gradient and a blurred texture are no photographs)
DEBIAN = {'lomiri-wallpapers-16.04': ('/usr/share/backgrounds', '*_by_*.jpg', ('umang_by_', 'analogpattern_by_')),
          'mate-backgrounds': ('/usr/share/backgrounds/mate/nature', '*.jpg', ())}
LONG_SIDE, CROP, STEP, VAL_SIZE = 384, 96, 64, 192
HAZE = {'A': (0.8, 1.0), 'beta': (0.6, 1.6)}
TASKS = ('dehaze', 'sr_x2')
ROOT = osp.join(OUT_DIR, 'photo_data')


def photo_sources():
    """``[(name, source, loader)]`` of every photo to be had here, in name order."""
    found = [(f'skimage_{n}', 'scikit-image', lambda n=n: load_photo(n)) for n in SKIMAGE]
    for package, (folder, pattern, skip) in DEBIAN.items():
        for path in sorted(glob.glob(osp.join(folder, pattern))):
            name = osp.splitext(osp.basename(path))[0]
            if not name.startswith(skip):
                found.append((f'{package.split("-")[0]}_{name}', package,
                              lambda p=path: cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)))
    return sorted(found)


def shrink(img, long_side=LONG_SIDE):
    scale = long_side / max(img.shape[:2])
    if scale >= 1:
        return img
    size = (round(img.shape[1] * scale) // 4 * 4, round(img.shape[0] * scale) // 4 * 4)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def centre(img, size=VAL_SIZE):
    y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[y:y + size, x:x + size]


def degrade(task, gt, rng):
    if task == 'dehaze':
        return add_haze(gt, rng.uniform(*HAZE['A']), rng.uniform(*HAZE['beta']))
    return np.clip(np.round(imresize(gt.astype(np.float32) / 255., 0.5) * 255.), 0, 255).astype(np.uint8)


def build(task, root=ROOT, seed=0):
    """Build ``task``'s data under ``root``; returns its folder. Same manifest: nothing is done."""
    sources = photo_sources()
    manifest = {'task': task, 'seed': seed, 'long_side': LONG_SIDE, 'crop': CROP, 'step': STEP, 'val_size': VAL_SIZE,
                'haze': HAZE if task == 'dehaze' else None,
                'photos': [{'name': n, 'source': s, 'split': 'val' if i % 3 == 0 else 'train'}
                           for i, (n, s, _) in enumerate(sources)]}
    folder = osp.join(root, task)
    path = osp.join(folder, 'manifest.json')
    if osp.isfile(path):
        with open(path) as f:
            saved = json.load(f)
        for entry in saved.get('photos', []):
            entry.pop('images', None)  # what the build counted
        if saved == json.loads(json.dumps(manifest)):  # as JSON reads it back: tuples come back as lists
            return folder
    shutil.rmtree(folder, ignore_errors=True)
    for split in ('train', 'val'):
        for sub in ('gt', 'lq'):
            os.makedirs(osp.join(folder, split, sub))
    rng = np.random.default_rng(seed)
    for (name, _, load), entry in zip(sources, manifest['photos']):
        img = shrink(load())
        crops = [centre(img)] if entry['split'] == 'val' else extract_crops(img, CROP, STEP)
        for k, gt in enumerate(crops):
            stem = name if entry['split'] == 'val' else f'{name}_{k:03d}'
            lq = degrade(task, np.ascontiguousarray(gt), rng)
            for sub, img_rgb in (('gt', gt), ('lq', lq)):
                cv2.imwrite(osp.join(folder, entry['split'], sub, stem + '.png'), img_rgb[:, :, ::-1])
        entry['images'] = len(crops)
    with open(path, 'w') as f:
        json.dump(manifest, f, indent=1)
    train = sum(e['images'] for e in manifest['photos'] if e['split'] == 'train')
    val = sum(e['images'] for e in manifest['photos'] if e['split'] == 'val')
    log(f'{task}: {len(sources)} photos -> {train} training crops, {val} validation images in {folder}')
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default=ROOT)
    parser.add_argument('--tasks', nargs='+', choices=TASKS, default=list(TASKS))
    args = parser.parse_args(argv)
    for task in args.tasks:
        build(task, args.root)
    return 0


if __name__ == '__main__':
    sys.exit(main())
