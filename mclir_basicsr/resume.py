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
    remember_resume_position(state)
    return state


# ------------------------------------------------------------------------------------------------------------------
# Exact continuation: random-number states and the position inside the current epoch
# ------------------------------------------------------------------------------------------------------------------
def capture_rng_state():
    """Python, NumPy and torch (CPU and CUDA) random states as plain, ``weights_only``-loadable values."""
    import random

    import numpy as np
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        'python': [version, list(internal), gauss],
        'numpy': [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    import random

    import numpy as np
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


_resume_position = {}


def remember_resume_position(state):
    """Called when a state is loaded: the training-data position to continue from (epoch, iter)."""
    _resume_position.clear()
    _resume_position.update(epoch=int(state['epoch']), iter=int(state['iter']))


def fast_forward_sampler(train_loader, train_sampler, batch_size):
    """Make the resumed epoch skip the batches already trained on before the state was saved.

    BasicSR restarts the saved epoch from its first batch, so a resumed run trains again on data it has seen
    and differs from an uninterrupted one. Epoch ``e`` covers iterations ``e*L+1 .. (e+1)*L`` (``L`` batches per
    epoch, ``drop_last``), so ``iter - e*L`` batches of it are done. Returns the number of batches skipped.
    """
    if not _resume_position or train_sampler is None:
        return 0
    pos = dict(_resume_position)
    _resume_position.clear()
    per_epoch = len(train_loader)
    done = pos['iter'] - pos['epoch'] * per_epoch
    if not 0 < done <= per_epoch:
        return 0
    train_sampler.skip_once(pos['epoch'], done * batch_size)
    return done


def resumable_sampler_class():
    from basicsr.data.data_sampler import EnlargedSampler

    class ResumableSampler(EnlargedSampler):
        """BasicSR's EnlargedSampler that can skip the first ``n`` indices of one given epoch, once."""

        _skip = None

        def skip_once(self, epoch, n):
            self._skip = (epoch, n)

        def __iter__(self):
            indices = super().__iter__()
            if self._skip is not None and self._skip[0] == self.epoch:
                n, self._skip = self._skip[1], None
                return iter(list(indices)[n:])
            return indices

    return ResumableSampler


def wrap_create_loaders(create):
    """Wrap ``basicsr.train.create_train_val_dataloader`` so that a resumed run continues mid-epoch exactly."""

    def create_and_fast_forward(opt, logger):
        result = create(opt, logger)
        train_loader, train_sampler = result[0], result[1]
        skipped = fast_forward_sampler(train_loader, train_sampler, train_loader.batch_size or 1)
        if skipped:
            logger.info(f'Resume: skipping the {skipped} batches of the current epoch trained on before the state '
                        f'was saved.')
        return result

    create_and_fast_forward._mclir_wrapped = True
    return create_and_fast_forward
