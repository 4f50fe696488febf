"""Does AllInOneDataset keep a NAFNet training step fed? Loader samples/s against the step's samples/s.

    python -m benchmarks.loader [--batches 30] [--out benchmarks/out/loader.json]

On the all-in-one demo data (``datasets/demo/all_in_one``, built if missing): the deblur and low-light tasks read
three ways through BasicSR's own ``build_dataloader`` (batch 8, patch 64, shuffled): as image folders
(``kind: deblur/lowlight``), as lmdbs made with ``mclir-make-lmdb`` (``kind: paired``), each with 0 and 2 workers;
plus the 3-task mix with on-the-fly noise. The step: SRModel + NAFNet (the demo's tiny one and a width-32 one),
L1, AdamW, same batch and patch. A ratio loader/step above 1 means the loader is not the bottleneck.
"""
import argparse
import os
import os.path as osp
import platform
import tempfile
import time

import mclir_basicsr  # noqa: E402,F401  (must precede basicsr)
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.models import build_model

from mclir_basicsr.data.demo_data import build_demo_data  # noqa: E402
from mclir_basicsr.data.lmdb_tools import folders_to_lmdb  # noqa: E402

from benchmarks.common import OUT_DIR, ROOT, write_json

BATCH, PATCH = 8, 64
NETS = {'nafnet_tiny': dict(width=16, middle_blk_num=1, enc_blk_nums=[1, 1, 1], dec_blk_nums=[1, 1, 1]),
        'nafnet_w32': dict(width=32, middle_blk_num=2, enc_blk_nums=[1, 1, 2, 4], dec_blk_nums=[1, 1, 1, 1])}


def dataset_opt(tasks, workers):
    return {'name': 'bench', 'type': 'AllInOneDataset', 'phase': 'train', 'scale': 1, 'gt_size': PATCH,
            'use_hflip': True, 'use_rot': True, 'io_backend': {'type': 'disk'}, 'tasks': tasks,
            'num_worker_per_gpu': workers, 'batch_size_per_gpu': BATCH, 'dataset_enlarge_ratio': 50,
            'use_shuffle': True}


def loader_rate(tasks, workers, batches):
    opt = dataset_opt(tasks, workers)
    dataset = build_dataset(opt)
    sampler = EnlargedSampler(dataset, 1, 0, opt['dataset_enlarge_ratio'])  # as BasicSR's train.py builds it
    loader = build_dataloader(dataset, opt, num_gpu=0, dist=False, sampler=sampler, seed=0)
    it = iter(loader)
    next(it)  # worker start-up and first reads are not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * BATCH / (time.perf_counter() - start)


def step_rate(net, steps):
    opt = {'name': 'bench', 'model_type': 'SRModel', 'scale': 1, 'num_gpu': 0, 'is_train': True, 'dist': False,
           'network_g': dict(type='NAFNet', img_channel=3, **NETS[net]),
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
           'train': {'ema_decay': 0, 'optim_g': {'type': 'AdamW', 'lr': 1e-3}, 'total_iter': 10,
                     'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
                     'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}}}
    model = build_model(opt)
    data = {'lq': torch.rand(BATCH, 3, PATCH, PATCH), 'gt': torch.rand(BATCH, 3, PATCH, PATCH)}
    model.feed_data(data)
    model.optimize_parameters(1)
    start = time.perf_counter()
    for it in range(steps):
        model.feed_data(data)
        model.optimize_parameters(it + 2)
    return steps * BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batches', type=int, default=30)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--data-root', default=osp.join(ROOT, 'datasets', 'demo'))
    parser.add_argument('--out', default=osp.join(OUT_DIR, 'loader.json'))
    args = parser.parse_args()
    build_demo_data(root=args.data_root, tasks=('all_in_one', ))
    train = osp.join(args.data_root, 'all_in_one', 'train')
    with tempfile.TemporaryDirectory() as tmp:
        folders, lmdbs = [], []
        for kind, (lq, gt) in (('deblur', ('blur', 'sharp')), ('lowlight', ('low', 'high'))):
            folders.append({'kind': kind, 'dataroot': osp.join(train, kind)})
            gt_db, lq_db = osp.join(tmp, f'{kind}_gt.lmdb'), osp.join(tmp, f'{kind}_lq.lmdb')
            folders_to_lmdb(osp.join(train, kind, gt), osp.join(train, kind, lq), gt_db, lq_db, quiet=True)
            lmdbs.append({'kind': 'paired', 'name': kind, 'dataroot_gt': gt_db, 'dataroot_lq': lq_db,
                          'io_backend': {'type': 'lmdb'}})
        mix = [{'kind': 'denoise', 'dataroot_gt': osp.join(train, 'denoise'), 'sigma': [15, 25, 50]},
               {'kind': 'derain', 'dataroot': osp.join(train, 'derain')},
               {'kind': 'dehaze', 'dataroot': osp.join(train, 'dehaze')}]
        loaders = {}
        for name, tasks in (('folders', folders), ('lmdb', lmdbs), ('3-task mix (noise on the fly)', mix)):
            for workers in (0, 2):
                loaders[f'{name}, {workers} workers'] = loader_rate(tasks, workers, args.batches)
                print(f'loader {name}, {workers} workers: {loaders[f"{name}, {workers} workers"]:.0f} samples/s')
    steps = {net: step_rate(net, args.steps) for net in NETS}
    for net, rate in steps.items():
        print(f'step {net}: {rate:.1f} samples/s')
    ratios = {f'{lname} / {net}': lrate / srate for lname, lrate in loaders.items() for net, srate in steps.items()}
    print('\nloader/step (> 1: the loader keeps up):')
    for k, v in ratios.items():
        print(f'  {k}: {v:.1f}')
    write_json(args.out, {'machine': {'cpu_count': os.cpu_count(), 'platform': platform.platform(),
                                      'torch': torch.__version__, 'torch_threads': torch.get_num_threads()},
                          'batch': BATCH, 'patch': PATCH, 'loader_samples_per_s': loaders, 'step_samples_per_s': steps,
                          'ratios': ratios}, indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
