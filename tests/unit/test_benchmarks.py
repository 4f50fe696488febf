"""The benchmark scripts' option generation and bookkeeping (their timings and PSNRs are not unit-tested)."""
import ast
import copy
import importlib.util
import os.path as osp

import pytest

from mclir_basicsr.checks.options import check_options
from benchmarks import quality, quality_arms, quality_report
from tests.conftest import ROOT

SCRIPTS = ('quality', 'step_cost', 'step_cost_families', 'dcpt_quality', 'dcpt_probe', 'dsrir_quality',
           'constyle_quality', 'loader', 'preflight_cost', 'bad_input_sweep', 'reproduce', 'from_scratch', 'photo_data')


@pytest.fixture(scope='module')
def step_cost_arms():
    from benchmarks import step_cost_arms  # registers BenchAuthorsStyleModel: only for the tests that build arms
    return step_cost_arms


@pytest.mark.parametrize('name', SCRIPTS)
def test_every_script_runs_as_a_module_of_the_benchmarks_package(name):
    """Each script is ``python -m benchmarks.<name>`` (its docstring says so) and none edits sys.path."""
    path = osp.join(ROOT, 'benchmarks', f'{name}.py')
    with open(path) as f:
        text = f.read()
    assert importlib.util.find_spec(f'benchmarks.{name}').origin == path
    assert f'python -m benchmarks.{name}' in ast.get_docstring(ast.parse(text))
    assert 'sys.path' not in text


def _diff(a, b, prefix=''):
    """Key paths where two nested dicts differ."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f'{prefix}{k}.')
        elif va != vb:
            out.append(f'{prefix}{k}')
    return out


@pytest.mark.parametrize('task', ['sr_x2', 'dn_s25', 'dehaze'])
@pytest.mark.parametrize('scale', ['cpu', 'gpu'])
def test_quality_arms_differ_only_where_the_protocol_says(task, scale):
    kw = dict(iters=200, seed=11, lr=1e-4, val_freq=25, pretrain='/base.pth', scale=scale)
    arms = {arm: quality_arms.make_options(task, arm, 'n', **kw) for arm in quality_arms.ARMS}
    for opt in arms.values():
        check_options(copy.deepcopy(opt))  # our keys are valid in every generated file
        assert opt['train']['total_iter'] == 200 and opt['manual_seed'] == 11
        assert opt['path']['pretrain_network_g'] == '/base.pth' and opt['val']['val_freq'] == 25
        assert opt['train']['scheduler']['milestones'] == [2000]  # constant rate while fine-tuning
        assert opt['num_gpu'] == (1 if scale == 'gpu' else 0)
        assert opt['network_g']['num_feat'] == (64 if scale == 'gpu' else 16 if task == 'dehaze' else 32)
        for ds in opt['datasets'].values():  # every data folder absolute: the runs train in their own folders
            for entry in [ds] + ds.get('tasks', []):
                assert all(osp.isabs(v) for k, v in entry.items() if k.startswith('dataroot')), entry
    assert set(_diff(arms['l1'], arms['spn_sub'])) == {'model_type', 'train.history', 'train.spn_opt'}
    assert _diff(arms['spn_sub'], arms['spn_ratio']) == ['train.spn_opt.form', 'train.spn_opt.lq_negative']
    assert arms['spn_sub']['train']['spn_opt']['vgg_weights'] == 'random'


def test_quality_sweep_changes_land_in_the_options():
    kw = dict(iters=10, seed=10, lr=1e-4, val_freq=5)
    base = quality_arms.make_options('sr_x2', 'spn_sub', 'n', **kw)
    for arm, changes in quality_arms.SWEEP:
        opt = quality_arms.make_options('sr_x2', arm, 'n', spn_changes=changes, **kw)
        check_options(copy.deepcopy(opt))
        diff = _diff(quality_arms.make_options('sr_x2', arm, 'n', **kw), opt)
        if 'loss_weight' in changes:
            assert diff == ['train.spn_opt.loss_weight'] and opt['train']['spn_opt']['loss_weight'] == changes[
                'loss_weight']
        elif 'history_periods' in changes:
            assert [c['period'] for c in opt['train']['history']['copies']] == changes['history_periods']
        else:
            assert diff == ['train.history.negatives'] and opt['train']['history']['negatives'] == 'round_robin'
    assert base['train']['history'].get('negatives') is None  # the main arm keeps the authors' default


def test_quality_extra_arms_change_only_their_own_keys():
    kw = dict(iters=10, seed=10, lr=1e-4, val_freq=5)
    authors = quality_arms.make_options('dehaze', 'spn_authors', 'n', **kw)
    assert authors['train']['spn_opt']['loss_weight'] == 0.001
    assert _diff(quality_arms.make_options('dehaze', 'spn_sub', 'n', **kw), authors) == ['train.spn_opt.loss_weight']
    for arm, extra in quality_arms.EXTRA_ARMS.items():
        opt = quality_arms.make_options('dehaze', arm, 'n', **kw)
        check_options(copy.deepcopy(opt))  # loss_weight auto, target_ratio, adaptive, ...: all valid keys
        wanted = {f'train.{block}.{key}' for block in ('history', 'spn_opt') for key in extra.get(block, {})}
        wanted |= {'train.uncertainty_opt'} if 'uncertainty_opt' in extra else set()
        assert {d if not d.startswith('train.uncertainty_opt') else 'train.uncertainty_opt'
                for d in _diff(authors, opt)} == wanted, arm
    assert quality_arms.make_options('dehaze', 'auto0.03', 'n', **kw)['train']['spn_opt']['target_ratio'] == 0.03
    assert quality_arms.make_options('dehaze', 'spn_sub', 'n', **kw)['train']['spn_opt']['loss_weight'] == 0.01
    assert set(quality_arms.WEIGHT_ARMS) <= set(quality_arms.ARM_LABELS) and quality_arms.WEIGHT_ARMS[0] == 'l1'


def test_quality_input_metrics_of_the_demo_tasks_come_from_the_demo(monkeypatch):
    import mclir_basicsr.cli.demo
    monkeypatch.setattr(mclir_basicsr.cli.demo, 'input_metrics', lambda root, task: (root, task))
    assert quality_arms.input_metrics('dn_s25') == (quality_arms.DATA_ROOT, 'dn_s25')


def test_quality_input_metrics_of_the_dehazing_task(aio_data, tmp_path, monkeypatch):
    """The hazy input's PSNR/SSIM: the validation pairs as AllInOneDataset reads them, equal to a direct reading of
    SOTS's layout (hazy/NNNN_A_beta.png <-> gt/NNNN.png)."""
    import glob

    import cv2
    import numpy as np
    from basicsr.metrics import calculate_psnr, calculate_ssim
    (tmp_path / 'datasets' / 'demo').mkdir(parents=True)
    (tmp_path / 'datasets' / 'demo' / 'all_in_one').symlink_to(aio_data)
    (tmp_path / 'options').symlink_to(osp.join(ROOT, 'options'))
    monkeypatch.setattr(quality_arms, 'ROOT', str(tmp_path))
    got = quality_arms.input_metrics('dehaze')
    val = aio_data / 'val' / 'dehaze'
    psnrs, ssims = [], []
    for hazy in sorted(glob.glob(str(val / 'hazy' / '*.png'))):
        gt = cv2.imread(str(val / 'gt' / (osp.basename(hazy).split('_')[0] + '.png')))
        psnrs.append(calculate_psnr(cv2.imread(hazy), gt, crop_border=0))
        ssims.append(calculate_ssim(cv2.imread(hazy), gt, crop_border=0))
    assert len(psnrs) >= 2
    assert got == pytest.approx({'psnr': np.mean(psnrs), 'ssim': np.mean(ssims)})


