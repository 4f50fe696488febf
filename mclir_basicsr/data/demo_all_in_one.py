"""All-in-one restoration demo data: denoise, derain, dehaze, deblur and low-light pairs synthesised
deterministically from the demo photos (nothing is downloaded).

Built by ``mclir-demo-data --tasks all_in_one`` (``build_demo_data(root, tasks=['all_in_one'])``); not in the
default task list (``sr_x2 dn_s25``). demo_data cuts the photos with its ``load_photo``, ``extract_crops`` and
``center_crop`` and passes them in: this module does not import demo_data, which dispatches to it (the package's
imports have no cycles). Layout under ``root/all_in_one``, that of the real data sets (PromptIR/AirNet's 3- and
5-task settings), so the same option files work on both with only the roots changed::

    {train,val}/denoise/*.png                       clean images: the datasets add sigma 15/25/50 noise themselves
    {train,val}/derain/rainy/rain-N.png             Rain100L, <-> {train,val}/derain/gt/norain-N.png (N = 1, 2, ...)
    train/dehaze/synthetic/part1/NNNN_A_beta.jpg    RESIDE OTS (JPEG q95), <-> train/dehaze/original/NNNN.jpg
    val/dehaze/hazy/NNNN_A_beta.png                 SOTS outdoor, <-> val/dehaze/gt/NNNN.png
    {train,val}/deblur/blur/X.png                   GoPro, <-> {train,val}/deblur/sharp/X.png (X: the source's name)
    {train,val}/lowlight/low/X.png                  LOL, <-> {train,val}/lowlight/high/X.png
    manifest.json                                   recipes, every image's parameters, counts, seed, versions

Training: per task its own seeded draw of 40 of the demo's 128x128 training sub-images (dehaze: 10 GT x 4 (A, beta)
variants = 40 hazy images). Validation: chelsea and coffee (192x192 centre crops), one LQ per GT, for every task.
No lmdbs are written (the real data sets are folders).
"""
import cv2
import json
import numpy as np
import os
import os.path as osp
import shutil
import zlib

TASK = 'all_in_one'
AIO_TASKS = ('denoise', 'derain', 'dehaze', 'deblur', 'lowlight')
N_TRAIN = 40  # training LQ images per task (denoise: clean images)
HAZE_VARIANTS = 4  # hazy training images per dehaze GT (OTS has 35), so N_TRAIN // HAZE_VARIANTS GT sub-images
JPEG_QUALITY = 95
# Ranges of the per-image parameters: [lo, hi] drawn uniformly (integers inclusive), or lists of choices (haze).
# Intensities are on a [0, 1] scale; angles in degrees, counter-clockwise from the x axis.
PARAMS = {
    'derain': {'density': [0.002, 0.006], 'drop': [0.6, 1.0], 'length': [11, 25], 'tilt_deg': [-25, 25],
               'intensity': [0.5, 0.9]},
    'dehaze': {'A': [0.8, 0.85, 0.9, 0.95, 1.0], 'beta': [0.6, 0.8, 1.0, 1.2, 1.6, 2.0],
               'depth': {'vertical': 0.6, 'luminance': 0.4, 'blur_sigma': 'max(h, w) / 8'}},
    'deblur': {'length': [7, 17], 'angle_deg': [0, 180]},
    'lowlight': {'gamma': [1.5, 2.5], 'k': [0.1, 0.3], 'noise_sigma': [0.004, 0.012]},
}
RECIPES = {
    'denoise': 'clean images only; the training dataset adds Gaussian noise on the fly, the test dataset seeded '
               'noise of sigma 15/25/50',
    'derain': 'drops: pixels with probability `density` get brightness U(drop); streaks = filter2D(drops, line kernel '
              'of `length` px at 90 + `tilt_deg` deg scaled to peak 1), clipped to 1; '
              'rainy = clip(GT + intensity * streaks) on every channel',
    'dehaze': 'I = J t + A (1 - t), t = exp(-beta d); depth proxy d = minmax(0.6 * vertical ramp (1 at the top row, '
              '0 at the bottom) + 0.4 * Gaussian-blurred luminance (sigma max(h, w) / 8)); train: 4 distinct (A, beta) '
              'per GT, GT and hazy written as JPEG q95; val: 1 per GT, PNG',
    'deblur': 'blur = filter2D(GT, normalised line kernel (line_kernel) of `length` px at `angle_deg`, BORDER_REFLECT)',
    'lowlight': 'low = clip(GT ** gamma * k + N(0, noise_sigma)) on [0, 1], then uint8',
}
ENTRIES = {'manifest.json', 'train', 'val'}
_SPLITS = ('train', 'val')


