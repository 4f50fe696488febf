"""ConStyle at demo scale: ConStyleNAFNet vs a NAFNet of similar size, per degradation; the style term capped and not.

    python -m benchmarks.constyle_quality [--seeds 10,11,12] [--uncapped-seeds 10] [--iters 300] [--threads 2]

Arms, same data, iterations, batch, patch size, optimiser and schedule (the all-in-one demo's):

* ``nafnet``: the demo NAFNet at width 39 (1,670,646 parameters), L1;
* ``constyle``: ``options/train/all_in_one/demo/train_ConStyleNAFNet_AIO3_demo.yml``: dim 16 (469,248 restorer +
  1,190,832 prompter parameters), prompter trained jointly for 100 iterations then frozen, ``ConStyleStyleLoss``
  (capped at 1.0);
* ``constyle_uncapped`` (``--uncapped-seeds`` only, to measure the style term): the same with the authors'
  ``StyleLoss`` (no cap).

PSNR/SSIM on the five demo validation sets after the last iteration, and for the ConStyle arms the largest style
distance and the InfoNCE loss logged during the joint phase (tensorboard ``style_distance``,
``losses/l_CrossEntropy``). Runs go one at a time to benchmarks/out/constyle_runs/.
"""
import argparse
import os.path as osp

from benchmarks.common import OUT_DIR, int_list, log, read_options, report, run_arms, set_length, tb_scalars

WORK = osp.join(OUT_DIR, 'constyle_runs')
DEMO = 'options/train/all_in_one/demo'
FILES = {'nafnet': f'{DEMO}/train_NAFNet_AIO3_demo_baseline.yml',
         'constyle': f'{DEMO}/train_ConStyleNAFNet_AIO3_demo.yml',
         'constyle_uncapped': f'{DEMO}/train_ConStyleNAFNet_AIO3_demo.yml'}
ARMS = ('nafnet', 'constyle')
NAFNET_WIDTH = 39


def options(arm, seed, iters):
    opt = read_options(FILES[arm])
    opt.update(name=f'{arm}_s{seed}', manual_seed=seed, num_gpu=0)
    if arm == 'nafnet':
        opt['network_g']['width'] = NAFNET_WIDTH
    if arm == 'constyle_uncapped':
        opt['train']['style_opt'] = {'type': 'StyleLoss'}
    if arm != 'nafnet':
        opt['train']['ConStyle_iter'] = iters // 3
    return set_length(opt, iters, prints=30)


def joint_phase_scalars(name):
    """Largest logged style distance and last InfoNCE loss of a run (tensorboard), or {} without them."""
    scalars = tb_scalars(osp.join(WORK, 'tb_logger', name))
    out = {}
    if 'style_distance' in scalars:  # BasicSR files log values not named l_* without the losses/ prefix
        values = [v for _, v in scalars['style_distance']]
        out.update(style_distance_first=values[0], style_distance_max=max(values), style_distance_last=values[-1])
    if 'losses/l_CrossEntropy' in scalars:
        out['info_nce_last'] = scalars['losses/l_CrossEntropy'][-1][1]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', default='10,11,12')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--uncapped-seeds', default='10')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(OUT_DIR, 'constyle_quality.json'))
    args = parser.parse_args(argv)
    seeds = int_list(args.seeds)
    import mclir_basicsr  # noqa: F401  (registers the networks to count them)
    from basicsr.archs import build_network
    counts = {arm: sum(p.numel() for p in build_network(options(arm, 0, 3)['network_g']).parameters()
                       if p.requires_grad) for arm in ARMS[:2]}
    log(f'trainable parameters: {counts}')
    results = run_arms(ARMS, options, seeds, args.iters, args.threads, WORK)
    uncapped_seeds = int_list(args.uncapped_seeds)
    uncapped = run_arms(('constyle_uncapped', ), options, uncapped_seeds, args.iters, args.threads, WORK)
    style = {f'{arm}_s{s}': joint_phase_scalars(f'{arm}_s{s}') for arm in ('constyle', ) for s in seeds}
    style.update({f'constyle_uncapped_s{s}': joint_phase_scalars(f'constyle_uncapped_s{s}') for s in uncapped_seeds})
    for name, values in style.items():
        log(f'{name}: ' + ', '.join(f'{k} {v:.4g}' for k, v in values.items()))
    report(osp.abspath(args.out), 'constyle_quality', argv, seeds, args.iters, args.threads, results, ARMS,
           'nafnet', extra={'trainable_parameters': counts, 'joint_phase': style, 'uncapped_runs': uncapped})


if __name__ == '__main__':
    main()
