"""What ``mclir-restore`` costs: peak memory whole vs tiled on a 4000x3000 image, its speed against BasicSR's own
test pipeline on the same images and weights, and the cost of tiling at two overlaps.

    python -m benchmarks.restore [--rounds 3] [--threads 2] [--quick]

1. Peak RSS (``ru_maxrss`` of a process that restores one 4000x3000 photo and exits), whole image vs ``--tile 512
   --tile-overlap 32``, with a small denoising EDSR (16 features, 4 blocks; scale 1), each in its own process.
2. Megapixels/s of whole commands (start-up, model, every image read, restored, written) for EDSR (x2, 64/16),
   NAFNet (width 32, SIDD's layout) and SwinIR-light (x2): ``mclir-test`` (BasicSR's test pipeline, a
   ``SingleImageDataset`` without metrics, images saved) against ``mclir-restore`` on the same 4 photos and weights,
   alternating, ``--rounds`` each; the ratio is BasicSR's time over ours (>= 1: ours is as fast or faster).
3. Tiling overhead: in one process, the EDSR x2 on a 768x768 photo whole vs ``--tile 256`` at overlaps 16 and 64
   (medians of ``--rounds``), as time ratios.

Writes ``benchmarks/out/restore_cpu.json`` (every sample).
"""
import argparse
import os
import os.path as osp
import resource
import shutil
import statistics
import subprocess
import sys
import time

from benchmarks.common import OUT_DIR, ROOT, command_line, cpu_model, entry_env, log, write_json

NETWORKS = {
    'EDSR x2': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16, 'upscale': 2,
                'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]},
    'NAFNet width 32': {'type': 'NAFNet', 'img_channel': 3, 'width': 32, 'middle_blk_num': 12,
                        'enc_blk_nums': [2, 2, 4, 8], 'dec_blk_nums': [2, 2, 2, 2]},
    'SwinIR-light x2': {'type': 'SwinIR', 'upscale': 2, 'in_chans': 3, 'img_size': 64, 'window_size': 8,
                        'img_range': 1., 'depths': [6, 6, 6, 6], 'embed_dim': 60, 'num_heads': [6, 6, 6, 6],
                        'mlp_ratio': 2, 'upsampler': 'pixelshuffledirect', 'resi_connection': '1conv'},
}
SMALL_DENOISER = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 4, 'upscale': 1}


def _photo(height, width, seed=0):
    """A natural photo (scikit-image's) resized to ``height`` x ``width``, BGR uint8."""
    import cv2
    from skimage import data
    photo = [data.astronaut, data.coffee, data.chelsea, data.rocket][seed % 4]()[:, :, ::-1]
    return cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)


def _save_weights(net_opt, path):
    import mclir_basicsr  # noqa: F401  (registers NAFNet; fixes basicsr's imports)
    import torch
    from mclir_basicsr.inference.restorer import build_network
    torch.save({'params': build_network(net_opt, net_opt['type']).state_dict()}, path)


def _restore_args(net_opt, weights, photos, out, extra=()):
    import json
    args = {k: v for k, v in net_opt.items() if k != 'type'}
    return ['-i', photos, '-o', out, '--network', net_opt['type'], '--network-args', json.dumps(args), '--weights',
            weights, '--quiet'] + list(extra)


def _run(module, args, cwd, threads):
    start = time.perf_counter()
    run = subprocess.run([sys.executable, '-m', module] + args, cwd=cwd, env=entry_env(threads), capture_output=True,
                         text=True)
    took = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f'{module} failed: {run.stderr[-2000:]}')
    return took, run


# ------------------------------------------------------------------------------------------------------- 1. memory
def memory_child(args):
    """In its own process: restore one photo, print the peak RSS in MiB."""
    from mclir_basicsr.inference import load_restorer, restore_images
    restorer = load_restorer(network='EDSR', network_args={k: v for k, v in SMALL_DENOISER.items() if k != 'type'},
                             weights=args.weights, tile=args.tile, overlap=32)
    report = restore_images([args.photo], args.child_out, restorer)
    assert report.ok
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def memory(work, threads, size):
    import cv2
    photo = osp.join(work, 'big.png')
    cv2.imwrite(photo, _photo(*size))
    weights = osp.join(work, 'small_denoiser.pth')
    _save_weights(SMALL_DENOISER, weights)
    result = {}
    for label, tile in (('whole', 0), ('tile 512, overlap 32', 512)):
        child = ['--memory-child', '--photo', photo, '--weights', weights, '--tile', str(tile), '--child-out',
                 osp.join(work, f'mem_{tile}')]
        took, run = _run('benchmarks.restore', child, ROOT, threads)
        result[label] = {'peak_rss_mib': float(run.stdout.strip().splitlines()[-1]), 'seconds': took}
        log(f'  {label}: peak RSS {result[label]["peak_rss_mib"]:.0f} MiB, {took:.1f} s')
    return result


