"""The BasicSR 1.4.2 fixes (mclir_basicsr.runtime.fixes) in process: applied once on import, each with its test, and
what they fix (no downloads, the VGG path, prefetch, test metrics, experiment folders, the root logger); the console
scripts declared. In fresh interpreters and through the console scripts: e2e/test_runtime.py."""
import ast
import glob
import json
import os.path as osp
import warnings

import pytest
import torch
import yaml

from mclir_basicsr.runtime import fixes
from mclir_basicsr.runtime.option_checks import fix_prefetch
from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features, vgg_source
from tests.helpers import ROOT


def test_shim_grayscale_matches_torchvision():
    from torchvision.transforms import functional as tvf
    from torchvision.transforms.functional_tensor import rgb_to_grayscale
    x = torch.rand(2, 3, 4, 4)
    assert torch.equal(rgb_to_grayscale(x), tvf.rgb_to_grayscale(x))


def _test_exists(ref):
    """``tests/<file>::<test>``, the file found by its name anywhere under tests/ (unit/..., e2e/)."""
    path, name = ref.split('::')
    files = glob.glob(osp.join(ROOT, 'tests', '**', osp.basename(path)), recursive=True)
    return any(isinstance(n, ast.FunctionDef) and n.name == name for f in files for n in ast.parse(open(f).read()).body)


def test_every_fix_is_listed_with_its_test_and_applied_once():
    runtime = [f for f in fixes.FIXES if f.replace is not None]
    assert len({f.name for f in fixes.FIXES}) == len(fixes.FIXES)
    assert all(fixes.is_applied(f) for f in runtime)  # by `import mclir_basicsr`
    missing = [f.test for f in fixes.FIXES if not _test_exists(f.test)]
    assert not missing
    objects = [getattr(*fixes._owner_and_name(f.target)) for f in runtime]
    assert fixes.install() == [f.name for f in runtime]
    assert [getattr(*fixes._owner_and_name(f.target)) for f in runtime] == objects  # idempotent: nothing rewrapped


