"""The BasicSR 1.4.2 fixes (mclir_basicsr.runtime.fixes) in fresh interpreters: importing basicsr after the plugin,
refused on another BasicSR version, reaching a project's own train.py, third-party registries through --import;
the console scripts' exit codes. The fixes in process: unit/runtime/test_runtime.py."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import yaml

from mclir_basicsr.runtime import fixes
from tests.helpers import CONSOLE, ROOT, console, write_options


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
def test_force_yml_manual_seed_seeds_the_run(tmp_path, tiny_data):
    """BasicSR seeds before it applies --force_yml; ours seeds again, so ``--force_yml manual_seed=11`` trains as a
    file that says 11 (the demo's seeds rely on it), and not as the file's own seed."""
    import torch

    def weights(name, seed, force=()):
        write_options(tmp_path / f'{name}.yml', tiny_data, name=name, total_iter=1,
                      extra={'logger.save_checkpoint_freq': 1, 'val.val_freq': 100, 'manual_seed': seed})
        ok = console('mclir-train', ['-opt', f'{name}.yml'] + (['--force_yml', *force] if force else []), tmp_path)
        assert ok.returncode == 0, ok.stderr[-3000:]
        path = tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth'
        return torch.load(path, map_location='cpu', weights_only=True)['params']

    forced = weights('forced', 10, ['manual_seed=11'])
    eleven, ten = weights('eleven', 11), weights('ten', 10)
    assert all(torch.equal(forced[k], eleven[k]) for k in eleven)
    assert not all(torch.equal(ten[k], eleven[k]) for k in eleven)


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
    ok = console('mclir-demo', ['--task', 'dn_s25', '--iters', '2', '--seeds', '2'], tmp_path)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-3000:]
    rows = json.load(open(tmp_path / 'results' / 'demo_summary.json'))
    assert [r['task'] for r in rows] == ['dn_s25'] * 5 and all(0 < r['ssim'] <= 1 for r in rows)
    assert [r['seed'] for r in rows] == [None, 10, 10, 11, 11]
    assert rows[3]['psnr'] != rows[1]['psnr']  # another seed, another run
    for name in ('EDSR_DNs25_demo_baseline_seed11', 'MCLIR_EDSR_DNs25_demo_seed11'):
        assert (tmp_path / 'results' / name / 'metrics.json').is_file()
    summary = open(tmp_path / 'results' / 'demo_summary.md').read()
    assert '| dn_s25                   | SPN - baseline             |' in summary
    assert 'dn_s25: seeds alone move baseline over ' in summary and ' over 2 seeds)' in summary
    assert 'SPN uses random VGG features (no experiments/pretrained_models/vgg16-397923af.pth' in ok.stdout
    assert (tmp_path / 'results' / 'demo_curves.png').stat().st_size > 1000  # validation PSNR vs iteration
    bad = console('mclir-demo', [], tmp_path / 'results')  # not the project root: no options/
    assert bad.returncode != 0 and 'run it from the project root' in bad.stderr


THIRD_PARTY = '''from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class ThirdPartyTestModel(SRModel):
    """A third-party model class that only changes test(), as HAT's does."""
'''


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
    ok = console('mclir-demo', ['--task', 'all_in_one', '--iters', '2', '--dsrir', '--seeds', '1'], tmp_path)
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
    bad = console('mclir-demo', ['--seeds', '0'], tmp_path)
    assert bad.returncode == 2 and '--seeds 0: give 1 or more' in bad.stderr
    summary = open(tmp_path / 'results' / 'demo_summary.md').read()
    assert 'from one seed, which cannot separate an effect from seed noise: run with --seeds 3' in summary