def _to_uint8(x):
    return np.clip(np.round(x * 255.), 0, 255).astype(np.uint8)


def _uniform(rng, lo_hi, digits):
    return round(float(rng.uniform(*lo_hi)), digits)


def line_kernel(length, angle_deg):
    """Odd square kernel holding a thin line of ``length`` - 1 px through its centre at ``angle_deg`` (counter-clockwise
    from the x axis, y pointing down as in images), drawn by bilinear splatting of 4 samples per px, summing to 1."""
    k = int(length) // 2 * 2 + 1
    c, r, a = (k - 1) / 2, (length - 1) / 2, np.deg2rad(angle_deg)
    t = np.linspace(-r, r, int(round(4 * (length - 1))) + 1)  # samples 1/4 px apart
    x, y = c + t * np.cos(a), c - t * np.sin(a)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    ker = np.zeros((k + 1, k + 1))  # one spare row and column for zero weights beyond the border
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(ker, (y0 + dy, x0 + dx), wy * wx)
    ker = ker[:k, :k].astype(np.float32)
    return ker / ker.sum()


def add_rain(img, rng):
    """Rain100L-like light rain on a uint8 image (see ``RECIPES['derain']``). Returns (rainy uint8, parameters)."""
    p = PARAMS['derain']
    prm = {'density': _uniform(rng, p['density'], 4), 'length': int(rng.integers(p['length'][0], p['length'][1] + 1)),
           'tilt_deg': _uniform(rng, p['tilt_deg'], 1), 'intensity': _uniform(rng, p['intensity'], 3)}
    h, w = img.shape[:2]
    drops = (rng.random((h, w)) < prm['density']) * rng.uniform(*p['drop'], (h, w))
    ker = line_kernel(prm['length'], 90 + prm['tilt_deg'])
    streaks = cv2.filter2D(drops.astype(np.float32), -1, ker / ker.max(), borderType=cv2.BORDER_CONSTANT)
    return _to_uint8(img / 255. + prm['intensity'] * np.clip(streaks, 0, 1)[..., None]), prm


def depth_proxy(img):
    """Depth proxy in [0, 1] (1 = far) of an RGB uint8 image: min-max scaled 0.6 x a vertical ramp (1 at the top
    row, 0 at the bottom) + 0.4 x the luminance blurred with sigma max(h, w) / 8 (bright areas such as sky read far)."""
    h, w = img.shape[:2]
    lum = img.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]) / 255.
    d = 0.6 * np.linspace(1., 0., h, dtype=np.float32)[:, None] + 0.4 * cv2.GaussianBlur(lum, (0, 0), max(h, w) / 8)
    return (d - d.min()) / max(float(d.max() - d.min()), 1e-6)


def add_haze(img, A, beta):
    """Atmospheric scattering model I = J t + A (1 - t), t = exp(-beta d), d = ``depth_proxy(J)``; uint8 in and out."""
    t = np.exp(-beta * depth_proxy(img))[..., None]
    return _to_uint8(img / 255. * t + A * (1. - t))


def motion_blur(img, rng):
    """Linear motion blur of random length and angle (``RECIPES['deblur']``). Returns (blurred uint8, parameters)."""
    p = PARAMS['deblur']
    prm = {'length': int(rng.integers(p['length'][0], p['length'][1] + 1)),
           'angle_deg': _uniform(rng, p['angle_deg'], 1)}
    ker = line_kernel(prm['length'], prm['angle_deg'])
    return _to_uint8(cv2.filter2D(img.astype(np.float32) / 255., -1, ker, borderType=cv2.BORDER_REFLECT)), prm


