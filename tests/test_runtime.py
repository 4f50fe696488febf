"""The BasicSR 1.4.2 fixes (mclir_basicsr.runtime.fixes): applied once on import, each with its test, refused on
another BasicSR version, and reaching a project's own train.py; the console scripts' exit codes."""
import ast
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import warnings

import pytest
import torch
import yaml

from mclir_basicsr.runtime import fixes
from mclir_basicsr.runtime.option_checks import fix_prefetch
from mclir_basicsr.losses.vgg_weights import build_torchvision_vgg_features, vgg_source
from tests.conftest import ROOT
from tests.test_pipeline import write_options


@pytest.mark.e2e
def test_import_basicsr_after_plugin_in_fresh_interpreter():
    code = ('import mclir_basicsr, basicsr, basicsr.data.degradations\n'
            'from torchvision.transforms.functional_tensor import rgb_to_grayscale\n'
            'from basicsr.utils.registry import MODEL_REGISTRY, LOSS_REGISTRY\n'
            'assert "MCLIRModel" in MODEL_REGISTRY and "SPNLoss" in LOSS_REGISTRY\n'
            'print(basicsr.__version__)')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == '1.4.2'


def test_shim_grayscale_matches_torchvision():
    from torchvision.transforms import functional as tvf
    from torchvision.transforms.functional_tensor import rgb_to_grayscale
    x = torch.rand(2, 3, 4, 4)
    assert torch.equal(rgb_to_grayscale(x), tvf.rgb_to_grayscale(x))


def _test_exists(ref):
    path, name = ref.split('::')
    tree = ast.parse(open(osp.join(ROOT, path)).read())
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def test_every_fix_is_listed_with_its_test_and_applied_once():
    runtime = [f for f in fixes.FIXES if f.replace is not None]
    assert len({f.name for f in fixes.FIXES}) == len(fixes.FIXES)
    assert all(fixes.is_applied(f) for f in runtime)  # by `import mclir_basicsr`
    missing = [f.test for f in fixes.FIXES if not _test_exists(f.test)]
    assert not missing
    objects = [getattr(*fixes._owner_and_name(f.target)) for f in runtime]
    assert fixes.install() == [f.name for f in runtime]
    assert [getattr(*fixes._owner_and_name(f.target)) for f in runtime] == objects  # idempotent: nothing rewrapped


OTHER_VERSION = r'''
import json, sys, types, warnings
from torchvision.transforms import functional as tvf
shim = types.ModuleType('torchvision.transforms.functional_tensor')
shim.rgb_to_grayscale = tvf.rgb_to_grayscale
sys.modules[shim.__name__] = shim
import basicsr, basicsr.train
basicsr.__version__ = '1.5.0'
original = basicsr.train.load_resume_state
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    import mclir_basicsr
    from mclir_basicsr.runtime import fixes
print(json.dumps({'untouched': basicsr.train.load_resume_state is original,
                  'applied': [f.name for f in fixes.FIXES if f.replace and fixes.is_applied(f)],
                  'warnings': [str(w.message) for w in caught if 'basicsr 1.5.0 is installed' in str(w.message)]}))
'''