# -------------------------------------------------------------------------------------- 2. against BasicSR's test
def _test_file(net_opt, weights, photos, name):
    return {'name': name, 'model_type': 'SRModel', 'scale': net_opt.get('upscale', 1), 'num_gpu': 0,
            'manual_seed': 0,
            'datasets': {'test_1': {'name': 'photos', 'type': 'SingleImageDataset', 'dataroot_lq': photos,
                                    'io_backend': {'type': 'disk'}}},
            'network_g': net_opt, 'path': {'pretrain_network_g': weights, 'param_key_g': 'params',
                                           'strict_load_g': True},
            'val': {'save_img': True, 'suffix': None}}


def speed(work, threads, rounds, count, size):
    import cv2
    import yaml
    photos = osp.join(work, 'photos')
    os.makedirs(photos, exist_ok=True)
    for i in range(count):
        cv2.imwrite(osp.join(photos, f'{i:02d}.png'), _photo(*size, seed=i))
    megapixels = count * size[0] * size[1] / 1e6
    result = {}
    for label, net_opt in NETWORKS.items():
        slug = label.split()[0].lower()
        weights = osp.join(work, f'{slug}.pth')
        _save_weights(net_opt, weights)
        test_file = osp.join(work, f'test_{slug}.yml')
        with open(test_file, 'w') as f:
            yaml.safe_dump(_test_file(net_opt, weights, photos, f'bench_{slug}'), f)
        samples = {'basicsr_test': [], 'mclir_restore': []}
        for _ in range(rounds):
            shutil.rmtree(osp.join(work, 'results'), ignore_errors=True)
            samples['basicsr_test'].append(_run('mclir_basicsr.test', ['-opt', test_file], work, threads)[0])
            out = osp.join(work, f'restored_{slug}')
            shutil.rmtree(out, ignore_errors=True)
            samples['mclir_restore'].append(
                _run('mclir_basicsr.cli.restore', _restore_args(net_opt, weights, photos, out), work, threads)[0])
        theirs, ours = (statistics.median(samples[k]) for k in ('basicsr_test', 'mclir_restore'))
        result[label] = {'samples_s': samples, 'megapixels': megapixels, 'basicsr_mp_per_s': megapixels / theirs,
                         'ours_mp_per_s': megapixels / ours, 'ratio_basicsr_over_ours': theirs / ours}
        log(f'  {label}: BasicSR test {megapixels / theirs:.3f} MP/s, mclir-restore {megapixels / ours:.3f} MP/s, '
            f'ratio {theirs / ours:.3f}')
    return result


# ------------------------------------------------------------------------------------------------ 3. tiling cost
def tiling(work, rounds, size):
    import torch
    from mclir_basicsr.inference.tiling import probe_geometry, restore_tiled, run_padded
    from mclir_basicsr.inference.restorer import build_network
    net = build_network(NETWORKS['EDSR x2'], 'EDSR').eval()
    probe_geometry(net, torch.device('cpu'))
    image = torch.from_numpy(_photo(*size)[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    arms = {'whole': lambda: run_padded(net, image, 1),
            'tile 256, overlap 16': lambda: restore_tiled(net, image, 1, 2, 256, 16),
            'tile 256, overlap 64': lambda: restore_tiled(net, image, 1, 2, 256, 64)}
    samples = {k: [] for k in arms}
    with torch.no_grad():
        for _ in range(rounds):
            for label, arm in arms.items():
                start = time.perf_counter()
                arm()
                samples[label].append(time.perf_counter() - start)
    whole = statistics.median(samples['whole'])
    result = {k: {'samples_s': v, 'ratio_to_whole': statistics.median(v) / whole} for k, v in samples.items()}
    for label in arms:
        log(f'  {label}: {statistics.median(samples[label]):.2f} s, x{result[label]["ratio_to_whole"]:.3f}')
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--quick', action='store_true', help='small sizes, one round (a smoke test)')
    p.add_argument('--out', default=osp.join(OUT_DIR, 'restore_cpu.json'))
    p.add_argument('--memory-child', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--photo', help=argparse.SUPPRESS)
    p.add_argument('--weights', help=argparse.SUPPRESS)
    p.add_argument('--tile', type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument('--child-out', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        return memory_child(args)
    rounds = 1 if args.quick else args.rounds
    work = osp.join(OUT_DIR, 'restore_work')
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    import torch
    torch.set_num_threads(args.threads)
    log(f'1. peak memory, one {"1000x750" if args.quick else "4000x3000"} photo:')
    mem = memory(work, args.threads, (750, 1000) if args.quick else (3000, 4000))
    log('2. whole commands on the same photos and weights:')
    spd = speed(work, args.threads, rounds, 2 if args.quick else 4, (64, 64) if args.quick else (192, 192))
    log('3. tiling cost in process:')
    til = tiling(work, rounds, (256, 256) if args.quick else (768, 768))
    write_json(args.out, {'command': command_line('restore', argv), 'machine': cpu_model(), 'threads': args.threads,
                          'torch': torch.__version__, 'memory': mem, 'speed': spd, 'tiling': til}, indent=1)
    log(f'written: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