def test_basicsr_perceptual_loss_never_downloads(tmp_path, monkeypatch):
    from basicsr.losses import build_loss
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth'):
        build_loss({'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1.0}})
    with vgg_source('random'):
        loss = build_loss({'type': 'PerceptualLoss', 'layer_weights': {'conv1_1': 1.0}, 'vgg_type': 'vgg11'})
    x = torch.rand(1, 3, 16, 16)
    percep, _ = loss(x, x.flip(-1))
    assert percep.item() > 0


def test_basicsr_vgg_pretrain_path_branch_loads_features(tmp_path, monkeypatch):
    """BasicSR's own branch for experiments/pretrained_models/vgg19-dcbb9e9d.pth loads a full VGG file."""
    from basicsr.archs import vgg_arch
    from basicsr.losses import build_loss
    torch.manual_seed(3)
    feats = build_torchvision_vgg_features('vgg11')
    state = {f'features.{k}': v for k, v in feats.state_dict().items()}
    state['classifier.0.weight'] = torch.zeros(2, 2)  # a full torchvision file also holds the classifier
    path = tmp_path / 'vgg.pth'
    torch.save(state, path)
    monkeypatch.setattr(vgg_arch, 'VGG_PRETRAIN_PATH', str(path))
    loss = build_loss({'type': 'PerceptualLoss', 'layer_weights': {'conv1_1': 1.0}, 'vgg_type': 'vgg11'})
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, feats[0].weight)


@pytest.mark.parametrize('mode, workers, num_gpu, expected', [
    ('cuda', 0, 0, None),
    ('cuda', 4, 1, 'cuda'),
    ('cpu', 0, 0, None),
    ('cpu', 2, 0, 'cpu'),
    (None, 0, 0, None),
])
def test_prefetch_fixes(mode, workers, num_gpu, expected):
    opt = {'num_gpu': num_gpu, 'datasets': {'train': {'prefetch_mode': mode, 'num_worker_per_gpu': workers}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        fix_prefetch(opt)
    assert opt['datasets']['train']['prefetch_mode'] == expected
    assert bool(caught) == (mode != expected)


def test_console_scripts_declared():
    from importlib.metadata import entry_points
    scripts = {e.name: e.value for e in entry_points(group='console_scripts') if e.name.startswith('mclir-')}
    assert scripts == {'mclir-train': 'mclir_basicsr.train:main', 'mclir-test': 'mclir_basicsr.test:main',
                       'mclir-demo': 'mclir_basicsr.cli.demo:main',
                       'mclir-make-lmdb': 'mclir_basicsr.data.lmdb_tools:main',
                       'mclir-demo-data': 'mclir_basicsr.data.demo_data:main',
                       'mclir-probe-degradation': 'mclir_basicsr.cli.probe:main',
                       'mclir-fetch-vgg': 'mclir_basicsr.cli.fetch_vgg:main',
                       'mclir-restore': 'mclir_basicsr.cli.restore:main'}


def test_test_metrics_per_dataset_and_their_average(tmp_path):
    """Outside training each test set's metrics go to metrics.json; with every set of the file done (one per
    degradation), an average row is added."""
    from types import SimpleNamespace

    from mclir_basicsr.runtime.model_hooks import write_test_metrics
    logged = []
    hook = write_test_metrics(lambda self, it, name, tb: logged.append(name))
    opt = {'is_train': False, 'path': {'results_root': str(tmp_path)},
           'datasets': {'test_1': {'name': 'noise_s25'}, 'test_2': {'name': 'rain'}}}
    hook(SimpleNamespace(opt=opt, metric_results={'psnr': 30.0, 'ssim': 0.8}), 'x', 'noise_s25', None)
    first = json.load(open(tmp_path / 'metrics.json'))
    assert first == {'noise_s25': {'psnr': 30.0, 'ssim': 0.8}}
    hook(SimpleNamespace(opt=opt, metric_results={'psnr': 36.0, 'ssim': 0.9}), 'x', 'rain', None)
    both = json.load(open(tmp_path / 'metrics.json'))
    assert list(both) == ['noise_s25', 'rain', 'average'] and logged == ['noise_s25', 'rain']
    assert both['average']['psnr'] == 33.0 and both['average']['ssim'] == pytest.approx(0.85)
    opt['is_train'] = True  # validation during training: nothing written
    (tmp_path / 'metrics.json').unlink()
    hook(SimpleNamespace(opt=opt, metric_results={'psnr': 1.0}), 1, 'rain', None)
    assert not (tmp_path / 'metrics.json').exists()


def test_split_imports():
    from mclir_basicsr.cli import split_imports
    assert split_imports(['-opt', 'x.yml', '--import', 'a.b,c', '--auto_resume', '--import', 'd']) == (
        ['a.b', 'c', 'd'], ['-opt', 'x.yml', '--auto_resume'])
    assert split_imports(['-opt', 'x.yml']) == ([], ['-opt', 'x.yml'])


def test_make_exp_dirs_leaves_plugin_file_keys_alone(tmp_path):
    """``path.pretrain_constyle`` (a file) stays a file; BasicSR's folders and an unknown key still become folders."""
    import basicsr.test
    import basicsr.train
    prompter = tmp_path / 'prompter.pth'
    prompter.write_bytes(b'weights')
    for module, root_key in ((basicsr.train, 'experiments_root'), (basicsr.test, 'results_root')):
        root = tmp_path / module.__name__
        opt = {'is_train': root_key == 'experiments_root', 'rank': 0, 'dist': False,
               'path': {root_key: str(root), 'models': str(root / 'models'), 'my_folder': str(root / 'mine'),
                        'pretrain_constyle': str(prompter), 'strict_load_constyle': True}}
        module.make_exp_dirs(opt)
        assert (root / 'models').is_dir() and (root / 'mine').is_dir()
        assert prompter.read_bytes() == b'weights'
        assert opt['path']['pretrain_constyle'] == str(prompter)  # the caller's options are unchanged


def test_option_checks_never_set_up_basicsr_root_logger(monkeypatch, tmp_path):
    """BasicSR sets its root logger up once (``initialized_logger``): a check that calls ``get_root_logger`` before
    ``init_loggers`` leaves the run without its log file. Every shipped training file and the authors' file (their
    class names warn while translating) are checked with the logger untouched."""
    from basicsr.utils import logger as basicsr_logger

    from mclir_basicsr.checks.options import check_options
    monkeypatch.setattr(basicsr_logger, 'initialized_logger', {})
    files = glob.glob(osp.join(ROOT, 'options', 'train', '**', '*.yml'), recursive=True)
    files += [osp.join(ROOT, 'tests', 'data', 'authors_FFANet_RESIDE_IN_fromScratch.yml')]
    for path in files:
        with open(path) as f:
            opt = yaml.safe_load(f)
        opt['is_train'] = True
        if '/dcpt/paper/' in path:  # builds the paper-sized network (seconds): the demo files cover DCPT
            continue
        opt['train']['use_grad_norm'] = 0.05  # an unread key of the authors': their classes warn about it
        if not opt['model_type'].startswith(('SRNeg', 'SwinIRNeg', 'ImageRestorationModel')):
            opt['train'].pop('use_grad_norm')
        check_options(opt)
        assert 'basicsr' not in basicsr_logger.initialized_logger, path


def test_reading_a_repository_s_file_never_sets_up_basicsr_root_logger(monkeypatch):
    """Reading the methods' repositories' files as ours (their names, their layout, their hook rule: a network is
    built to find its modules) happens before ``init_loggers`` too."""
    from basicsr.utils import logger as basicsr_logger

    from mclir_basicsr.checks.repository_names import use_repository_names
    from mclir_basicsr.runtime.option_checks import REPOSITORIES
    monkeypatch.setattr(basicsr_logger, 'initialized_logger', {})
    files = glob.glob(osp.join(ROOT, 'tests', 'data', '*', '**', '*.yml'), recursive=True)
    read = 0
    for path in files:
        with open(path) as f:
            opt = yaml.safe_load(f)
        read += use_repository_names(opt, REPOSITORIES) is not None
        assert 'basicsr' not in basicsr_logger.initialized_logger, path
    assert read == 31 + 78  # DCPT's and IRConStyle's files
