"""What the pre-flight data check costs at start-up: 10,000 pairs of 512x512 GT / 256x256 LQ PNGs (x2), as image
folders and as lmdbs.

    python -m benchmarks.preflight_cost [--pairs 10000] [--size 512] [--repeats 3]
                                         [--out benchmarks/results/preflight_cost_cpu.json]

Times :func:`mclir_basicsr.preflight.check_inputs` on one ``PairedImageDataset`` (``datasets.train``, ``gt_size``
128) with ``check_images: true`` (the default: every image's header and end read, lmdb values in place) and
``false`` (headers of up to ``MAX_HEADER_PAIRS`` pairs); for scale, OpenCV decodes a sample of the images in full
(BasicSR's read) and the time is extrapolated to all of them. The data (smooth gradients, PNG compression 1, cheap
to write) is made once and cached under ``benchmarks/out/preflight_cost/`` (git ignores ``benchmarks/out/``).
"warm": best of ``--repeats`` runs with the files in the page cache (a set read at every start); "cold": one run
after the files' pages were dropped from the cache (``posix_fadvise(DONTNEED)``), so every header and end comes
from the disk of this machine. Slower storage (network file systems) pays more per file.
"""
import argparse
import os
import os.path as osp
import platform
import shutil
import statistics
import time

import cv2
import numpy as np

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
from mclir_basicsr import preflight  # noqa: E402
from mclir_basicsr.data.lmdb_tools import folders_to_lmdb  # noqa: E402

from benchmarks.common import BENCH_DIR, OUT_DIR, write_json

SCALE, GT_SIZE, N_DECODE_SAMPLE = 2, 128, 200


def gradient(size, i):
    """A smooth BGR gradient, different for each ``i``: cheap to make and to compress."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a, b = 1 + (i % 7), 1 + (i // 7) % 5
    img = np.stack([(x * a + y) * 127, (y * b + x) * 127, (x + y) * 63 + (i % 97)], -1)
    return np.ascontiguousarray(np.mod(img, 256).astype(np.uint8))


def make_data(root, pairs, size):
    """``root/{gt,lq}`` folders and ``root/{gt,lq}.lmdb``, made once (a ``done`` file marks a complete set)."""
    done = osp.join(root, f'done_{pairs}_{size}')
    gt_dir, lq_dir = osp.join(root, 'gt'), osp.join(root, 'lq')
    gt_db, lq_db = osp.join(root, 'gt.lmdb'), osp.join(root, 'lq.lmdb')
    if osp.isfile(done):
        return gt_dir, lq_dir, gt_db, lq_db, None
    start = time.perf_counter()
    for d in (gt_dir, lq_dir):
        os.makedirs(d, exist_ok=True)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    for i in range(pairs):
        gt = gradient(size, i)
        cv2.imwrite(osp.join(gt_dir, f'{i:05d}.png'), gt, params)
        cv2.imwrite(osp.join(lq_dir, f'{i:05d}.png'), cv2.resize(gt, (size // SCALE, size // SCALE),
                                                                 interpolation=cv2.INTER_AREA), params)
    for db in (gt_db, lq_db):
        if osp.exists(db):  # an earlier run stopped half-way
            shutil.rmtree(db)
    folders_to_lmdb(gt_dir, lq_dir, gt_db, lq_db, quiet=True)
    open(done, 'w').close()
    return gt_dir, lq_dir, gt_db, lq_db, time.perf_counter() - start


def options(gt, lq, backend, check_images):
    ds = {'name': 'bench', 'type': 'PairedImageDataset', 'phase': 'train', 'dataroot_gt': gt, 'dataroot_lq': lq,
          'io_backend': {'type': backend}, 'gt_size': GT_SIZE, 'check_images': check_images}
    return {'name': 'bench', 'scale': SCALE, 'is_train': False, 'datasets': {'train': ds},
            'path': {'pretrain_network_g': None, 'resume_state': None}}


def evict(paths):
    """Drop the files' pages from the page cache (no root needed for one's own files)."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def time_check(opt, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        preflight.check_inputs(opt)
        times.append(time.perf_counter() - start)
    return times


def decode_estimate(folder, names):
    """Seconds to decode every image of ``folder`` with OpenCV, from a sample of ``N_DECODE_SAMPLE``."""
    sample = names[::max(1, len(names) // N_DECODE_SAMPLE)][:N_DECODE_SAMPLE]
    start = time.perf_counter()
    for n in sample:
        cv2.imread(osp.join(folder, n), cv2.IMREAD_UNCHANGED)
    return (time.perf_counter() - start) / len(sample) * len(names)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pairs', type=int, default=10000)
    parser.add_argument('--size', type=int, default=512, help='GT side; LQ is size // 2')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--data', default=osp.join(OUT_DIR, 'preflight_cost'))
    parser.add_argument('--out', default=osp.join(BENCH_DIR, 'results', 'preflight_cost_cpu.json'))
    args = parser.parse_args(argv)
    gt_dir, lq_dir, gt_db, lq_db, made = make_data(args.data, args.pairs, args.size)
    if made is not None:
        print(f'made {args.pairs} pairs and their lmdbs in {made:.0f} s', flush=True)
    images = 2 * args.pairs
    names = sorted(os.listdir(gt_dir))
    files = {'folders': [osp.join(d, n) for d in (gt_dir, lq_dir) for n in names],
             'lmdb': [osp.join(db, 'data.mdb') for db in (gt_db, lq_db)]}
    runs = {}
    for backend, (gt, lq) in (('folders', (gt_dir, lq_dir)), ('lmdb', (gt_db, lq_db))):
        for check in (True, False):
            opt = options(gt, lq, 'disk' if backend == 'folders' else 'lmdb', check)
            evict(files[backend])
            cold = time_check(opt, 1)[0]
            times = time_check(opt, args.repeats)
            best = min(times)
            label = f'{backend}, check_images: {str(check).lower()}'
            runs[label] = {'cold_s': cold, 'cold_images_per_s': images / cold, 'warm_s': times, 'warm_best_s': best,
                           'warm_median_s': statistics.median(times), 'warm_images_per_s': images / best}
            print(f'{label:35s} cold {cold:6.2f} s {images / cold:7.0f} images/s | warm best {best:6.2f} s  median '
                  f'{statistics.median(times):6.2f} s {images / best:7.0f} images/s', flush=True)
    decode_all = decode_estimate(gt_dir, names) + decode_estimate(lq_dir, names)
    print(f'decoding all {images} images with OpenCV (estimated from {N_DECODE_SAMPLE} + {N_DECODE_SAMPLE}): '
          f'{decode_all:.1f} s')
    result = {
        'machine': {'cpu_count': os.cpu_count(), 'platform': platform.platform(), 'python': platform.python_version(),
                    'note': '2-core CPU shared with other work'},
        'data': {'pairs': args.pairs, 'images': images, 'gt': f'{args.size}x{args.size}',
                 'lq': f'{args.size // SCALE}x{args.size // SCALE}', 'format': 'PNG, compression 1, smooth gradients',
                 'gt_folder_bytes': sum(osp.getsize(osp.join(gt_dir, n)) for n in names),
                 'lmdb_bytes': sum(osp.getsize(osp.join(db, 'data.mdb')) for db in (gt_db, lq_db))},
        'check': {'gt_size': GT_SIZE, 'scale': SCALE, 'max_header_pairs': preflight.MAX_HEADER_PAIRS,
                  'n_decode': preflight.N_DECODE, 'repeats': args.repeats},
        'runs': runs,
        'decode_every_image_estimate_s': decode_all,
    }
    write_json(args.out, result, indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
