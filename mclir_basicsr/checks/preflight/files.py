"""Reading the files an option names, with errors that name the option key."""
import os
import os.path as osp

from ...training.experiment_files import load_tensors_only
from ..options import OptionError


def where(path):
    """`` (relative to the current directory X)`` for a relative ``path``: where it was looked for."""
    return '' if osp.isabs(path) else f' (relative to the current directory {os.getcwd()})'


def load_checked(path, key):
    """``torch.load(path, weights_only=True)`` as BasicSR's loaders will; any failure names ``key`` and the file.

    Raises:
        OptionError: the file cannot be read as a tensors-only checkpoint.
    """
    try:
        return load_tensors_only(path)
    except Exception as err:  # noqa: BLE001 - any failure: say which file and why
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OptionError(f'{key}: cannot read {path} with torch.load(weights_only=True): {first}. It must be a '
                          f'PyTorch checkpoint holding tensors only (e.g. a BasicSR net_g_*.pth).') from None