def darken(img, rng):
    """LOL-like low light: gamma darkening, scaling and mild Gaussian noise. Returns (low uint8, parameters)."""
    p = PARAMS['lowlight']
    prm = {'gamma': _uniform(rng, p['gamma'], 3), 'k': _uniform(rng, p['k'], 3),
           'noise_sigma': _uniform(rng, p['noise_sigma'], 4)}
    x = img.astype(np.float64) / 255.
    return _to_uint8(x ** prm['gamma'] * prm['k'] + rng.normal(0., prm['noise_sigma'], x.shape)), prm


def _dirs(split, task):
    """(LQ folder or None, GT folder) of ``task`` in ``split``, relative to ``root/all_in_one``."""
    base = f'{split}/{task}'
    if task == 'denoise':
        return None, base
    if task == 'dehaze':
        return (f'{base}/synthetic/part1', f'{base}/original') if split == 'train' else (f'{base}/hazy', f'{base}/gt')
    return {'derain': (f'{base}/rainy', f'{base}/gt'), 'deblur': (f'{base}/blur', f'{base}/sharp'),
            'lowlight': (f'{base}/low', f'{base}/high')}[task]


def paths(task_dir):
    """``root``, ``manifest`` and the folders ``{split}_{task}_{lq,gt}`` (denoise: GT only) under ``task_dir``."""
    p = {'root': task_dir, 'manifest': osp.join(task_dir, 'manifest.json')}
    for split in _SPLITS:
        for task in AIO_TASKS:
            lq, gt = _dirs(split, task)
            p[f'{split}_{task}_gt'] = osp.join(task_dir, gt)
            if lq:
                p[f'{split}_{task}_lq'] = osp.join(task_dir, lq)
    return p


def select(pool, task, seed):
    """The training (name, image) items of ``task``: a seeded draw from ``pool`` without replacement, in pool order."""
    n = N_TRAIN // HAZE_VARIANTS if task == 'dehaze' else N_TRAIN
    rng = np.random.default_rng([seed, zlib.crc32(f'select/{task}'.encode())])
    return [pool[i] for i in sorted(rng.choice(len(pool), min(n, len(pool)), replace=False))]