@pytest.mark.e2e
def test_other_basicsr_version_patches_nothing_and_says_what_is_unsupported():
    res = subprocess.run([sys.executable, '-c', OTHER_VERSION], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out['untouched'] and out['applied'] == [] and len(out['warnings']) == 1
    assert all(f'- {f.name}: ' in out['warnings'][0] for f in fixes.FIXES if f.replace is not None)


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


# ------------------------------------------------------------------------------ a project's own train.py (HAT-style)
OWN_TRAIN_PY = '''import os.path as osp

import mclir_basicsr  # noqa: F401  (the fixes for BasicSR 1.4.2; your own archs/models would be imported here too)
from basicsr.train import train_pipeline

if __name__ == '__main__':
    train_pipeline(osp.dirname(osp.abspath(__file__)))
'''


def _plain_sr_options(path, tiny_data, total_iter):
    """The demo's baseline setting: BasicSR's own SRModel, none of our keys."""
    write_options(path, tiny_data, name='own', total_iter=total_iter,
                  extra={'logger.save_checkpoint_freq': 2, 'val.val_freq': 100, 'model_type': 'SRModel'})
    opt = yaml.safe_load(open(path))
    del opt['train']['history'], opt['train']['spn_opt']
    yaml.safe_dump(opt, open(path, 'w'))


@pytest.mark.e2e
def test_auto_resume_on_cpu_through_basicsr_train_pipeline(tmp_path, tiny_data):
    """A project's own train.py that imports mclir_basicsr and calls BasicSR's train_pipeline (as HAT's does), run
    from another directory: --auto_resume works on CPU, relative to the project root, without archiving."""
    project, elsewhere = tmp_path / 'project', tmp_path / 'elsewhere'
    project.mkdir()
    elsewhere.mkdir()
    (project / 'train.py').write_text(OWN_TRAIN_PY)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='2')
    for total, extra in ((4, []), (6, ['--auto_resume'])):
        _plain_sr_options(project / 'train.yml', tiny_data, total)
        res = subprocess.run([sys.executable, str(project / 'train.py'), '-opt', str(project / 'train.yml')] + extra,
                             cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
    exp = project / 'experiments' / 'own'
    assert sorted(os.listdir(exp / 'training_states')) == ['2.state', '4.state', '6.state']
    assert not glob.glob(str(project / 'experiments' / 'own_archived_*')) and not (elsewhere / 'experiments').exists()


# ------------------------------------------------------------------------------ console scripts
CONSOLE = ('import sys\nfrom importlib.metadata import entry_points\n'
           '(ep, ) = entry_points(group="console_scripts", name=sys.argv[1])\n'
           'sys.argv = sys.argv[1:]\nsys.exit(ep.load()())\n')


def console(name, args, cwd):
    """Run console script ``name`` exactly as its installed wrapper does: ``sys.exit(main())``."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='2')
    return subprocess.run([sys.executable, '-c', CONSOLE, name] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_console_scripts_declared():
    from importlib.metadata import entry_points
    scripts = {e.name: e.value for e in entry_points(group='console_scripts') if e.name.startswith('mclir-')}
    assert scripts == {'mclir-train': 'mclir_basicsr.train:main', 'mclir-test': 'mclir_basicsr.test:main',
                       'mclir-demo': 'mclir_basicsr.cli.demo:main',
                       'mclir-make-lmdb': 'mclir_basicsr.data.lmdb_tools:main',
                       'mclir-demo-data': 'mclir_basicsr.data.demo_data:main',
                       'mclir-probe-degradation': 'mclir_basicsr.cli.probe:main',
                       'mclir-fetch-vgg': 'mclir_basicsr.cli.fetch_vgg:main'}


@pytest.mark.e2e
def test_mclir_make_lmdb_exit_codes(tmp_path, tiny_data):
    args = ['--gt', str(tiny_data / 'val' / 'gt'), '--lq', str(tiny_data / 'val' / 'lq'), '--out-gt', 'g.lmdb',
            '--out-lq', 'q.lmdb', '--quiet']
    ok = console('mclir-make-lmdb', args, tmp_path)
    assert ok.returncode == 0 and ok.stderr == '', ok.stderr
    again = console('mclir-make-lmdb', args, tmp_path)  # outputs exist: refused, nothing changed
    assert again.returncode == 2 and 'already exists' in again.stderr


@pytest.mark.e2e
def test_mclir_demo_data_exit_codes(tmp_path):
    ok = console('mclir-demo-data', ['--root', 'demo', '--tasks', 'dn_s25'], tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (tmp_path / 'demo' / 'dn_s25' / 'manifest.json').exists()
    bad = console('mclir-demo-data', ['--root', 'demo', '--tasks', 'sr_x5'], tmp_path)
    assert bad.returncode == 2


def _test_options(path, tiny_data, weights):
    opt = yaml.safe_load(open(osp.join(ROOT, 'options', 'test', 'demo', 'test_MCLIR_EDSR_SRx2_demo.yml')))
    opt.update(name='console_test', num_gpu=0)
    opt['network_g'].update(num_feat=8, num_block=1)
    val = tiny_data / 'val'
    opt['datasets']['test_1'].update(dataroot_gt=str(val / 'gt'), dataroot_lq=str(val / 'lq'))
    opt['path']['pretrain_network_g'] = str(weights)
    yaml.safe_dump(opt, open(path, 'w'))


@pytest.mark.e2e
def test_mclir_train_and_mclir_test_exit_codes(tmp_path, tiny_data):
    write_options(tmp_path / 'train.yml', tiny_data, name='console', total_iter=2,
                  extra={'logger.save_checkpoint_freq': 2, 'val.val_freq': 100})
    ok = console('mclir-train', ['-opt', 'train.yml'], tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    weights = tmp_path / 'experiments' / 'console' / 'models' / 'net_g_latest.pth'
    _test_options(tmp_path / 'test.yml', tiny_data, weights)
    ok = console('mclir-test', ['-opt', 'test.yml'], tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert 'psnr' in json.load(open(tmp_path / 'results' / 'console_test' / 'metrics.json'))['demo_sr_x2_val']
    bad = console('mclir-train', ['-opt', 'train.yml', '--force_yml', 'train:total_iter=abc'], tmp_path)
    assert bad.returncode != 0


@pytest.mark.e2e
def test_test_pipeline_refuses_missing_weights_cleanly(tmp_path, tiny_data):
    """mclir-test with a missing pretrain_network_g: exit 1, a key-named message, and no results folder made."""
    _test_options(tmp_path / 'test.yml', tiny_data, tmp_path / 'missing.pth')
    res = console('mclir-test', ['-opt', 'test.yml'], tmp_path)
    assert res.returncode == 1 and 'Traceback' not in res.stderr
    assert res.stderr.startswith('mclir-test: option error: path.pretrain_network_g: ')
    assert not (tmp_path / 'results').exists()


@pytest.mark.e2e
def test_mclir_demo_exit_codes(tmp_path):
    """The demo with 2 iterations per arm, in a scratch folder that sees the project's options/."""
    os.symlink(osp.join(ROOT, 'options'), tmp_path / 'options')
    ok = console('mclir-demo', ['--task', 'dn_s25', '--iters', '2'], tmp_path)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-3000:]
    rows = json.load(open(tmp_path / 'results' / 'demo_summary.json'))
    assert [r['task'] for r in rows] == ['dn_s25'] * 3 and all(0 < r['ssim'] <= 1 for r in rows)
    assert 'SPN uses random VGG features (no experiments/pretrained_models/vgg16-397923af.pth' in ok.stdout
    assert (tmp_path / 'results' / 'demo_curves.png').stat().st_size > 1000  # validation PSNR vs iteration
    bad = console('mclir-demo', [], tmp_path / 'results')  # not the project root: no options/
    assert bad.returncode != 0 and 'run it from the project root' in bad.stderr


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


