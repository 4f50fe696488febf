"""Where BasicSR keeps an experiment's training states and network files, and how to read them safely.

One definition of each, used by resume (which state to continue from) and by the pre-flight checks.
"""
import os
import os.path as osp
import re
import torch

from ..utils import TEMPORARY_FILE

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


def process_alive(pid):
    """True if a process ``pid`` exists (``os.kill(pid, 0)``: signal 0 only checks; another user's process counts).
    Unknowable on Windows, where ``os.kill`` would terminate it: True."""
    if os.name == 'nt':
        return True
    if pid <= 0:  # 0 and negative pids address process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):  # a pid beyond the system's range: no such process
        return False
    return True


def remove_stale_temporaries(folders):
    """Remove the temporary files of atomic writes (``.<name>.tmp-<pid>``, :func:`mclir_basicsr.utils.temporary_path`)
    in ``folders`` whose writer process is gone: a run killed while saving leaves one per kill, up to a whole
    checkpoint. A file of a live process (another DDP rank, a concurrent run) is kept.

    Returns:
        list[tuple[str, int]]: ``(path, bytes)`` of each file removed, sorted by path.
    """
    removed = []
    for folder in folders:
        if not folder or not osp.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            match = TEMPORARY_FILE.match(name)
            path = osp.join(folder, name)
            if match is None or not osp.isfile(path) or process_alive(int(match.group('pid'))):
                continue
            try:
                size = osp.getsize(path)
                os.remove(path)
            except OSError:  # gone meanwhile (another rank cleaning), or not ours to remove: leave it
                continue
            removed.append((path, size))
    return removed