def make_pairs(task, split, items, seed):
    """Synthesise one task's split from (name, RGB uint8) items.

    Returns:
        list[tuple[dict, dict]]: Per source image, its manifest entry (``source``, ``gt``, ``lq`` and the drawn
        parameters) and ``{path relative to root/all_in_one: RGB uint8 image}``.
    """
    lq_dir, gt_dir = _dirs(split, task)
    ext = 'jpg' if (task, split) == ('dehaze', 'train') else 'png'
    out = []
    for i, (name, gt) in enumerate(items, 1):
        gt = np.ascontiguousarray(gt)
        rng = np.random.default_rng([seed, zlib.crc32(f'{task}/{split}/{name}'.encode())])
        stem = {'derain': f'{i}', 'dehaze': f'{i:04d}'}.get(task, name)
        entry = {'source': name, 'gt': f'{gt_dir}/{"norain-" if task == "derain" else ""}{stem}.{ext}'}
        files = {entry['gt']: gt}
        if task == 'dehaze':
            a_s, b_s = PARAMS['dehaze']['A'], PARAMS['dehaze']['beta']
            picks = rng.choice(len(a_s) * len(b_s), HAZE_VARIANTS if split == 'train' else 1, replace=False)
            entry['A_beta'] = [[a_s[c // len(b_s)], b_s[c % len(b_s)]] for c in sorted(picks)]
            entry['lq'] = [f'{lq_dir}/{stem}_{a:g}_{b:g}.{ext}' for a, b in entry['A_beta']]
            files.update({f: add_haze(gt, a, b) for f, (a, b) in zip(entry['lq'], entry['A_beta'])})
        elif task != 'denoise':
            lq, prm = {'derain': add_rain, 'deblur': motion_blur, 'lowlight': darken}[task](gt, rng)
            entry['lq'] = f'{lq_dir}/{"rain-" if task == "derain" else ""}{stem}.{ext}'
            entry.update(prm)
            files[entry['lq']] = lq
        out.append((entry, files))
    return out


def _entry_files(entry):
    lq = entry.get('lq', [])
    return [entry['gt']] + ([lq] if isinstance(lq, str) else lq)


def _config(config):
    """demo_data's settings plus this module's, as JSON reads them back."""
    own = {'n_train': N_TRAIN, 'haze_variants': HAZE_VARIANTS, 'jpeg_quality': JPEG_QUALITY, 'params': PARAMS}
    return json.loads(json.dumps({**config, TASK: own}))


def _image_files(task_dir):
    found = set()
    for split in _SPLITS:
        for folder, _, files in os.walk(osp.join(task_dir, split)):
            found |= {osp.relpath(osp.join(folder, f), task_dir).replace(os.sep, '/') for f in files}
    return found


def why_rebuild(task_dir, config):
    """None if ``task_dir`` holds a complete build made with demo_data's ``config``, else the reason to rebuild."""
    try:
        with open(osp.join(task_dir, 'manifest.json')) as f:
            man = json.load(f)
    except (OSError, ValueError):
        return 'no readable manifest.json'
    if man.get('config') != _config(config):
        return 'it was built with other settings'
    try:
        want = {f for t in AIO_TASKS for s in _SPLITS for e in man['tasks'][t]['images'][s] for f in _entry_files(e)}
    except (KeyError, TypeError):
        return 'manifest.json is incomplete'
    return None if _image_files(task_dir) == want else 'image files are missing or unexpected'


def _write(path, rgb):
    os.makedirs(osp.dirname(path), exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.endswith('.jpg') else []
    if not cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]), params):  # BGR on disk, as BasicSR reads it
        raise OSError(f'could not write {path!r}')


def build(task_dir, photos, config, seed=0):
    """Write the all-in-one data into a temporary folder next to ``task_dir``, then move it in place.

    Args:
        task_dir (str): Output folder (``root/all_in_one``); replaced if it exists.
        photos (dict): demo_data's ``{'train': [(name, RGB sub-image)], 'val': [(name, RGB centre crop)]}``.
        config (dict): demo_data's settings (photos, crops, seed), recorded in the manifest.
        seed (int): Seed of the crop draws and of every degradation.

    Returns:
        int: Number of image files written.
    """
    tmp = osp.join(osp.dirname(task_dir), f'.{TASK}.tmp-{os.getpid()}')
    shutil.rmtree(tmp, ignore_errors=True)
    tasks, n_files = {}, 0
    try:
        for task in AIO_TASKS:
            folders = {s: dict(zip(('lq', 'gt'), _dirs(s, task))) for s in _SPLITS}
            tasks[task] = {'recipe': RECIPES[task], 'params': PARAMS.get(task, {}), 'folders': folders, 'counts': {},
                           'images': {}}
            for split in _SPLITS:
                items = select(photos['train'], task, seed) if split == 'train' else photos['val']
                pairs = make_pairs(task, split, items, seed)
                for _, files in pairs:
                    for rel, img in files.items():
                        _write(osp.join(tmp, rel), img)
                entries = [e for e, _ in pairs]
                tasks[task]['images'][split] = entries
                n_lq = sum(len(_entry_files(e)) - 1 for e in entries)
                tasks[task]['counts'][split] = {'gt': len(entries), 'lq': n_lq}
                n_files += sum(len(f) for _, f in pairs)
        import skimage
        manifest = {
            'task': TASK, 'seed': seed, 'config': _config(config), 'tasks': tasks,
            'train_shape': list(photos['train'][0][1].shape) if photos['train'] else None,
            'val_images': {n: list(img.shape) for n, img in photos['val']},
            'rng': 'numpy default_rng([seed, zlib.crc32(f"{task}/{split}/{source}")]) per image; crop draws '
                   'default_rng([seed, zlib.crc32(f"select/{task}")])',
            'source': 'skimage.data photos cut by demo_data (RGB, saved as BGR)',
            'versions': {'scikit-image': skimage.__version__, 'numpy': np.__version__, 'opencv': cv2.__version__},
        }
        with open(osp.join(tmp, 'manifest.json'), 'w') as f:  # written last: its presence marks a complete build
            json.dump(manifest, f, indent=1)
        if osp.exists(task_dir):
            shutil.rmtree(task_dir)
        os.replace(tmp, task_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return n_files