def test_quality_vgg_weights_option(tmp_path):
    opt = quality_arms.make_options('sr_x2', 'spn_sub', 'n', 10, 10, 1e-4, 5, vgg_weights='vgg16.pth')
    assert opt['train']['spn_opt']['vgg_weights'] == osp.abspath('vgg16.pth')
    assert 'spn_opt' not in quality_arms.make_options('sr_x2', 'l1', 'n', 10, 10, 1e-4, 5, vgg_weights='x')['train']


def test_quality_summary_per_seed_mean_spread_and_difference():
    runs = {}
    for arm, psnrs in (('l1', [30.0, 30.2, 30.1]), ('spn_sub', [30.1, 30.2, 30.4])):
        for seed, p in zip((1, 2, 3), psnrs):
            runs[(arm, seed)] = {'final': {'psnr': p, 'ssim': p / 100}, 'seconds': 2.0}
    runs[('spn_sub', 2)]['curve'] = {'spn_ratio': [(5, 0.02), (10, 0.05)], 'spn_weight': [(5, 0.001), (10, 0.002)]}
    runs[('spn_sub', 3)]['curve'] = {'spn_ratio': [(10, 0.01)], 'spn_weight': [(10, 0.003)]}
    out = quality_report.summarise(runs, ['l1', 'spn_sub'], [1, 2, 3])
    assert out['spn_sub']['spn_ratio_range'] == [0.01, 0.05] and 'spn_ratio_range' not in out['l1']
    assert out['spn_sub']['spn_weight_final'] == {'2': 0.002, '3': 0.003}
    assert out['l1']['psnr_mean'] == pytest.approx(30.1) and out['l1']['psnr_std'] == pytest.approx(0.1)
    assert out['spn_sub']['psnr_range'] == pytest.approx(0.3)
    assert out['spn_sub']['psnr_diff_vs_l1'] == pytest.approx({'1': 0.1, '2': 0.0, '3': 0.3})
    assert out['spn_sub']['psnr_diff_mean'] == pytest.approx(0.4 / 3)


