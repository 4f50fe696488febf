"""Where BasicSR keeps an experiment's training states and network files, and how to read them safely.

One definition of each, used by resume (which state to continue from) and by the pre-flight checks.
"""
import os
import os.path as osp
import re
import torch

STATE_FILE = re.compile(r'^(\d+)\.state$')  # experiments/<name>/training_states/<iter>.state


def saved_state_iters(state_dir):
    """Iterations of the ``<iter>.state`` files in ``state_dir``, newest first (empty if none or no folder)."""
    if not state_dir or not osp.isdir(state_dir):
        return []
    return sorted((int(m.group(1)) for m in map(STATE_FILE.match, os.listdir(state_dir)) if m), reverse=True)


def resume_network_files(opt, resume_iter):
    """The network files BasicSR's ``check_resume`` loads for ``resume_iter`` (one per ``network_<x>`` not in
    ``path.ignore_resume_networks``)."""
    path_opt = opt.get('path') or {}
    ignore = path_opt.get('ignore_resume_networks') or []
    nets = [k for k in opt if k.startswith('network_') and k not in ignore]
    return [osp.join(path_opt['models'], f'net_{k[len("network_"):]}_{resume_iter}.pth') for k in nets]


def load_tensors_only(path):
    """``torch.load(path, weights_only=True)`` on the CPU, memory-mapped when the file format allows it (no tensor
    data is read until used). Raises whatever torch raises for an unreadable file."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except RuntimeError as err:  # old (non-zip) files cannot be memory-mapped
        if 'mmap' not in str(err):
            raise
        return torch.load(path, map_location='cpu', weights_only=True)


def is_readable(path):
    """True if ``path`` is a complete torch file (mmap: no tensor data is read)."""
    try:
        load_tensors_only(path)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False
