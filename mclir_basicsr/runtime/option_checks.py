"""What happens right before and after BasicSR parses an option file, before it creates or renames any folder."""
import sys
import warnings
from basicsr.utils import set_random_seed

from ..checks.blocks import check_typed_blocks, numbers_from_text
from ..checks.option_file import check_basicsr_arguments
from ..checks.options import OptionError, check_options
from ..checks.preflight import check_inputs
from ..checks.repository_names import use_repository_names
from ..methods.constyle.irconstyle_files import IRCONSTYLE
from ..methods.dcpt.dcpt_files import DCPT
from ..training.lr_schedulers import check_scheduler_options
from ..training.optimizers import check_optimizer_options


def fix_prefetch(opt):
    """Post-process parsed options for this machine; returns ``opt`` (changed in place).

    * ``prefetch_mode: cuda`` without a GPU: BasicSR's CUDAPrefetcher would crash; use the plain loader.
    * ``prefetch_mode: cpu`` with ``num_worker_per_gpu: 0``: BasicSR's PrefetchDataLoader starts a second reader
      thread on the same dataset object at the first epoch; the lazily opened file client races
      (``KeyError: 'type'`` in the thread) and the training loop then waits forever. Use the plain loader.
    """
    train_set = (opt.get('datasets') or {}).get('train')
    if train_set is None:
        return opt
    mode = train_set.get('prefetch_mode')
    if mode == 'cuda' and opt.get('num_gpu', 0) == 0:
        warnings.warn('datasets.train.prefetch_mode is cuda but no GPU is used (num_gpu: 0): using the CPU '
                      'prefetcher instead.')
        train_set['prefetch_mode'] = None
    elif mode == 'cpu' and not train_set.get('num_worker_per_gpu'):
        warnings.warn('datasets.train.prefetch_mode: cpu with num_worker_per_gpu: 0 hangs in BasicSR 1.4.2 (two '
                      'threads read one dataset); using the plain CPU prefetcher instead.')
        train_set['prefetch_mode'] = None
    return opt


REPOSITORIES = (IRCONSTYLE, DCPT)  # the repositories whose option files are read by their own names

# dataset keys of older BasicSR versions (and of the repositories forked from them: NAFNet) -> BasicSR 1.4.2's
OLDER_DATASET_KEYS = {'use_flip': 'use_hflip'}


def rename_older_dataset_keys(opt):
    """``datasets.<phase>.use_flip`` (BasicSR before 1.3, NAFNet's files) is 1.4.2's ``use_hflip``, which
    ``PairedImageDataset`` reads with ``opt['use_hflip']`` (a KeyError in the first batch without it). Giving both
    is refused."""
    for phase, ds in (opt.get('datasets') or {}).items():
        if not isinstance(ds, dict):
            continue
        for old, new in OLDER_DATASET_KEYS.items():
            if old in ds and new in ds:
                raise OptionError(f'datasets.{phase}.{old} and datasets.{phase}.{new} are both given: {old} is the '
                                  f'older name of {new}; keep {new}.')
            if old in ds:
                ds[new] = ds.pop(old)
    return opt


def check_parsed(opt):
    """Everything checked right after parsing: the names of a methods' repository's file read as this plugin's, the
    prefetch fallback, numbers YAML read as text, the optimizers
    and the scheduler (training), every typed block built, our keys and the model class's own checks, then the data,
    checkpoints and weight files."""
    use_repository_names(opt, REPOSITORIES)
    fix_prefetch(opt)
    rename_older_dataset_keys(opt)
    numbers_from_text(opt)
    if opt.get('is_train', True):
        check_optimizer_options(opt)
        check_scheduler_options(opt)
    check_typed_blocks(opt)
    check_options(opt)
    check_inputs(opt)
    return opt


def reseed(opt):
    """Seed the global generators again from the final ``manual_seed``: BasicSR's ``parse_options`` seeds them before
    it applies ``--force_yml``, so ``--force_yml manual_seed=N`` changed the logged seed but not the run. Seeding
    again with an unchanged seed leaves the run as it was."""
    seed = opt.get('manual_seed')
    if isinstance(seed, int) and not isinstance(seed, bool):  # anything else is refused by check_parsed
        set_random_seed(seed + opt.get('rank', 0))


def check_after_parse(parse_options):
    """Wrap ``parse_options``: the command line's option file and ``--force_yml`` entries checked before it reads
    them, :func:`check_parsed` after; both before anything is written."""

    def parse_and_check(root_path, is_train=True):
        check_basicsr_arguments(sys.argv[1:])  # the file and --force_yml, which parse_options reads from sys.argv
        opt, args = parse_options(root_path, is_train=is_train)
        reseed(opt)
        return check_parsed(opt), args

    return parse_and_check
