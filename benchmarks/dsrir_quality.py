"""DSRIR at demo scale: a tiny DSRIR with its three losses vs the demo's tiny NAFNet (L1), per degradation.

    python benchmarks/dsrir_quality.py [--seeds 10,11,12] [--iters 300] [--threads 2]

Arms, each from its demo option file, same data, iterations, batch, patch size, optimiser and schedule:

* ``nafnet``: ``options/train/all_in_one/demo/train_NAFNet_AIO3_demo_baseline.yml`` (288,691 parameters, L1);
* ``dsrir``: ``train_DSRIR_AIO3_demo.yml`` (263,533 parameters; DSRIRModel: stage PSNR + uncertainty +
  0.2 x positive contrast with random VGG19 features, as no ImageNet VGG19 exists offline);
* ``dsrir_l1``: the same network trained by SRModel with L1 on its final image: what the architecture gives alone.

PSNR/SSIM on the five demo validation sets after the last iteration (tensorboard scalars), and each run's wall
time. Runs go one at a time to benchmarks/out/dsrir_runs/; results to benchmarks/out/dsrir_quality.json.
"""
import argparse
import os.path as osp
import sys

import yaml

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
from arm_comparison import report, run_arms  # noqa: E402  (benchmarks/ is not a package)
from dcpt_quality import absolute_roots  # noqa: E402
from quality import ROOT  # noqa: E402

WORK = osp.join(HERE, 'out', 'dsrir_runs')
DEMO = 'options/train/all_in_one/demo'
FILES = {'nafnet': f'{DEMO}/train_NAFNet_AIO3_demo_baseline.yml', 'dsrir': f'{DEMO}/train_DSRIR_AIO3_demo.yml',
         'dsrir_l1': f'{DEMO}/train_DSRIR_AIO3_demo.yml'}
ARMS = ('nafnet', 'dsrir_l1', 'dsrir')


def options(arm, seed, iters):
    with open(osp.join(ROOT, FILES[arm])) as f:
        opt = absolute_roots(yaml.safe_load(f))
    opt.update(name=f'{arm}_s{seed}', manual_seed=seed, num_gpu=0)
    if arm == 'dsrir_l1':
        opt['model_type'] = 'SRModel'
        for key in ('stage_uncertainty_opt', 'pocl_opt'):
            opt['train'].pop(key)
        opt['train']['pixel_opt'] = {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}
    opt['train']['total_iter'] = iters
    opt['train']['scheduler']['T_max'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(save_checkpoint_freq=10 ** 9, use_tb_logger=True, print_freq=max(1, iters // 10))
    return opt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', default='10,11,12')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(HERE, 'out', 'dsrir_quality.json'))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(',')]
    results = run_arms(ARMS, options, seeds, args.iters, args.threads, WORK)
    report(osp.abspath(args.out), osp.basename(__file__), argv, seeds, args.iters, args.threads, results, ARMS,
           'nafnet')


if __name__ == '__main__':
    main()
