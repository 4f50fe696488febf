"""The demo: build the bundled data, train a baseline and an SPN model, test both, print a PSNR/SSIM table.

``python -m mclir_basicsr.demo`` (or ``mclir-demo``, or ``make demo``) from the project root. Each training and
test runs through our entry points (BasicSR's training loop and test pipeline) in its own process; their logs go
to ``experiments/`` and ``results/`` as usual, and the table to ``results/demo_summary.{md,json}``.
"""
import argparse
import cv2
import json
import numpy as np
import os
import os.path as osp
import subprocess
import sys
import time
import yaml
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils.matlab_functions import imresize

from mclir_basicsr.cli.demo_report import format_table, plot_curves, summarise
from mclir_basicsr.data.demo_data import build_demo_data
from mclir_basicsr.vgg_weights import torchvision_vgg_filename

IMAGENET_VGG16 = osp.join('experiments', 'pretrained_models', torchvision_vgg_filename('vgg16'))

TASKS = {
    'sr_x2': dict(label='x2 SR', arms=[('baseline (L1)', 'EDSR_SRx2_demo_baseline'),
                                       ('SPN (L1 + SPN, 2 copies)', 'MCLIR_EDSR_SRx2_demo')],
                  scale=2, crop_border=2, y_channel=True, input_label='bicubic input'),
    'dn_s25': dict(label='denoise s25', arms=[('baseline (L1)', 'EDSR_DNs25_demo_baseline'),
                                              ('SPN (L1 + SPN, 2 copies)', 'MCLIR_EDSR_DNs25_demo')],
                   scale=1, crop_border=0, y_channel=False, input_label='noisy input'),
    # one row per degradation (and their average): the test sets of the option file; no input row
    'all_in_one': dict(label='all-in-one, 3 tasks: noise 15/25/50, rain, haze; tiny NAFNet',
                       arms=[('baseline (L1)', 'NAFNet_AIO3_demo_baseline'),
                             ('SPN (L1 + SPN, 2 copies)', 'MCLIR_NAFNet_AIO3_demo')],
                       folder=osp.join('all_in_one', 'demo'), per_dataset=True),
}


# --dsrir: one more all_in_one arm, the tiny DSRIR with its three losses (about 14 minutes on 2 CPU cores)
DSRIR_ARM = ('DSRIR (3 losses, random VGG19)', 'DSRIR_AIO3_demo')


FIRST_SEED = 10  # the demo option files' manual_seed; further seeds count up from it


def _latest_weights(run):
    return osp.join('experiments', run, 'models', 'net_g_latest.pth')


def _option_file(kind, name, folder='demo'):
    return osp.join('options', kind, folder, f'{kind}_{name}.yml')


def _run(cmd, log_path, what):
    """Run ``cmd`` with output to ``log_path``; on failure show the end of the log and exit."""
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    start = time.time()
    print(f'  {what} ...', end='', flush=True)
    with open(log_path, 'w') as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    took = time.time() - start
    if proc.returncode != 0:
        print(' FAILED')
        with open(log_path) as log:
            tail = log.readlines()[-30:]
        sys.stderr.write(''.join(tail))
        sys.exit(f'demo: {what} failed (exit {proc.returncode}); full log: {log_path}')
    print(f' done in {took:.0f} s')
    return took


def input_metrics(data_root, task):
    """PSNR/SSIM of the degraded input itself (bicubic-upsampled LQ for SR), with the task's metric settings."""
    cfg = TASKS[task]
    gt_dir = osp.join(data_root, task, 'val', 'gt')
    lq_dir = osp.join(data_root, task, 'val', 'lq')
    psnrs, ssims = [], []
    for name in sorted(os.listdir(gt_dir)):
        gt = cv2.imread(osp.join(gt_dir, name), cv2.IMREAD_UNCHANGED)
        lq = cv2.imread(osp.join(lq_dir, name), cv2.IMREAD_UNCHANGED)
        if cfg['scale'] != 1:
            lq = imresize(lq.astype(np.float32) / 255., cfg['scale'])
            lq = np.clip(np.round(lq * 255.), 0, 255).astype(np.uint8)
        kw = dict(crop_border=cfg['crop_border'], test_y_channel=cfg['y_channel'])
        psnrs.append(calculate_psnr(lq, gt, **kw))
        ssims.append(calculate_ssim(lq, gt, **kw))
    return {'psnr': float(np.mean(psnrs)), 'ssim': float(np.mean(ssims))}


