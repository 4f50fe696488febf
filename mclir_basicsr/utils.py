"""Small shared helpers."""
import os
import signal
import time

import torch

# Fault injection for the reliability tests: SIGKILL in the middle of writing a file whose name ends with this.
_KILL_IN_SAVE = os.environ.get('MCLIR_DEBUG_SIGKILL_IN_SAVE')


WRAPPER_PREFIXES = ('module.', '_orig_mod.')  # DataParallel / DDP, and torch.compile's OptimizedModule


def strip_wrapper_prefixes(key):
    """``module._orig_mod.conv.weight`` -> ``conv.weight``: the state-dict key of the bare network."""
    key = str(key)
    while key.startswith(WRAPPER_PREFIXES):
        key = key.split('.', 1)[1]
    return key


def atomic_torch_save(obj, path, retries=3):
    """``torch.save`` to ``path`` atomically: write a temporary file beside it, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the complete new one, never a partial file under
    ``path``. Transient errors are retried ``retries`` times, then raised (a lost checkpoint is not ignored).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f'.{os.path.basename(path)}.tmp-{os.getpid()}')
    for attempt in range(1, retries + 1):
        try:
            with open(tmp, 'wb') as f:
                torch.save(obj, f)
                if _KILL_IN_SAVE and path.endswith(_KILL_IN_SAVE):
                    f.truncate(f.tell() // 2)
                    f.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            try:  # make the rename itself durable
                dir_fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            except OSError:
                pass
            return
        except OSError:
            if os.path.exists(tmp):
                os.remove(tmp)
            if attempt == retries:
                raise
            time.sleep(1)
