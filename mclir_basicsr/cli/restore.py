"""``mclir-restore``: restore your own images (no ground truth, any size) with a trained or published model.

    mclir-restore -i INPUT [INPUT ...] -o OUTPUT_FOLDER -opt OPTIONS.yml [--which latest|best|ema]
    mclir-restore -i INPUT -o OUTPUT_FOLDER --network TYPE --network-args '{...}' --weights FILE

INPUT: an image, a folder (``--recursive``: with its subfolders) or a glob (quote it). Outputs keep the input's
name (plus ``--suffix``), its bit depth and alpha; PNG and TIFF stay so, other formats become PNG (``--ext``).
Everything that can be refused is refused before the first image is read; an unreadable image is skipped with one
line, the others are written, and the exit status is 1. docs/restore.md has an example per checkpoint format.
"""
import argparse
import sys

from ..inference.inputs_outputs import restore_images
from ..inference.option_source import WHICH, RestoreError
from ..inference.restorer import PRECISIONS, load_restorer, parse_network_args
from .pipeline import import_registries, split_imports


def _parser():
    p = argparse.ArgumentParser(prog='mclir-restore', description=__doc__.split('\n\n')[0])
    p.add_argument('-i', '--input', nargs='+', required=True, help='image files, folders or globs')
    p.add_argument('-o', '--output', required=True, help='folder for the restored images (created if missing)')
    model = p.add_argument_group('the model: -opt, or --network with --weights')
    model.add_argument('-opt', help='a training option file (network_g and the experiment\'s weights) or a test '
                                    'file (network_g and path.pretrain_network_g)')
    model.add_argument('--which', default='latest', choices=WHICH,
                       help='with -opt: the latest checkpoint, the one of the best validation, or the latest EMA')
    model.add_argument('--network', help='a registered network type, e.g. EDSR, NAFNet, PromptIR')
    model.add_argument('--network-args', help='its arguments as YAML or JSON, e.g. \'{num_feat: 32, num_block: 4}\'')
    model.add_argument('--weights', help='checkpoint file (BasicSR/ours, NAFNet, PromptIR, DSRIR, ConStyle, FFA-Net, '
                                         'DCPT formats are recognised by their keys)')
    model.add_argument('--param-key', help='the checkpoint entry to load (default: found from the keys; '
                                           'params_ema before params)')
    model.add_argument('--scale', type=int, help='expected upscaling (checked against the network\'s)')
    model.add_argument('--input-mean', type=float, nargs=3, metavar=('R', 'G', 'B'),
                       help='feed the network (image - mean) / std, as some published weights expect (FFA-Net)')
    model.add_argument('--input-std', type=float, nargs=3, metavar=('R', 'G', 'B'))
    run = p.add_argument_group('running')
    run.add_argument('--tile', type=int, default=0, help='tile side in pixels (0: whole images)')
    run.add_argument('--tile-overlap', type=int, default=32, help='context pixels around each tile, blended')
    run.add_argument('--tile-batch', type=int, default=1, help='tiles per forward pass')
    run.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    run.add_argument('--precision', default='fp32', choices=list(PRECISIONS), help='autocast dtype')
    out = p.add_argument_group('outputs')
    out.add_argument('--suffix', default='', help='added to each output name, e.g. _restored')
    out.add_argument('--ext', default='auto', help='auto (PNG and TIFF kept, others -> PNG), png, tif, jpg, ...')
    out.add_argument('--recursive', action='store_true', help='folders: include their subfolders (kept as such)')
    out.add_argument('--skip-existing', action='store_true', help='leave images whose output exists')
    out.add_argument('--dry-run', action='store_true', help='list what would be written; write nothing')
    out.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


def main(argv=None):
    """Console script ``mclir-restore``; returns the exit code."""
    modules, rest = split_imports(sys.argv[1:] if argv is None else list(argv))
    error = import_registries(modules, 'mclir-restore')
    if error:
        print(error, file=sys.stderr)
        return 1
    args = _parser().parse_args(rest)
    try:
        restorer = load_restorer(
            network=args.network, network_args=parse_network_args(args.network_args), weights=args.weights,
            opt_path=args.opt, which=args.which, param_key=args.param_key, scale=args.scale, device=args.device,
            precision=args.precision, tile=args.tile, overlap=args.tile_overlap, tile_batch=args.tile_batch,
            input_mean=args.input_mean, input_std=args.input_std)
        report = restore_images(args.input, args.output, restorer, suffix=args.suffix, ext=args.ext,
                                recursive=args.recursive, skip_existing=args.skip_existing, dry_run=args.dry_run,
                                progress=not (args.quiet or args.dry_run),
                                log=lambda line: print(line, file=sys.stderr if not args.dry_run else sys.stdout))
    except RestoreError as err:
        print(f'mclir-restore: {err}', file=sys.stderr)
        return 1
    if not args.dry_run:
        rate = len(report.written) / report.seconds if report.seconds else 0.
        print(f'mclir-restore: {len(report.written)} written to {args.output}'
              + (f', {len(report.skipped)} existing left' if report.skipped else '')
              + (f', {len(report.failed)} failed' if report.failed else '')
              + f' ({report.seconds:.1f} s, {rate:.2f} images/s; {restorer.source}; x{restorer.scale}, '
              f'{restorer.device})')
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
