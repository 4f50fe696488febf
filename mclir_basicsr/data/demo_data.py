"""Build the small bundled demo data sets from scikit-image's sample photos (nothing is downloaded).

Layout, for each task ``T`` (``sr_x2``: bicubic x2 super-resolution, ``dn_s25``: Gaussian denoising, sigma 25)::

    root/T/{train,val}/{gt,lq}/*.png     image folders (BGR PNG, as BasicSR reads them)
    root/T/{train,val}_{gt,lq}.lmdb      the same images as lmdbs (same keys in GT and LQ)
    root/T/manifest.json                 how it was made (photos, seed, sizes, versions)

Validation photos (chelsea, coffee) are never used for training. Training photos are cut into 128x128
GT sub-images with stride 96 (like BasicSR's ``extract_subimages``), dropping near-constant or mostly
black crops.

``all_in_one`` (built only on request, not by default): denoise/derain/dehaze/deblur/low-light pairs from the same
crops in the real data sets' layouts under ``root/all_in_one``; see ``demo_all_in_one``.

CLI: ``mclir-demo-data [--root datasets/demo] [--tasks sr_x2 dn_s25 all_in_one] [--force] [--seed 0]``
"""
import argparse
import cv2
import json
import numpy as np
import os
import os.path as osp
import shutil
import sys
import time
import zlib
from basicsr.utils.matlab_functions import imresize

from . import demo_all_in_one
from .lmdb_tools import folders_to_lmdb

TASKS = ('sr_x2', 'dn_s25')  # the default; ALL_TASKS adds the all-in-one data, built only when asked for
ALL_TASKS = TASKS + (demo_all_in_one.TASK,)
VAL_PHOTOS = ('chelsea', 'coffee')
# Both stereo views are near-duplicates of each other, so both stay on the training side.
TRAIN_PHOTOS = ('astronaut', 'rocket', 'motorcycle_left', 'motorcycle_right', 'hubble_deep_field',
                'immunohistochemistry', 'retina')
CROP, STEP, VAL_SIZE = 128, 96, 192  # GT sub-image size / stride; max centre-crop of validation photos
MIN_STD = 2.0  # crops whose pixel std (grey levels) is below this are skipped as near-constant
MAX_BLACK = 0.75  # crops with more than this fraction of black pixels (all channels < 10) are skipped (retina)
DOWNSCALE_OVER = 1200  # photos larger than this (retina, 1411 px) are first halved with cv2.INTER_AREA
NOISE_SIGMA = 25
_SPLITS = ('train', 'val')
_ENTRIES = {'manifest.json', *_SPLITS, *(f'{s}_{k}.lmdb' for s in _SPLITS for k in ('gt', 'lq'))}


def load_photo(name):
    """Return a bundled scikit-image photo as RGB uint8 (large ones halved with INTER_AREA)."""
    from skimage import data
    if name.startswith('motorcycle_'):
        img = data.stereo_motorcycle()[0 if name == 'motorcycle_left' else 1]
    else:
        img = getattr(data, name)()
    if max(img.shape[:2]) > DOWNSCALE_OVER:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def _starts(n, crop, step):
    starts = list(range(0, n - crop + 1, step))
    return starts + [n - crop] if starts[-1] + crop < n else starts


def extract_crops(img, crop=CROP, step=STEP, min_std=MIN_STD, max_black=MAX_BLACK):
    """Cut ``img`` (HWC) into ``crop`` x ``crop`` sub-images with stride ``step`` (last row/column flush
    with the border), skipping near-constant ones (pixel std < ``min_std``) and mostly black ones
    (fraction of pixels with all channels < 10 above ``max_black``). Returns a list of arrays."""
    h, w = img.shape[:2]
    crops = (img[y:y + crop, x:x + crop] for y in _starts(h, crop, step) for x in _starts(w, crop, step))
    return [c for c in crops if c.std() >= min_std and (c.max(-1) < 10).mean() <= max_black]


def center_crop(img, size=VAL_SIZE, multiple=4):
    """Centre crop to at most ``size`` x ``size``, sides a multiple of ``multiple``."""
    h, w = img.shape[:2]
    s = min(size, h, w) // multiple * multiple
    y, x = (h - s) // 2, (w - s) // 2
    return img[y:y + s, x:x + s]