def imagenet_spn(weights=IMAGENET_VGG16):
    """``--force_yml`` arguments and a sentence: SPN on ImageNet VGG16 when ``mclir-fetch-vgg`` put the file in place,
    else the option files' random VGG. The demo files' ``loss_weight: auto`` fits lambda to either feature space."""
    if not osp.isfile(weights):
        return [], (f'SPN uses random VGG features (no {weights}; run mclir-fetch-vgg for the paper\'s ImageNet '
                    f'feature space).')
    return [f'train:spn_opt:vgg_weights={weights}'], f'SPN uses ImageNet VGG16 features from {weights}.'


def validation_curve(name):
    """``[(iter, mean validation PSNR over the validation sets)]`` from BasicSR's tensorboard log of ``name``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(osp.join('tb_logger', name), size_guidance={'scalars': 0})
    acc.Reload()
    by_iter = {}
    for tag in acc.Tags().get('scalars', []):
        if tag.startswith('metrics/') and tag.endswith('/psnr'):
            for event in acc.Scalars(tag):
                by_iter.setdefault(event.step, []).append(event.value)
    return sorted((it, float(np.mean(v))) for it, v in by_iter.items())


def _labelled(image, text):
    """``image`` under a white band holding ``text``."""
    band = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def side_by_side(task, cfg, arms, py):
    """One validation photo restored by each arm's trained model through ``mclir-restore`` (the test option file
    names the weights), beside its input: ``results/demo_side_by_side_<task>.png``; None for a task without an
    image folder of inputs (all-in-one degrades on the fly)."""
    folder = cfg.get('folder', 'demo')
    with open(_option_file('test', arms[0][1], folder)) as f:
        first_set = next(iter(yaml.safe_load(f)['datasets'].values()))
    lq_folder = first_set.get('dataroot_lq')
    if not lq_folder or not osp.isdir(lq_folder):
        return None
    photo = osp.join(lq_folder, sorted(os.listdir(lq_folder))[0])
    panels = []
    for method, name in arms:
        out = osp.join('results', 'demo_restore', name)
        _run([py, '-m', 'mclir_basicsr.cli.restore', '-opt', _option_file('test', name, folder), '-i', photo, '-o', out,
              '--quiet'], osp.join('results', 'demo_logs', f'restore_{name}.log'), f'restore one photo with {name}')
        restored = cv2.imread(osp.join(out, osp.splitext(osp.basename(photo))[0] + '.png'))
        panels.append(_labelled(restored, method))
    h, w = panels[0].shape[0] - 22, panels[0].shape[1]
    lq = cv2.imread(photo)
    shown = cv2.resize(lq, (w, h), interpolation=cv2.INTER_CUBIC) if lq.shape[:2] != (h, w) else lq
    label = f'input (bicubic x{cfg["scale"]})' if cfg.get('scale', 1) > 1 else cfg['input_label']
    path = osp.join('results', f'demo_side_by_side_{task}.png')
    cv2.imwrite(path, np.concatenate([_labelled(shown, label)] + panels, axis=1))
    return path


def _run_name(name, seed, seeds):
    """The option file's name for its first seed (the test option files and side-by-side use it), suffixed after."""
    return name if seed == seeds[0] else f'{name}_seed{seed}'


