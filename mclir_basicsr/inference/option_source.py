"""Where an option file's network and weights are: a test file's ``path.pretrain_network_g``, or the latest, best or
EMA weights of a training file's experiment (``mclir-restore -opt``)."""
import glob
import os
import os.path as osp
import re
import yaml

from ..checks.option_file import read_option_file
from ..checks.options import OptionError
from ..checks.repository_names import use_repository_names
from ..runtime.option_checks import REPOSITORIES
from ..utils import few

WHICH = ('latest', 'best', 'ema')
BEST_LINE = re.compile(r'# (\S+): [-+0-9.eEinfa]+\s+Best: [-+0-9.eEinfa]+ @ (\d+) iter')


class RestoreError(Exception):
    """Refused before anything runs: the message names the flag, key or file and says what to do."""


def _best_iteration(experiment):
    """``(iteration, at_end)`` of the best validation of the first metric in the newest training log (None
    without one); ``at_end``: it was BasicSR's validation after "End of training.", which scores the latest weights."""
    logs = sorted(glob.glob(osp.join(experiment, 'train_*.log')))
    if not logs:
        return None, False
    with open(logs[-1], errors='replace') as f:
        text = f.read()
    matches = BEST_LINE.findall(text)
    if not matches:
        return None, False
    first = matches[0][0]
    best = int([it for name, it in matches if name == first][-1])
    before_end = text.rsplit('End of training.', 1)[0] if 'End of training.' in text else text
    return best, (first, str(best)) not in BEST_LINE.findall(before_end)


def weights_from_option_file(opt_path, opt, which, experiments_root=None):
    """``(file, param key)`` of an option file: a test file's ``path.pretrain_network_g``, else the experiment's
    latest, best (first metric's best validation, from its log) or EMA weights."""
    path_opt = opt.get('path') or {}
    if 'train' not in opt and path_opt.get('pretrain_network_g'):
        if which != 'latest':
            raise RestoreError(f'--which {which} picks among a training experiment\'s files; {opt_path} is a test file '
                               f'naming path.pretrain_network_g (param_key_g chooses params or params_ema).')
        return path_opt['pretrain_network_g'], path_opt.get('param_key_g', 'params')
    name = opt.get('name')
    folders = [osp.join(experiments_root or 'experiments', str(name))]
    if osp.basename(osp.dirname(osp.abspath(opt_path))) == str(name):  # the copy BasicSR keeps in the experiment
        folders.insert(0, osp.dirname(osp.abspath(opt_path)))
    experiment = next((f for f in folders if osp.isdir(osp.join(f, 'models'))), None)
    if experiment is None:
        raise RestoreError(f'-opt {opt_path}: no trained weights of experiment "{name}" (looked in '
                           f'{" and ".join(osp.join(f, "models") for f in folders)}). Run from the folder where '
                           f'mclir-train ran, or pass --weights FILE.')
    models = osp.join(experiment, 'models')
    if which == 'best':
        best, at_end = _best_iteration(experiment)
        if best is None:
            raise RestoreError(f'--which best: the training log in {experiment} has no validation result; use '
                               f'--which latest.')
        path = osp.join(models, 'net_g_latest.pth' if at_end else f'net_g_{best}.pth')
        if not osp.isfile(path):
            saved = sorted(int(m) for m in re.findall(r'net_g_(\d+)\.pth', ' '.join(os.listdir(models))))
            raise RestoreError(f'--which best: the best validation was at iteration {best}, but no checkpoint was '
                               f'saved then (saved: {few(saved)}); use --which latest or a --weights file.')
        return path, 'params'
    path = osp.join(models, 'net_g_latest.pth')
    if not osp.isfile(path):
        saved = sorted(int(m) for m in re.findall(r'net_g_(\d+)\.pth', ' '.join(os.listdir(models))))
        if not saved:
            raise RestoreError(f'-opt {opt_path}: {models} holds no net_g_*.pth yet.')
        path = osp.join(models, f'net_g_{saved[-1]}.pth')
    return path, ('params_ema' if which == 'ema' else 'params')


def read_restorer_options(opt_path):
    """An option file read as the entry points read it (the repositories' names mapped to ours)."""
    try:
        opt = read_option_file(opt_path, '-opt', yaml.SafeLoader)
        use_repository_names(opt, REPOSITORIES)
    except OptionError as err:
        raise RestoreError(str(err)) from None
    if not isinstance(opt.get('network_g'), dict):
        raise RestoreError(f'-opt {opt_path}: no network_g block; give a BasicSR training or test option file.')
    return opt
