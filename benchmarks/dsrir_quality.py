"""DSRIR at demo scale: a tiny DSRIR with its three losses vs the demo's tiny NAFNet (L1), per degradation.

    python -m benchmarks.dsrir_quality [--seeds 10,11,12] [--iters 300] [--threads 2]

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

from benchmarks.common import OUT_DIR, int_list, read_options, report, run_arms, set_length

WORK = osp.join(OUT_DIR, 'dsrir_runs')
DEMO = 'options/train/all_in_one/demo'
FILES = {'nafnet': f'{DEMO}/train_NAFNet_AIO3_demo_baseline.yml', 'dsrir': f'{DEMO}/train_DSRIR_AIO3_demo.yml',
         'dsrir_l1': f'{DEMO}/train_DSRIR_AIO3_demo.yml'}
ARMS = ('nafnet', 'dsrir_l1', 'dsrir')


def options(arm, seed, iters):
    opt = read_options(FILES[arm])
    opt.update(name=f'{arm}_s{seed}', manual_seed=seed, num_gpu=0)
    if arm == 'dsrir_l1':
        opt['model_type'] = 'SRModel'
        for key in ('stage_uncertainty_opt', 'pocl_opt'):
            opt['train'].pop(key)
        opt['train']['pixel_opt'] = {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}
    return set_length(opt, iters, prints=10)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', default='10,11,12')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(OUT_DIR, 'dsrir_quality.json'))
    args = parser.parse_args(argv)
    seeds = int_list(args.seeds)
    results = run_arms(ARMS, options, seeds, args.iters, args.threads, WORK)
    report(osp.abspath(args.out), 'dsrir_quality', argv, seeds, args.iters, args.threads, results, ARMS,
           'nafnet')


if __name__ == '__main__':
    main()