THIRD_PARTY = '''from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class ThirdPartyTestModel(SRModel):
    """A third-party model class that only changes test(), as HAT's does."""
'''


def test_split_imports():
    from mclir_basicsr.cli import split_imports
    assert split_imports(['-opt', 'x.yml', '--import', 'a.b,c', '--auto_resume', '--import', 'd']) == (
        ['a.b', 'c', 'd'], ['-opt', 'x.yml', '--auto_resume'])
    assert split_imports(['-opt', 'x.yml']) == ([], ['-opt', 'x.yml'])


@pytest.mark.e2e
def test_import_flag_brings_third_party_registries_to_our_entry_point(tmp_path, tiny_data):
    """mclir-train --import MODULE: base_model_type from another package, with our checks and fixes."""
    (tmp_path / 'thirdparty_pkg.py').write_text(THIRD_PARTY)
    write_options(tmp_path / 'train.yml', tiny_data, name='third', total_iter=2,
                  extra={'logger.save_checkpoint_freq': 2, 'val.val_freq': 100,
                         'base_model_type': 'ThirdPartyTestModel'})
    env_path = os.pathsep.join([ROOT, str(tmp_path)])
    env = dict(os.environ, PYTHONPATH=env_path, OMP_NUM_THREADS='2')
    run = [sys.executable, '-c', CONSOLE, 'mclir-train', '-opt', 'train.yml']
    without = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert without.returncode == 1 and "base_model_type 'ThirdPartyTestModel' is not a registered model" in \
        without.stderr and not (tmp_path / 'experiments').exists()
    ok = subprocess.run(run + ['--import', 'thirdparty_pkg'], cwd=tmp_path, env=env, capture_output=True, text=True,
                        timeout=600)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (tmp_path / 'experiments' / 'third' / 'training_states' / '2.state').exists()
    missing = subprocess.run(run + ['--import', 'no_such_pkg'], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
    assert missing.returncode == 1 and missing.stderr.startswith('mclir-train: --import no_such_pkg: ')


@pytest.mark.e2e
def test_mclir_demo_all_in_one_prints_one_row_per_degradation(tmp_path):
    """The all-in-one demo with --dsrir (2 iterations per arm): AllInOneDataset, NAFNet, DSRIR, one test set per
    degradation."""
    os.symlink(osp.join(ROOT, 'options'), tmp_path / 'options')
    ok = console('mclir-demo', ['--task', 'all_in_one', '--iters', '2', '--dsrir'], tmp_path)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-3000:]
    rows = json.load(open(tmp_path / 'results' / 'demo_summary.json'))
    sets = ['denoise_s15', 'denoise_s25', 'denoise_s50', 'derain', 'dehaze', 'average']
    assert [r['task'] for r in rows] == [f'all_in_one: {s}' for s in sets] * 3
    assert rows[-1]['method'].startswith('DSRIR')
    metrics = json.load(open(tmp_path / 'results' / 'MCLIR_NAFNet_AIO3_demo' / 'metrics.json'))
    assert metrics['average']['psnr'] == pytest.approx(sum(metrics[s]['psnr'] for s in sets[:-1]) / 5)
    assert 'average' in json.load(open(tmp_path / 'results' / 'DSRIR_AIO3_demo' / 'metrics.json'))
    bad = console('mclir-demo', ['--task', 'sr_x2', '--dsrir'], tmp_path)
    assert bad.returncode == 2 and '--dsrir adds an arm to the all_in_one task' in bad.stderr


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
