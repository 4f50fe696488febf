"""One command per row of the MCLIR paper: train the row's network with L1 and with SPN on the public data, test both
on the row's test set, print the table beside the paper's numbers.

    python -m benchmarks.reproduce --row ffanet-sots-indoor [--data-root datasets] [--iters N] [--gpus G]
    python -m benchmarks.reproduce --row edsr-urban100 | swinir-light-manga109-x4
    python -m benchmarks.reproduce --prepare-reside ITS_DIR SOTS_INDOOR_DIR [--data-root datasets]

The runs are the option files of ``options/train/paper/`` and ``options/test/paper/`` as they are, with their data
folders moved under ``--data-root`` (``datasets/X`` -> ``<data-root>/X``). "SPN" is the file itself (the authors'
four history copies, refreshes, decays and lambda; ``--spn-weight auto`` for ours); "L1" is the same file without
``history`` and ``spn_opt`` on the model class underneath (SRModel, SwinIRModel). Both train from scratch on the
same schedule and seed, as the paper retrains. Training runs with ``--auto_resume``: run the same command again
after an interruption and it continues. ``--gpus G`` (G > 1) runs it under torchrun on G GPUs.

Where to get the data and how to lay it out: docs/reproduce.md. ``--tiny`` shrinks network, patches and batch to a
CPU smoke run (the e2e tier runs every row so on generated data); its numbers mean nothing.

Writes ``<workdir>/<row>.json`` (default workdir benchmarks/out/reproduce).
"""
import argparse
import copy
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import yaml

from benchmarks.common import OUT_DIR, ROOT, entry_env, log

PAPER = 'Wu et al., AAAI 2024, Table 1'
ROWS = {
    'ffanet-sots-indoor': dict(
        train='options/train/paper/train_MCLIR_FFANet_Dehaze_ITS.yml', test='options/test/paper/'
        'test_MCLIR_FFANet_Dehaze_SOTS.yml', test_set='SOTS_indoor', paper=(36.39, 39.80), network='FFA-Net',
        tiny=dict(network={'num_feat': 8, 'num_groups': 3, 'num_blocks': 1}, gt_size=32)),
    'edsr-urban100': dict(
        train='options/train/paper/train_MCLIR_EDSR_light_SRx4_DF2K.yml', test='options/test/paper/'
        'test_MCLIR_EDSR_light_SRx4.yml', test_set='Urban100', paper=(26.04, 26.12), network='EDSR-light x4',
        tiny=dict(network={'num_feat': 8, 'num_block': 1}, gt_size=32)),
    'swinir-light-manga109-x4': dict(
        train='options/train/paper/train_MCLIR_SwinIR_light_SRx4_DF2K.yml', test='options/test/paper/'
        'test_MCLIR_SwinIR_light_SRx4.yml', test_set='Manga109', paper=(30.92, 31.04), network='SwinIR-light x4',
        tiny=dict(network={'img_size': 8, 'window_size': 4, 'depths': [1], 'num_heads': [2], 'embed_dim': 12},
                  gt_size=32)),
}
ARMS = ('l1', 'spn')
ARM_LABELS = {'l1': 'L1', 'spn': 'L1 + SPN'}
# the model class an SPN class runs on when history and spn_opt are taken away
PLAIN_MODEL = {'MCLIRModel': 'SRModel', 'MCLIRSwinIRModel': 'SwinIRModel'}
WORKDIR = osp.join(OUT_DIR, 'reproduce')


