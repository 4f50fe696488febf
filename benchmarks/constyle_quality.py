"""ConStyle at demo scale: ConStyleNAFNet vs a NAFNet of similar size, per degradation; the style term capped and not.

    python benchmarks/constyle_quality.py [--seeds 10,11,12] [--uncapped-seeds 10] [--iters 300] [--threads 2]

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
import sys

import yaml

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
from arm_comparison import report, run_arms  # noqa: E402  (benchmarks/ is not a package)
from dcpt_quality import absolute_roots  # noqa: E402
from quality import ROOT, log  # noqa: E402

WORK = osp.join(HERE, 'out', 'constyle_runs')
DEMO = 'options/train/all_in_one/demo'
FILES = {'nafnet': f'{DEMO}/train_NAFNet_AIO3_demo_baseline.yml',
         'constyle': f'{DEMO}/train_ConStyleNAFNet_AIO3_demo.yml',
         'constyle_uncapped': f'{DEMO}/train_ConStyleNAFNet_AIO3_demo.yml'}
ARMS = ('nafnet', 'constyle')
NAFNET_WIDTH = 39


def options(arm, seed, iters):
    with open(osp.join(ROOT, FILES[arm])) as f:
        opt = absolute_roots(yaml.safe_load(f))
    opt.update(name=f'{arm}_s{seed}', manual_seed=seed, num_gpu=0)
    if arm == 'nafnet':
        opt['network_g']['width'] = NAFNET_WIDTH
    if arm == 'constyle_uncapped':
        opt['train']['style_opt'] = {'type': 'StyleLoss'}
    if arm != 'nafnet':
        opt['train']['ConStyle_iter'] = iters // 3
    opt['train']['total_iter'] = iters
    opt['train']['scheduler']['T_max'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(save_checkpoint_freq=10 ** 9, use_tb_logger=True, print_freq=max(1, iters // 30))
    return opt


def joint_phase_scalars(name):
    """Largest logged style distance and last InfoNCE loss of a run (tensorboard), or {} without them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(osp.join(WORK, 'tb_logger', name), size_guidance={'scalars': 0})
    acc.Reload()
    tags = acc.Tags().get('scalars', [])
    out = {}
    if 'style_distance' in tags:  # BasicSR files log values not named l_* without the losses/ prefix
        values = [e.value for e in acc.Scalars('style_distance')]
        out.update(style_distance_first=values[0], style_distance_max=max(values), style_distance_last=values[-1])
    if 'losses/l_CrossEntropy' in tags:
        out['info_nce_last'] = acc.Scalars('losses/l_CrossEntropy')[-1].value
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', default='10,11,12')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--uncapped-seeds', default='10')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(HERE, 'out', 'constyle_quality.json'))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(',')]
    import mclir_basicsr  # noqa: F401  (registers the networks to count them)
    from basicsr.archs import build_network
    counts = {arm: sum(p.numel() for p in build_network(options(arm, 0, 3)['network_g']).parameters()
                       if p.requires_grad) for arm in ARMS[:2]}
    log(f'trainable parameters: {counts}')
    results = run_arms(ARMS, options, seeds, args.iters, args.threads, WORK)
    uncapped_seeds = [int(s) for s in args.uncapped_seeds.split(',') if s]
    uncapped = run_arms(('constyle_uncapped', ), options, uncapped_seeds, args.iters, args.threads, WORK)
    style = {f'{arm}_s{s}': joint_phase_scalars(f'{arm}_s{s}') for arm in ('constyle', ) for s in seeds}
    style.update({f'constyle_uncapped_s{s}': joint_phase_scalars(f'constyle_uncapped_s{s}') for s in uncapped_seeds})
    for name, values in style.items():
        log(f'{name}: ' + ', '.join(f'{k} {v:.4g}' for k, v in values.items()))
    report(osp.abspath(args.out), osp.basename(__file__), argv, seeds, args.iters, args.threads, results, ARMS,
           'nafnet', extra={'trainable_parameters': counts, 'joint_phase': style, 'uncapped_runs': uncapped})


if __name__ == '__main__':
    main()
