"""k-NN degradation classification from restorer features (the DCPT paper's probe) at demo scale.

    python -m benchmarks.dcpt_probe [--nets NAFNet,PromptIR] [--threads 2]

For the demo's tiny NAFNet and tiny PromptIR (``options/train/dcpt/demo/``): ``mclir-probe-degradation`` (k=5, test
fraction 0.33, 5 stratified splits, 64 px centre crops) on the training images of the demo data, 3 tasks (noise,
rain, haze: the trained ones) and 5 tasks (plus blur and low light, never trained on), for

* ``init``: the random initialisation (``manual_seed`` 10);
* ``dcpt``: after DCPT pre-training (``train_DCPT_<net>_AIO3_demo.yml``, 150 iterations);
* ``plain``: after plain all-in-one training with L1 (the demo baseline, 300 iterations).

Checkpoints come from ``benchmarks/out/dcpt_runs/`` when ``dcpt_quality.py`` left them (NAFNet, seed 10), else they
are trained here. Results: benchmarks/out/dcpt_probe.json (``--out``).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

import yaml

from benchmarks.common import OUT_DIR, ROOT, command_line, entry_env, log, read_options, run_training, write_json
from benchmarks.dcpt_quality import WORK  # its NAFNet checkpoints are reused here

FILES = {  # paths under options/train/
    'NAFNet': {'dcpt': 'dcpt/demo/train_DCPT_NAFNet_AIO3_demo.yml',
               'plain': 'all_in_one/demo/train_NAFNet_AIO3_demo_baseline.yml'},
    'PromptIR': {'dcpt': 'dcpt/demo/train_DCPT_PromptIR_AIO3_demo.yml',
                 'plain': 'dcpt/demo/train_PromptIR_AIO3_demo_baseline.yml'},
}
TRAIN_OPTIONS = osp.join(ROOT, 'options', 'train')
CACHED = {'NAFNet': {'dcpt': 'pretrain_s10', 'plain': 'scratch_s10'}}  # names dcpt_quality.py gives its runs
TASKS5 = ('denoise', 'derain', 'dehaze', 'deblur', 'lowlight')


def data_file(n_tasks):
    """An option file holding only ``datasets.train``: the demo's training images of the first n kinds."""
    tasks = []
    for kind in TASKS5[:n_tasks]:
        key = 'dataroot_gt' if kind == 'denoise' else 'dataroot'
        task = {'kind': kind, key: osp.join(ROOT, 'datasets', 'demo', 'all_in_one', 'train', kind)}
        if kind == 'denoise':
            task['sigma'] = [15, 25, 50]
        tasks.append(task)
    path = osp.join(WORK, f'probe_data_{n_tasks}task.yml')
    with open(path, 'w') as f:
        yaml.safe_dump({'datasets': {'train': {'type': 'AllInOneDataset', 'name': f'demo_{n_tasks}task', 'seed': 0,
                                               'tasks': tasks}}}, f)
    return path


def checkpoint(net, stage, threads):
    cached = CACHED.get(net, {}).get(stage)
    if cached:
        path = osp.join(WORK, 'experiments', cached, 'models', 'net_g_latest.pth')
        if osp.isfile(path):
            return path
    opt = read_options(osp.join('options', 'train', FILES[net][stage]))
    opt.update(name=f'probe_{net}_{stage}', num_gpu=0)
    opt['logger'].update(save_checkpoint_freq=10 ** 9, use_tb_logger=True)
    took, _ = run_training(opt, WORK, threads)
    log(f'{net} {stage}: trained in {took:.0f} s')
    return osp.join(WORK, 'experiments', opt['name'], 'models', 'net_g_latest.pth')


def probe(net, ckpt, data, out, threads):
    cmd = [sys.executable, '-m', 'mclir_basicsr.probe', '-opt', osp.join(TRAIN_OPTIONS, FILES[net]['dcpt']),
           '--data-opt', data, '--crop', '64', '--json', out] + (['--checkpoint', ckpt] if ckpt else [])
    subprocess.run(cmd, cwd=ROOT, env=entry_env(threads), check=True, capture_output=True)
    with open(out) as f:
        return json.load(f)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--nets', default='NAFNet,PromptIR')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=osp.join(OUT_DIR, 'dcpt_probe.json'))
    args = parser.parse_args(argv)
    os.makedirs(WORK, exist_ok=True)
    data = {n: data_file(n) for n in (3, 5)}
    results = {}
    for net in args.nets.split(','):
        ckpts = {'init': None, 'dcpt': checkpoint(net, 'dcpt', args.threads),
                 'plain': checkpoint(net, 'plain', args.threads)}
        for stage, ckpt in ckpts.items():
            for n, path in data.items():
                r = probe(net, ckpt, path, osp.join(WORK, f'probe_{net}_{stage}_{n}.json'), args.threads)
                results[f'{net}/{stage}/{n}task'] = r
                log(f'{net} {stage} {n} tasks: {r["accuracy"]["mean"]:.1f}% (chance {r["chance"]:.0f}%); '
                    + ', '.join(f'{c} {v["mean"]:.0f}%' for c, v in r['per_class'].items()))
    write_json(args.out, {'command': command_line('dcpt_probe', argv), 'results': results}, indent=2)
    log(f'wrote {args.out}')


if __name__ == '__main__':
    main()