def make_lq(task, gt, name, seed=0):
    """Make the (GT, LQ) pair of ``task`` from a uint8 GT image.

    ``sr_x2``: GT mod-cropped to even sides, LQ = BasicSR's MATLAB-style bicubic ``imresize(gt, 0.5)``.
    ``dn_s25``: LQ = clip(round(GT + N(0, 25))), noise from a generator seeded by ``(seed, crc32(name))``.
    """
    if task == 'sr_x2':
        gt = gt[:gt.shape[0] // 2 * 2, :gt.shape[1] // 2 * 2]
        lq = imresize(gt.astype(np.float32) / 255., 0.5)
        return gt, np.clip(np.round(lq * 255.), 0, 255).astype(np.uint8)
    if task == 'dn_s25':
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        noisy = gt.astype(np.float64) + rng.normal(0., NOISE_SIGMA, gt.shape)
        return gt, np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    raise ValueError(f'unknown demo task {task!r}; choose from {TASKS}.')


def _paths(task_dir):
    p = {'root': task_dir, 'manifest': osp.join(task_dir, 'manifest.json')}
    for s in _SPLITS:
        for k in ('gt', 'lq'):
            p[f'{s}_{k}'] = osp.join(task_dir, s, k)
            p[f'{s}_{k}_lmdb'] = osp.join(task_dir, f'{s}_{k}.lmdb')
    return p


def _why_rebuild(task_dir, config):
    """None if ``task_dir`` holds a complete build made with ``config``, else the reason to rebuild."""
    p = _paths(task_dir)
    try:
        with open(p['manifest']) as f:
            man = json.load(f)
    except (OSError, ValueError):
        return 'no readable manifest.json'
    if man.get('config') != config:
        return 'it was built with other settings'
    for s in _SPLITS:
        n = man['counts'][s]
        for k in ('gt', 'lq'):
            if not osp.isdir(p[f'{s}_{k}']) or len([f for f in os.listdir(p[f'{s}_{k}']) if f.endswith('.png')]) != n:
                return f'{s}/{k} is incomplete'
            try:
                with open(osp.join(p[f'{s}_{k}_lmdb'], 'meta_info.txt')) as f:
                    ok = len(f.readlines()) == n and osp.isfile(osp.join(p[f'{s}_{k}_lmdb'], 'data.mdb'))
            except OSError:
                ok = False
            if not ok:
                return f'{s}_{k}.lmdb is missing or incomplete'
    return None


def _build_task(task, task_dir, photos, config, seed):
    """Write one task into a temporary folder next to ``task_dir``, then move it in place."""
    tmp = osp.join(osp.dirname(task_dir), f'.{task}.tmp-{os.getpid()}')
    shutil.rmtree(tmp, ignore_errors=True)
    p, counts = _paths(tmp), {}
    try:
        for split in _SPLITS:
            for k in ('gt', 'lq'):
                os.makedirs(p[f'{split}_{k}'])
            counts[split] = 0
            for name, gt_rgb in photos[split]:
                gt, lq = make_lq(task, np.ascontiguousarray(gt_rgb[..., ::-1]), name, seed)  # BGR, as on disk
                for k, img in (('gt', gt), ('lq', lq)):
                    if not cv2.imwrite(osp.join(p[f'{split}_{k}'], f'{name}.png'), img):
                        raise OSError(f'could not write {name}.png under {tmp!r}')
                counts[split] += 1
            folders_to_lmdb(p[f'{split}_gt'], p[f'{split}_lq'], p[f'{split}_gt_lmdb'], p[f'{split}_lq_lmdb'],
                            quiet=True)
        import basicsr
        import skimage
        desc = {'sr_x2': 'LQ = basicsr.utils.matlab_functions.imresize(GT / 255, 0.5), rounded to uint8',
                'dn_s25': f'LQ = clip(round(GT + N(0, {NOISE_SIGMA}))) uint8; noise drawn on the BGR array '
                          'with numpy default_rng([seed, zlib.crc32(image name)])'}[task]
        manifest = {
            'task': task, 'lq': desc, 'config': config, 'counts': counts,
            'train_gt_size': CROP, 'train_lq_size': CROP // 2 if task == 'sr_x2' else CROP,
            'val_images': {n: list(img.shape) for n, img in photos['val']},
            'source': 'skimage.data photos (RGB, saved as BGR PNG); stereo_motorcycle left/right views',
            'versions': {'scikit-image': skimage.__version__, 'basicsr': basicsr.__version__,
                         'numpy': np.__version__, 'opencv': cv2.__version__},
        }
        with open(p['manifest'], 'w') as f:
            json.dump(manifest, f, indent=1)
        if osp.exists(task_dir):
            shutil.rmtree(task_dir)
        os.replace(tmp, task_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts


def build_demo_data(root='datasets/demo', tasks=TASKS, force=False, seed=0, quiet=False, train_photos=TRAIN_PHOTOS,
                    max_crops_per_photo=None):
    """Build (or reuse) the demo data sets under ``root``.

    Args:
        root (str): Output folder; each task goes to ``root/<task>``.
        tasks (Sequence[str]): Any of ``'sr_x2'``, ``'dn_s25'``, ``'all_in_one'``.
        force (bool): Rebuild even if a complete build exists (also replaces foreign folders).
        seed (int): Seed of the denoising noise (and of the all-in-one crop draws and degradations).
        quiet (bool): Print nothing.
        train_photos (Sequence[str]): Training photos (subset of ``TRAIN_PHOTOS``); for small test builds.
        max_crops_per_photo (int | None): Keep at most this many sub-images per training photo.

    Returns:
        dict[str, dict[str, str]]: Per task: ``root``, ``manifest``, ``{train,val}_{gt,lq}`` (image folders)
        and ``{train,val}_{gt,lq}_lmdb``.

    Raises:
        ValueError: Unknown task or photo.
        FileExistsError: ``root/<task>`` holds files this tool did not make (and ``force`` is False).
    """
    log = (lambda *a: None) if quiet else print
    tasks, train_photos = list(dict.fromkeys(tasks)), list(train_photos)
    if not tasks or set(tasks) - set(ALL_TASKS):
        raise ValueError(f'tasks {tasks} must be a non-empty subset of {ALL_TASKS}.')
    if not train_photos or set(train_photos) - set(TRAIN_PHOTOS):
        raise ValueError(f'train_photos {train_photos} must be a non-empty subset of {TRAIN_PHOTOS} '
                         f'(validation photos {VAL_PHOTOS} are never used for training).')
    config = {'seed': seed, 'train_photos': train_photos, 'val_photos': list(VAL_PHOTOS), 'crop': CROP, 'step': STEP,
              'min_std': MIN_STD, 'max_black': MAX_BLACK, 'val_size': VAL_SIZE, 'downscale_over': DOWNSCALE_OVER,
              'max_crops_per_photo': max_crops_per_photo}
    out, todo = {}, []
    for task in tasks:
        task_dir = osp.join(root, task)
        aio = task == demo_all_in_one.TASK
        out[task] = demo_all_in_one.paths(task_dir) if aio else _paths(task_dir)
        why = 'forced' if force else (demo_all_in_one.why_rebuild if aio else _why_rebuild)(task_dir, config)
        if why is None:
            log(f'{task_dir}: already built, nothing to do (use --force to rebuild).')
            continue
        if osp.exists(task_dir) and not force:
            foreign = set(os.listdir(task_dir)) - (demo_all_in_one.ENTRIES if aio else _ENTRIES)
            if foreign:
                raise FileExistsError(f'{task_dir!r} exists and holds files the demo builder did not make '
                                      f'({sorted(foreign)[:5]}); delete it, choose another --root, or use --force.')
        if osp.exists(task_dir):
            log(f'{task_dir}: rebuilding ({why}).')
        todo.append(task)
    if not todo:
        return out

    t0 = time.time()
    photos = {'train': [], 'val': [(n, center_crop(load_photo(n))) for n in VAL_PHOTOS]}
    for name in train_photos:
        crops = extract_crops(load_photo(name))[:max_crops_per_photo]
        photos['train'] += [(f'{name}_s{i:03d}', c) for i, c in enumerate(crops)]
        log(f'  {name}: {len(crops)} training sub-images')
    for task in todo:
        if task == demo_all_in_one.TASK:
            n = demo_all_in_one.build(out[task]['root'], photos, config, seed)
            log(f'{out[task]["root"]}: {n} images of {len(demo_all_in_one.AIO_TASKS)} tasks '
                f'(folders, {time.time() - t0:.1f} s so far)')
            continue
        counts = _build_task(task, out[task]['root'], photos, config, seed)
        log(f'{out[task]["root"]}: {counts["train"]} train / {counts["val"]} val pairs '
            f'(folders + lmdbs, {time.time() - t0:.1f} s so far)')
    return out


def main(argv=None):
    """``mclir-demo-data``: build the demo data sets. Returns the exit code."""
    parser = argparse.ArgumentParser(prog='mclir-demo-data', description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='datasets/demo', help='output folder (default datasets/demo)')
    parser.add_argument('--tasks', nargs='+', default=list(TASKS), choices=ALL_TASKS,
                        help='tasks to build (default: sr_x2 dn_s25; all_in_one only when named)')
    parser.add_argument('--force', action='store_true', help='rebuild even if already built')
    parser.add_argument('--seed', type=int, default=0, help='seed of the synthetic degradations (default 0)')
    args = parser.parse_args(argv)
    try:
        build_demo_data(args.root, args.tasks, args.force, args.seed)
    except (FileExistsError, ValueError) as err:
        print(f'mclir-demo-data: error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