def load(path):
    with open(osp.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def move_data(opt, data_root):
    """Every ``dataroot_*`` of the file's ``datasets/...`` layout moved under ``data_root``."""
    for ds in opt['datasets'].values():
        for key in ('dataroot_gt', 'dataroot_lq'):
            path = ds.get(key)
            if isinstance(path, str) and path.startswith('datasets/'):
                ds[key] = osp.join(osp.abspath(data_root), path[len('datasets/'):])
    return opt


def set_length(train, iters):
    """``total_iter`` = ``iters``, the schedule's milestones or periods scaled with it."""
    ratio = iters / train['total_iter']
    train['total_iter'] = iters
    sched = train['scheduler']
    if 'milestones' in sched:
        sched['milestones'] = [max(1, round(m * ratio)) for m in sched['milestones']]
    if 'periods' in sched:
        periods = [max(1, round(p * ratio)) for p in sched['periods']]
        periods[-1] += iters - sum(periods)  # CosineAnnealingRestartLR: the periods cover the run
        sched['periods'] = periods


def make_tiny(opt, cfg, iters):
    """A CPU smoke run: the row's tiny network, small patches and batch, no workers, validation at the end."""
    opt['num_gpu'] = 0
    opt['network_g'].update(cfg['tiny']['network'])
    train_set = opt['datasets']['train']
    train_set.update(gt_size=cfg['tiny']['gt_size'], batch_size_per_gpu=2, num_worker_per_gpu=0, prefetch_mode=None,
                     pin_memory=False, dataset_enlarge_ratio=1)
    opt['val']['val_freq'] = iters
    opt['logger'].update(print_freq=1, save_checkpoint_freq=iters)


def train_options(row, arm, data_root, iters=None, tiny=False, spn_weight=None, seed=None, vgg_weights=None):
    """The training option dict of one arm of ``row``."""
    cfg = ROWS[row]
    opt = move_data(load(cfg['train']), data_root)
    opt['name'] = f'reproduce_{row}_{arm}' + (f'_seed{seed}' if seed is not None else '')
    if seed is not None:
        opt['manual_seed'] = seed
    train = opt['train']
    if arm == 'l1':
        opt['model_type'] = PLAIN_MODEL[opt['model_type']]
        train.pop('history')
        train.pop('spn_opt')
    else:
        if spn_weight is not None:
            train['spn_opt']['loss_weight'] = spn_weight
        if vgg_weights:
            train['spn_opt']['vgg_weights'] = osp.abspath(vgg_weights)
    if iters:
        set_length(train, iters)
    if tiny:
        if arm == 'spn' and not vgg_weights:
            train['spn_opt']['vgg_weights'] = 'random'  # a smoke run needs no ImageNet file
        make_tiny(opt, cfg, train['total_iter'])
    return opt


def test_options(row, trained, workdir, data_root):
    """The row's test option file on its one test set, for the network ``trained`` (a training option dict)."""
    cfg = ROWS[row]
    opt = move_data(load(cfg['test']), data_root)
    opt['name'] = trained['name'] + '_test'
    opt['num_gpu'] = trained['num_gpu']
    opt['network_g'] = copy.deepcopy(trained['network_g'])
    opt['datasets'] = {key: ds for key, ds in opt['datasets'].items() if ds['name'] == cfg['test_set']}
    assert len(opt['datasets']) == 1, f'{cfg["test"]} has no test set named {cfg["test_set"]}'
    opt['path']['pretrain_network_g'] = osp.join(workdir, 'experiments', trained['name'], 'models',
                                                 'net_g_latest.pth')
    opt['val']['save_img'] = False
    return opt


def _write(opt, workdir):
    path = osp.join(workdir, 'options', opt['name'] + '.yml')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def _entry(module, opt_path, gpus):
    if gpus > 1:
        return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={gpus}', '-m', module, '-opt',
                opt_path, '--launcher', 'pytorch']
    return [sys.executable, '-m', module, '-opt', opt_path]