@pytest.mark.parametrize('argv', [['--task', 'sr_x2,dehaz'], ['--arms', 'spn_sub'], ['--arms', 'l1,auto0.5']])
def test_quality_bad_task_or_arm_refused_before_any_run(argv, capsys):
    with pytest.raises(SystemExit):
        quality.main(argv)
    assert argv[1] in capsys.readouterr().err


def test_quality_gpu_scale_refused_without_cuda(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit):
        quality.main(['--scale', 'gpu'])


@pytest.mark.e2e  # slow (seconds): outside the fast unit tier
def test_step_cost_arms_build_as_described(step_cost_arms, tmp_path):
    models = {a: step_cost_arms.build_arm('tiny', a, str(tmp_path / a), 'cpu')
              for a in ('Ds', 'Cb', 'Cf', 'Cc', 'F', 'F0')}
    assert models['Ds'].history.negatives_mode == 'round_robin' and len(models['Ds'].history) == 4
    assert models['Cb'].precision.dtype.is_floating_point and not models['Cb'].precision.scaling
    assert models['Cf'].precision.scaling
    assert models['Cc'].train_net_g is not models['Cc'].net_g
    assert models['F'].shared_vgg is not None and models['F0'].shared_vgg is None
    assert models['F'].cri_perceptual is not None and models['F0'].cri_perceptual is not None


@pytest.mark.e2e  # a subprocess builds a model and takes a step
def test_step_cost_memory_runs_each_arm_in_its_own_process(step_cost_arms):
    """``python -m benchmarks.step_cost --_memory tiny:A`` from the repository root: one peak, no history copies."""
    from benchmarks import step_cost_measure
    out = step_cost_measure.measure_memory('tiny', ['A'], 1, 'cpu', 1)
    assert set(out) == {'A'} and out['A']['arm'] == 'A' and out['A']['copies_nbytes'] == 0
    assert out['A']['peak_delta_bytes'] > 0


@pytest.mark.e2e  # slow (a real loader and training steps): outside the fast unit tier
def test_loader_benchmark_measures_a_real_loader_and_step(tmp_path):
    """benchmarks/loader.py: its dataset options pass the dataset's checks, and both rates come out positive on
    a tiny folder (2 batches, 1 step)."""
    import cv2
    import numpy as np

    from benchmarks import loader
    from mclir_basicsr.data.all_in_one_dataset import AllInOneDataset
    rng = np.random.default_rng(0)
    for sub in ('blur', 'sharp'):
        (tmp_path / 'deblur' / sub).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(tmp_path / 'deblur' / sub / f'{i}.png'), rng.integers(0, 256, (80, 80, 3), np.uint8))
    tasks = [{'kind': 'deblur', 'dataroot': str(tmp_path / 'deblur')}]
    AllInOneDataset.check_options(loader.dataset_opt(tasks, 0), 'datasets.train')
    assert loader.loader_rate(tasks, 0, 2) > 0 and loader.step_rate('nafnet_tiny', 1) > 0


@pytest.mark.parametrize('family', ['dcpt', 'dsrir', 'constyle', 'constyle_frozen', 'constyle_queue65760'])
def test_step_cost_family_arms_build_and_step(family, tmp_path):
    """benchmarks/step_cost_family_arms.py: every arm of a family builds, starts from the same weights as ours and
    takes one step on a tiny batch; the authors' loop reaches the same first-step loss as our model class."""
    from benchmarks import step_cost_family_arms as arms
    models = {a: arms.build_family_arm(family, a, str(tmp_path / a), 'cpu') for a in arms.family_arms(family)}
    assert arms.same_weights(models['ours'], models['authors'])
    batch = arms.family_batches(family, 'cpu', count=1, tiny=True)[0]
    for model in models.values():
        model.feed_data(batch)
        model.optimize_parameters(1)
    losses = {a: arms.step_losses(m) for a, m in models.items()}
    assert losses['ours'] == pytest.approx(losses['authors'], rel=1e-4, abs=1e-5)
    if family == 'constyle_frozen':
        assert not any(p.requires_grad for p in models['ours_nograd'].prompter.parameters())


def test_restore_benchmark_runs_both_commands_on_the_same_network_and_weights(tmp_path):
    """benchmarks.restore: BasicSR's test file and mclir-restore's arguments name the same network, weights and
    photos, and both are accepted as they stand."""
    import json

    from benchmarks import restore
    from mclir_basicsr.cli.restore import _parser
    for label, net_opt in restore.NETWORKS.items():
        test_opt = restore._test_file(net_opt, 'w.pth', 'photos', 'bench')
        test_opt['is_train'] = False
        check_options(copy.deepcopy(test_opt))
        args = _parser().parse_args(restore._restore_args(net_opt, 'w.pth', 'photos', 'out'))
        assert test_opt['network_g'] == dict(json.loads(args.network_args), type=args.network), label
        assert (args.weights, args.input, test_opt['path']['pretrain_network_g']) == ('w.pth', ['photos'], 'w.pth')
        assert test_opt['datasets']['test_1']['dataroot_lq'] == 'photos'