def main(argv=None):
    """Console script ``mclir-demo``; returns the exit code (a failed step exits with its message)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=list(TASKS) + ['all'], default='sr_x2',
                        help='sr_x2 (default, about five minutes on 2 CPU cores), dn_s25, all_in_one, or all')
    parser.add_argument('--iters', type=int, default=None, help='override train.total_iter of the demo options')
    parser.add_argument('--seeds', type=int, default=3,
                        help='train every arm with this many seeds (manual_seed 10, 11, ...; default 3): the spread '
                             'that seeds alone make is what a difference between arms is read against')
    parser.add_argument('--data-root', default=osp.join('datasets', 'demo'))
    parser.add_argument('--dsrir', action='store_true',
                        help='all_in_one: also train and test a tiny DSRIR (DSRIRModel; ~14 more minutes on 2 cores)')
    args = parser.parse_args(argv)
    if args.dsrir and args.task not in ('all_in_one', 'all'):
        parser.error('--dsrir adds an arm to the all_in_one task: use it with --task all_in_one (or all).')
    if args.seeds < 1:
        parser.error(f'--seeds {args.seeds}: give 1 or more (3 shows the spread that seeds alone make).')
    if not osp.isdir('options'):
        sys.exit('demo: run it from the project root (the folder with options/ and datasets/).')
    tasks = list(TASKS) if args.task == 'all' else [args.task]
    seeds = [FIRST_SEED + i for i in range(args.seeds)]

    print('Demo data (scikit-image photos -> image folders + lmdb):')
    build_demo_data(root=args.data_root, tasks=tuple(tasks))

    rows, curves, pictures = [], {}, []
    py = sys.executable
    spn_force, spn_note = imagenet_spn()
    print(spn_note)
    for task in tasks:
        cfg = TASKS[task]
        print(f'\nTask {task} ({cfg["label"]}), seeds {", ".join(map(str, seeds))}:')
        folder = cfg.get('folder', 'demo')
        if not cfg.get('per_dataset'):
            rows.append(dict(task=task, method=cfg['input_label'], seed=None, train_s=None,
                             **input_metrics(args.data_root, task)))
        arms = cfg['arms'] + ([DSRIR_ARM] if args.dsrir and task == 'all_in_one' else [])
        for seed in seeds:
            for method, name in arms:
                run = _run_name(name, seed, seeds)
                force = [f'train:total_iter={args.iters}'] if args.iters else []
                force += [f'name={run}', f'manual_seed={seed}'] if run != name else []
                force += spn_force if name.startswith('MCLIR') else []
                took = _run([py, '-m', 'mclir_basicsr.train', '-opt', _option_file('train', name, folder)]
                            + (['--force_yml'] + force if force else []),
                            osp.join('results', 'demo_logs', f'train_{run}.log'), f'train {run}')
                test_force = [] if run == name else [
                    '--force_yml', f'name={run}', f'path:pretrain_network_g={_latest_weights(run)}']
                _run([py, '-m', 'mclir_basicsr.test', '-opt', _option_file('test', name, folder)] + test_force,
                     osp.join('results', 'demo_logs', f'test_{run}.log'), f'test  {run}')
                if seed == seeds[0]:
                    curves.setdefault(task, {})[method] = validation_curve(name)
                with open(osp.join('results', run, 'metrics.json')) as f:
                    per_set = json.load(f)
                shown = per_set.items() if cfg.get('per_dataset') else list(per_set.items())[:1]
                for dataset, metrics in shown:
                    label = f'{task}: {dataset}' if cfg.get('per_dataset') else task
                    rows.append(dict(task=label, method=method, seed=seed, train_s=took, psnr=metrics['psnr'],
                                     ssim=metrics['ssim']))
        pictures.append(side_by_side(task, cfg, arms, py))

    input_seed = {r['method']: r for r in rows if r['seed'] is None}
    table, verdicts = summarise([dict(r, seed=seeds[0]) if r['method'] in input_seed else r for r in rows], seeds)
    text = format_table(table) + '\n\n' + '\n'.join(verdicts)
    print(f'\nValidation PSNR/SSIM (BasicSR metrics; SR: Y channel, border 2; denoising and all-in-one: RGB), mean ± '
          f'standard deviation over {len(seeds)} seed{"s" if len(seeds) > 1 else ""}:\n')
    print(text)
    with open(osp.join('results', 'demo_summary.md'), 'w') as f:
        f.write(text + '\n')
    with open(osp.join('results', 'demo_summary.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    png = plot_curves(curves, osp.join('results', 'demo_curves.png'))
    print('\nSaved results/demo_summary.md and .json' + (f', {png} (validation PSNR vs iteration, first seed)'
                                                         if png else '')
          + '; restored images under results/<name>/visualization/.')
    for picture in filter(None, pictures):
        print(f'One photo restored with mclir-restore by each model (first seed), beside its input: {picture}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