def run(cmd, workdir, log_name, threads):
    log_path = osp.join(workdir, 'logs', log_name)
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    with open(log_path, 'w') as out:
        proc = subprocess.run(cmd, cwd=workdir, env=entry_env(threads), stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = ''.join(f.readlines()[-25:])
        sys.exit(f'reproduce: {" ".join(cmd[1:4])} failed (exit {proc.returncode}); log {log_path}:\n{tail}')


def run_arm(row, arm, args):
    opt = train_options(row, arm, args.data_root, args.iters, args.tiny, args.spn_weight, args.seed,
                        args.vgg_weights)
    log(f'[{row}] {ARM_LABELS[arm]}: training {opt["name"]} ({opt["train"]["total_iter"]} iterations)')
    run(_entry('mclir_basicsr.train', _write(opt, args.workdir), args.gpus) + ['--auto_resume'], args.workdir,
        f'train_{opt["name"]}.log', args.threads)
    test = test_options(row, opt, args.workdir, args.data_root)
    log(f'[{row}] {ARM_LABELS[arm]}: testing on {ROWS[row]["test_set"]}')
    shutil.rmtree(osp.join(args.workdir, 'results', test['name']), ignore_errors=True)
    run(_entry('mclir_basicsr.test', _write(test, args.workdir), 1), args.workdir, f'test_{opt["name"]}.log',
        args.threads)
    with open(osp.join(args.workdir, 'results', test['name'], 'metrics.json')) as f:
        return json.load(f)[ROWS[row]['test_set']]


def table(row, results):
    cfg = ROWS[row]
    lines = [f'| row | method | test set | PSNR (dB) | SSIM | paper PSNR ({PAPER}) |', '|---|---|---|---|---|---|']
    for arm, paper in zip(ARMS, cfg['paper']):
        if arm in results:
            m = results[arm]
            lines.append(f'| {row} | {cfg["network"]}, {ARM_LABELS[arm]} | {cfg["test_set"]} | {m["psnr"]:.2f} | '
                         f'{m["ssim"]:.4f} | {paper:.2f} |')
    if all(arm in results for arm in ARMS):
        gain = results['spn']['psnr'] - results['l1']['psnr']
        ssim_gain = results['spn']['ssim'] - results['l1']['ssim']
        lines.append(f'| {row} | SPN - L1 | {cfg["test_set"]} | {gain:+.2f} | {ssim_gain:+.4f} | '
                     f'{cfg["paper"][1] - cfg["paper"][0]:+.2f} |')
    return '\n'.join(lines)


def prepare_reside(its_dir, sots_dir, data_root):
    """The paired layout the FFA-Net files read, from RESIDE as downloaded: ITS ``hazy/<id>_<k>_<beta>.png`` with
    ``clear/<id>.png`` -> ``RESIDE/ITS_{hazy,clear}.lmdb``; SOTS-indoor ``hazy/<id>_<k>.png`` with ``gt/<id>.png``
    -> ``RESIDE/SOTS_indoor_paired/{hazy,clear}/<id>_<k>.png``."""
    from mclir_basicsr.data.lmdb_tools import folders_to_lmdb
    from mclir_basicsr.data.reside import pair_hazy_with_clear
    out = osp.join(data_root, 'RESIDE')
    staging = osp.join(out, 'ITS_paired')
    n = pair_hazy_with_clear(osp.join(its_dir, 'hazy'), osp.join(its_dir, 'clear'), staging)
    folders_to_lmdb(osp.join(staging, 'clear'), osp.join(staging, 'hazy'), osp.join(out, 'ITS_clear.lmdb'),
                    osp.join(out, 'ITS_hazy.lmdb'))
    shutil.rmtree(staging)
    m = pair_hazy_with_clear(osp.join(sots_dir, 'hazy'), osp.join(sots_dir, 'gt'), osp.join(out, 'SOTS_indoor_paired'))
    log(f'RESIDE: {n} ITS pairs in {out}/ITS_{{hazy,clear}}.lmdb, {m} SOTS-indoor pairs in {out}/SOTS_indoor_paired')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--row', choices=list(ROWS) + ['all'])
    parser.add_argument('--prepare-reside', nargs=2, metavar=('ITS_DIR', 'SOTS_INDOOR_DIR'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'datasets'))
    parser.add_argument('--arms', default=','.join(ARMS), help='l1,spn (default both)')
    parser.add_argument('--iters', type=int, help="train.total_iter (the schedule scales with it); default the file's")
    parser.add_argument('--seed', type=int, help="manual_seed; default the file's")
    parser.add_argument('--spn-weight', type=lambda v: v if v == 'auto' else float(v),
                        help="SPN's lambda: auto (ours) or a number; default the file's (the authors' 0.001)")
    parser.add_argument('--vgg-weights', help='ImageNet VGG16 file for SPN (default: where the file looks)')
    parser.add_argument('--gpus', type=int, default=1, help='GPUs; more than 1 runs under torchrun')
    parser.add_argument('--threads', type=int, default=os.cpu_count(), help='CPU threads per process')
    parser.add_argument('--tiny', action='store_true', help='CPU smoke settings (tiny network, few iterations)')
    parser.add_argument('--workdir', default=WORKDIR)
    args = parser.parse_args(argv)
    if args.prepare_reside:
        prepare_reside(*args.prepare_reside, args.data_root)
        if not args.row:
            return 0
    if not args.row:
        parser.error('give --row (or --prepare-reside)')
    arms = [a for a in args.arms.split(',') if a]
    if not arms or set(arms) - set(ARMS):
        parser.error(f'--arms {args.arms}: choose from {",".join(ARMS)}')
    if args.tiny and not args.iters:
        args.iters = 4
    args.workdir = osp.abspath(args.workdir)
    os.makedirs(args.workdir, exist_ok=True)
    rows = list(ROWS) if args.row == 'all' else [args.row]
    for row in rows:
        results = {arm: run_arm(row, arm, args) for arm in arms}
        text = table(row, results)
        print(text, flush=True)
        with open(osp.join(args.workdir, f'{row}.json'), 'w') as f:
            json.dump({'row': row, 'paper': ROWS[row]['paper'], 'results': results, 'tiny': args.tiny,
                       'iters': args.iters, 'argv': sys.argv[1:] if argv is None else argv}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
