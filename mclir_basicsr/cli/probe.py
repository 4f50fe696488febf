"""``mclir-probe-degradation``: how well a restoration network's features tell degradations apart (k-NN accuracy).

    mclir-probe-degradation -opt OPTIONS.yml [--checkpoint net_g.pth] [--data-opt DATA.yml] [--dataset train]
                            [--hook-names NAME ...] [--k 5] [--test-fraction 0.33] [--splits 5] [--json OUT]

The network is ``network_g`` of ``-opt`` (random initialisation from its ``manual_seed`` unless ``--checkpoint``);
the hooked modules are ``hook_names`` of that file or ``--hook-names``. The labelled images are the
``AllInOneDataset`` block ``datasets.<--dataset>`` of ``--data-opt`` (default: ``-opt``), read whole, as for
validation (noise drawn per image from the block's ``seed``), optionally centre-cropped (``--crop``). Each image's
feature: every hooked output averaged over space, L2-normalised, concatenated. k-NN (cosine similarity, majority of
the ``k`` nearest, ties to the nearest) on ``--splits`` random stratified train/test splits (seeds 0..splits-1);
reported: overall and per-class test accuracy, mean and range over the splits, with chance level (a ``--k`` above the
training images of a split is refused, not capped). The DCPT paper's
protocol is the same k and split on flattened features; pooling keeps any image size usable.
"""
import argparse
import json
import os.path as osp
import sys
import yaml

from ..checks.option_file import read_option_file
from ..checks.options import OptionError
from ..methods.dcpt.feature_hooks import as_name_list
from ..methods.dcpt.probe_features import (build_probe_network, dataset_labels, extract_features, knn_report,
                                           probe_dataset, stratified_split)
from ..utils import why_not_writable
from .pipeline import run_pipeline


def _parse(argv):
    p = argparse.ArgumentParser(prog='mclir-probe-degradation', description=__doc__.split('\n\n')[0])
    p.add_argument('-opt', required=True, help='option file with network_g (and hook_names, manual_seed)')
    p.add_argument('--checkpoint', help='net_g weights (default: random initialisation)')
    p.add_argument('--param-key', default='params', help='key in the checkpoint (params, params_ema)')
    p.add_argument('--data-opt', help='option file holding the labelled dataset (default: -opt)')
    p.add_argument('--dataset', default='train', help='key under datasets: (an AllInOneDataset block)')
    p.add_argument('--hook-names', nargs='+', help='modules of network_g to read (default: hook_names of -opt)')
    p.add_argument('--k', type=int, default=5, help='neighbours, at most the training images of a split')
    p.add_argument('--test-fraction', type=float, default=0.33)
    p.add_argument('--splits', type=int, default=5)
    p.add_argument('--crop', type=int, default=0, help='centre crop side in pixels (0: whole images)')
    p.add_argument('--json', help='also write the report here')
    return p.parse_args(argv)


def check_json_target(path):
    """``--json`` can be written (checked before the probe runs: nothing is left behind)."""
    if path is None:
        return
    if osp.isdir(path):
        raise OptionError(f'--json {path} is a folder; give the file to write the report to (e.g. {path}/probe.json).')
    why = why_not_writable(path)
    if why:
        raise OptionError(f'--json {path}: {why}. Choose a path in an existing folder that takes new files.')


def check_k(k, labels, test_fraction):
    """``k`` must not exceed the training images of a split (the same number in every split)."""
    n_train = len(stratified_split(labels, test_fraction, seed=0)[0])
    if k > n_train:
        raise OptionError(f'--k {k} is larger than the {n_train} training images of each split ({len(labels)} '
                          f'images, --test-fraction {test_fraction}): use --k {n_train} or less.')


def probe(args):
    check_json_target(args.json)
    if args.k < 1 or not 0 < args.test_fraction < 1 or args.splits < 1 or args.crop < 0:
        raise OptionError('--k and --splits must be >= 1, --test-fraction in (0, 1), --crop >= 0.')
    opt = read_option_file(args.opt, '-opt', yaml.SafeLoader)
    data_opt = read_option_file(args.data_opt, '--data-opt', yaml.SafeLoader) if args.data_opt else opt
    if 'network_g' not in opt:
        raise OptionError(f'-opt {args.opt} has no network_g.')
    hook_names = as_name_list(args.hook_names or opt.get('hook_names'), '--hook-names (or hook_names in -opt)')
    ds_opt = (data_opt.get('datasets') or {}).get(args.dataset)
    if not isinstance(ds_opt, dict) or ds_opt.get('type') != 'AllInOneDataset':
        raise OptionError(f'datasets.{args.dataset} of {args.data_opt or args.opt} must be an AllInOneDataset block '
                          f'(labelled tasks); got {ds_opt!r:.80}.')
    net = build_probe_network(opt, args.checkpoint, args.param_key)
    dataset = probe_dataset(ds_opt)
    check_k(args.k, dataset_labels(dataset), args.test_fraction)
    feats, labels, names, hooked = extract_features(net, dataset, hook_names, args.crop)
    report = knn_report(feats, labels, names, args.k, args.test_fraction, args.splits)
    report.update(network=opt['network_g'].get('type'), checkpoint=args.checkpoint or 'random initialisation',
                  hooked=hooked, dataset=f'{args.data_opt or args.opt}: datasets.{args.dataset}', crop=args.crop)
    return report


def format_report(r):
    lines = [f'{r["network"]} ({r["checkpoint"]}), features of {", ".join(r["hooked"])}',
             f'data {r["dataset"]}: {r["samples"]} images, {len(r["classes"])} classes; k={r["k"]}, test fraction '
             f'{r["test_fraction"]}, {r["splits"]} splits; chance {r["chance"]:.1f}%',
             f'overall accuracy {r["accuracy"]["mean"]:.1f}% (splits {r["accuracy"]["min"]:.1f}-'
             f'{r["accuracy"]["max"]:.1f}%)']
    lines += [f'  {name}: {v["mean"]:.1f}% ({v["min"]:.1f}-{v["max"]:.1f}%)' for name, v in r['per_class'].items()]
    return '\n'.join(lines)


def main(argv=None):
    def run(root):
        args = _parse(sys.argv[1:])
        report = probe(args)
        print(format_report(report))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(report, f, indent=2)
    return run_pipeline(run, argv, 'mclir-probe-degradation')


if __name__ == '__main__':
    sys.exit(main())
