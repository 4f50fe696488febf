"""Finding and loading training states for resume, on CPU or GPU, relative to the experiment root.

Replaces ``basicsr.train.load_resume_state`` in our entry points. Differences from BasicSR's:

* ``--auto_resume`` looks in ``<root>/experiments/<name>/training_states`` (``opt['path']['training_states']``),
  not relative to the current directory;
* states are loaded to the CPU (optimizers move them to their parameters' device), so no CUDA is needed;
* with ``--auto_resume``, a state that cannot be read, or whose network files are missing or unreadable, is
  skipped with a warning naming the file, and the previous one is used;
* an explicit ``path.resume_state`` that does not exist is an error naming the key, not a silent fresh start.
"""
import os
import os.path as osp
import re
import warnings

import torch

_STATE_RE = re.compile(r'^(\d+)\.state$')


def network_files(opt, resume_iter):
    """The network files BasicSR's ``check_resume`` will load for ``resume_iter``."""
    ignore = opt['path'].get('ignore_resume_networks') or []
    nets = [k for k in opt if k.startswith('network_') and k not in ignore]
    return [osp.join(opt['path']['models'], f'net_{k[len("network_"):]}_{resume_iter}.pth') for k in nets]


def _readable(path):
    """True if ``path`` is a complete torch file (checked lazily through mmap: no tensor data is read)."""
    try:
        torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def find_latest_usable_state(opt):
    """Newest ``<iter>.state`` in the experiment's training_states whose state and network files load."""
    state_dir = opt['path']['training_states']
    if not osp.isdir(state_dir):
        return None
    iters = sorted((int(m.group(1)) for m in map(_STATE_RE.match, os.listdir(state_dir)) if m), reverse=True)
    for it in iters:
        path = osp.join(state_dir, f'{it}.state')
        bad = [p for p in [path] + network_files(opt, it) if not _readable(p)]
        if not bad:
            return path
        warnings.warn(f'auto_resume: skipping {path}: unreadable or missing {", ".join(bad)}; trying the previous '
                      f'state.')
    return None


def load_resume_state(opt):
    """Drop-in for ``basicsr.train.load_resume_state``: returns the state dict or None."""
    from basicsr.utils import check_resume
    if opt['auto_resume']:
        path = find_latest_usable_state(opt)
        if path is not None:
            opt['path']['resume_state'] = path
    else:
        path = opt['path'].get('resume_state')
        if path and not osp.isfile(path):
            raise FileNotFoundError(f'path.resume_state points to {path}, which does not exist. Fix the path, or '
                                    f'remove the key (or use --auto_resume) to pick the latest state.')
    if not path:
        return None
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise RuntimeError(f'cannot read training state {path} (path.resume_state): {err}') from err
    check_resume(opt, state['iter'])
    return state
