"""Resume on CPU or GPU, relative to the experiment root, continuing mid-epoch exactly.

Replaces ``basicsr.train.load_resume_state`` and wraps ``create_train_val_dataloader`` (see :mod:`.fixes`):

* ``--auto_resume`` looks in ``<root>/experiments/<name>/training_states`` (``opt['path']['training_states']``),
  not relative to the current directory;
* states are loaded to the CPU (optimizers move them to their parameters' device), so no CUDA is needed;
* with ``--auto_resume``, a state that cannot be read, or whose network files are missing or unreadable, is
  skipped with a warning naming the file, and the previous one is used;
* an explicit ``path.resume_state`` that does not exist is an error naming the key, not a silent fresh start;
* the resumed epoch skips the batches trained on before the state was saved (BasicSR restarts the epoch);
* every start (resumed or not, before BasicSR archives an existing experiment folder) removes the temporary files
  that runs killed while saving left in ``models/`` and ``training_states/``, and prints what it removed and which
  state it resumes.
"""
import os.path as osp
import torch
import warnings
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.utils import check_resume

from ..training.experiment_files import (is_readable, load_tensors_only, remove_stale_temporaries, resume_network_files,
                                         saved_state_iters)
from ..utils import few


def find_latest_usable_state(opt):
    """Newest ``<iter>.state`` in the experiment's training_states whose state and network files load."""
    state_dir = opt['path']['training_states']
    for it in saved_state_iters(state_dir):
        path = osp.join(state_dir, f'{it}.state')
        bad = [p for p in [path] + resume_network_files(opt, it) if not is_readable(p)]
        if not bad:
            return path
        warnings.warn(f'auto_resume: skipping {path}: unreadable or missing {", ".join(bad)}; trying the previous '
                      f'state.')
    return None


def describe_removed(removed):
    """``removed 2 temporary file(s) of interrupted writes (1.5 MiB): [.8.state.tmp-41, .net_g_8.pth.tmp-41]``."""
    total = sum(size for _, size in removed)
    return (f'removed {len(removed)} temporary file(s) of interrupted writes ({total / 2**20:.1f} MiB): '
            f'{few(osp.basename(path) for path, _ in removed)}')


def load_resume_state(opt):
    """Drop-in for ``basicsr.train.load_resume_state``: returns the state dict or None.

    Called at every start of a training, before BasicSR creates or archives the experiment folder (its logger is
    not set up yet, so the report is printed): rank 0 first removes the temporary files of interrupted writes.
    """
    main_rank = opt.get('rank', 0) == 0
    removed = remove_stale_temporaries([opt['path'].get('models'), opt['path'].get('training_states')]) \
        if main_rank else []
    state = _read_resume_state(opt)
    if main_rank and (state is not None or removed):
        what = (f'Resume from {opt["path"]["resume_state"]} (iteration {state["iter"]})' if state is not None else
                f'Experiment {opt.get("name")}: start from scratch')
        print(what + (f'; {describe_removed(removed)}' if removed else '') + '.', flush=True)
    return state


def _read_resume_state(opt):
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


class ResumableSampler(EnlargedSampler):
    """BasicSR's EnlargedSampler that can skip the first ``n`` indices of one given epoch, once, and that takes its
    order from a dataset asking for balanced batches (``dataset.balanced`` and ``dataset.balanced_indices(count,
    seed)``, e.g. ``AllInOneDataset(balanced: true)``), seeded by epoch and rank like BasicSR's shuffle."""

    _skip = None

    def skip_once(self, epoch, n):
        self._skip = (epoch, n)

    def __iter__(self):
        if getattr(self.dataset, 'balanced', False):
            indices = iter(self.dataset.balanced_indices(self.num_samples, [self.epoch, self.rank]))
        else:
            indices = super().__iter__()
        if self._skip is not None and self._skip[0] == self.epoch:
            n, self._skip = self._skip[1], None
            return iter(list(indices)[n:])
        return indices


def batches_done_in_epoch(train_loader, state):
    """Batches of the state's epoch already trained on: epoch ``e`` covers iterations ``e*L+1 .. (e+1)*L``
    (``L`` batches per epoch, ``drop_last``), so ``iter - e*L`` of them are done (0 if none or the whole epoch)."""
    done = int(state['iter']) - int(state['epoch']) * len(train_loader)
    return done if 0 < done <= len(train_loader) else 0


def fast_forward_after_create(create):
    """Wrap ``basicsr.train.create_train_val_dataloader``: when resuming, the train sampler skips the batches of
    the current epoch that the saved run had already trained on, so the resumed run equals an uninterrupted one."""

    def create_then_fast_forward(opt, logger):
        result = create(opt, logger)
        train_loader, train_sampler = result[0], result[1]
        path = opt['path'].get('resume_state')  # set by load_resume_state, which BasicSR calls first
        if path and isinstance(train_sampler, ResumableSampler):
            state = load_tensors_only(path)
            done = batches_done_in_epoch(train_loader, state)
            if done:
                train_sampler.skip_once(int(state['epoch']), done * (train_loader.batch_size or 1))
                logger.info(f'Resume: skipping the {done} batches of the current epoch trained on before the state '
                            f'was saved.')
        return result

    return create_then_fast_forward


def loader_with_own_generator(build_dataloader):
    """Wrap ``build_dataloader``: a training loader draws the base seed of every epoch's iterator from a generator of
    its own (seeded by ``manual_seed`` and rank), not from torch's global one. Otherwise the iterator a resumed run
    creates right after restoring the random states takes one draw the uninterrupted run never took there, and every
    random torch operation of training after it (dropout, drop-path) differs."""

    def build(dataset, dataset_opt, num_gpu=1, dist=False, sampler=None, seed=None):
        loader = build_dataloader(dataset, dataset_opt, num_gpu, dist, sampler, seed)
        if dataset_opt.get('phase') == 'train':
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            loader.generator = torch.Generator().manual_seed((seed or 0) * 1000 + rank)
        return loader

    return build
