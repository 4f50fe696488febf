"""benchmarks/reproduce.py's runs: the paper's option files as they are, data moved, the two arms, the schedule
scaled, the row's test set; and RESIDE's pairing (mclir_basicsr.data.reside)."""
import json
import os

import cv2
import numpy as np
import pytest

from benchmarks import reproduce
from mclir_basicsr.checks.options import check_options
from mclir_basicsr.data.reside import pair_hazy_with_clear


@pytest.mark.parametrize('row', list(reproduce.ROWS))
def test_the_spn_arm_is_the_paper_file_and_the_l1_arm_the_same_without_spn(row, tmp_path):
    spn = reproduce.train_options(row, 'spn', str(tmp_path))
    l1 = reproduce.train_options(row, 'l1', str(tmp_path))
    paper = reproduce.load(reproduce.ROWS[row]['train'])
    assert spn['train'] == paper['train'] and spn['network_g'] == paper['network_g']
    assert [c['period'] for c in spn['train']['history']['copies']] == [100, 200, 500, 1000]
    assert spn['train']['spn_opt']['loss_weight'] == 0.001
    assert 'history' not in l1['train'] and 'spn_opt' not in l1['train']
    assert l1['model_type'] == reproduce.PLAIN_MODEL[paper['model_type']]
    assert {k: v for k, v in l1['train'].items()} == {k: v for k, v in paper['train'].items()
                                                      if k not in ('history', 'spn_opt')}
    for arm in (spn, l1):
        for ds in arm['datasets'].values():
            assert ds['dataroot_gt'].startswith(str(tmp_path) + os.sep), ds['dataroot_gt']
        check_options(arm)
    auto = reproduce.train_options(row, 'spn', str(tmp_path), spn_weight='auto', seed=11)
    assert auto['train']['spn_opt']['loss_weight'] == 'auto' and auto['manual_seed'] == 11
    assert auto['name'].endswith('_spn_seed11')


def test_the_schedule_scales_with_the_length():
    ffa = reproduce.train_options('ffanet-sots-indoor', 'spn', 'd', iters=1000)
    assert ffa['train']['total_iter'] == 1000 and ffa['train']['scheduler']['periods'] == [1000]
    swinir = reproduce.train_options('swinir-light-manga109-x4', 'l1', 'd', iters=1000)
    assert swinir['train']['scheduler']['milestones'] == [500, 800, 900, 950]


def test_the_test_run_is_the_rows_test_set_on_the_trained_network(tmp_path):
    trained = reproduce.train_options('edsr-urban100', 'spn', str(tmp_path), iters=8, tiny=True)
    test = reproduce.test_options('edsr-urban100', trained, str(tmp_path / 'work'), str(tmp_path))
    assert [ds['name'] for ds in test['datasets'].values()] == ['Urban100']
    assert test['network_g'] == trained['network_g'] and trained['network_g']['num_feat'] == 8
    assert test['path']['pretrain_network_g'] == str(tmp_path / 'work' / 'experiments' / trained['name'] / 'models'
                                                     / 'net_g_latest.pth')
    assert trained['train']['spn_opt']['vgg_weights'] == 'random' and trained['num_gpu'] == 0


def test_the_table_puts_the_paper_beside_ours():
    results = {'l1': {'psnr': 20.0, 'ssim': 0.8}, 'spn': {'psnr': 20.5, 'ssim': 0.81}}
    text = reproduce.table('ffanet-sots-indoor', results)
    assert '| ffanet-sots-indoor | FFA-Net, L1 | SOTS_indoor | 20.00 | 0.8000 | 36.39 |' in text
    assert '| ffanet-sots-indoor | SPN - L1 | SOTS_indoor | +0.50 | +0.0100 | +3.41 |' in text


def _image(path, height, width, value):
    cv2.imwrite(str(path), np.full((height, width, 3), value, np.uint8))


def test_reside_pairs_hazy_with_clear_under_one_name(tmp_path):
    (tmp_path / 'hazy').mkdir(), (tmp_path / 'clear').mkdir()
    _image(tmp_path / 'clear' / '1.png', 12, 16, 50)
    _image(tmp_path / 'clear' / '2.png', 10, 10, 60)
    _image(tmp_path / 'hazy' / '1_1_0.90179.png', 10, 12, 200)
    _image(tmp_path / 'hazy' / '1_2_0.7.png', 10, 12, 210)
    _image(tmp_path / 'hazy' / '2_1.png', 10, 10, 220)
    assert pair_hazy_with_clear(str(tmp_path / 'hazy'), str(tmp_path / 'clear'), str(tmp_path / 'out')) == 3
    assert sorted(os.listdir(tmp_path / 'out' / 'hazy')) == ['1_1.png', '1_2.png', '2_1.png']
    assert sorted(os.listdir(tmp_path / 'out' / 'clear')) == ['1_1.png', '1_2.png', '2_1.png']
    clear = cv2.imread(str(tmp_path / 'out' / 'clear' / '1_2.png'))
    assert clear.shape == (10, 12, 3) and clear.max() == 50


def test_reside_refuses_a_missing_clear_image_before_writing(tmp_path):
    (tmp_path / 'hazy').mkdir(), (tmp_path / 'clear').mkdir()
    _image(tmp_path / 'clear' / '1.png', 10, 10, 50)
    _image(tmp_path / 'hazy' / '1_1_0.9.png', 10, 10, 200)
    _image(tmp_path / 'hazy' / '3_1_0.9.png', 10, 10, 200)
    with pytest.raises(FileNotFoundError, match=r'3_1_0\.9\.png: no clear image 3\.\*'):
        pair_hazy_with_clear(str(tmp_path / 'hazy'), str(tmp_path / 'clear'), str(tmp_path / 'out'))
    _image(tmp_path / 'clear' / '3.png', 8, 8, 50)
    with pytest.raises(ValueError, match=r'3_1_0\.9\.png \(10x10\) is larger than its clear image 3\.png \(8x8\)'):
        pair_hazy_with_clear(str(tmp_path / 'hazy'), str(tmp_path / 'clear'), str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()


# --------------------------------------------------------------------- benchmarks/photo_data.py
@pytest.mark.parametrize('task', ['dehaze', 'sr_x2'])
def test_photo_data_is_built_once_and_left_alone_while_its_settings_stay(task, tmp_path, monkeypatch):
    """A second build with the same settings must not delete the folder: benchmark runs read it while they train."""
    from benchmarks import photo_data
    rng = np.random.default_rng(0)
    photos = [(f'photo{i}', 'test', lambda i=i: rng.integers(0, 256, (224, 208 + 8 * i, 3), dtype=np.uint8))
              for i in range(3)]
    monkeypatch.setattr(photo_data, 'photo_sources', lambda: photos)
    folder = photo_data.build(task, root=str(tmp_path))
    (tmp_path / task / 'train' / 'gt' / 'marker.txt').write_text('kept')
    assert photo_data.build(task, root=str(tmp_path)) == folder
    assert (tmp_path / task / 'train' / 'gt' / 'marker.txt').exists()
    assert len(os.listdir(tmp_path / task / 'val' / 'lq')) == 1
    assert len(os.listdir(tmp_path / task / 'train' / 'lq')) > 4
    monkeypatch.setattr(photo_data, 'STEP', photo_data.STEP // 2)  # other settings: built anew
    photo_data.build(task, root=str(tmp_path))
    assert not (tmp_path / task / 'train' / 'gt' / 'marker.txt').exists()


# --------------------------------------------------------------------- benchmarks/from_scratch.py (CPU-scale protocol)
@pytest.mark.parametrize('task', ['dehaze', 'sr_x2'])
def test_from_scratch_arms_share_everything_but_spn_which_is_the_authors(task, tmp_path):
    from benchmarks import from_scratch
    paper = reproduce.load(reproduce.ROWS['ffanet-sots-indoor']['train'])['train']
    arms = {arm: from_scratch.make_options(task, arm, 11, 600, 50, str(tmp_path), vgg_weights='vgg.pth')
            for arm in from_scratch.ARMS}
    for arm, opt in arms.items():
        check_options(opt)
        rest = {k: v for k, v in opt['train'].items() if k not in ('history', 'spn_opt')}
        assert rest == arms['l1']['train'] and opt['network_g'] == arms['l1']['network_g']
        assert opt['manual_seed'] == 11 and opt['datasets'] == arms['l1']['datasets']
    assert arms['l1']['model_type'] == 'SRModel' and 'spn_opt' not in arms['l1']['train']
    for arm, weight in (('spn_authors', 0.001), ('spn_auto', 'auto')):
        train = arms[arm]['train']
        assert train['history'] == paper['history']
        assert train['spn_opt'] == dict(paper['spn_opt'], loss_weight=weight, vgg_weights='vgg.pth')
    assert arms['l1']['train']['scheduler']['periods'] == [600]


def test_from_scratch_summary_pairs_seeds_and_measures_the_plateau():
    from benchmarks import from_scratch

    def run(final, curve):
        return {'final': {'psnr': final, 'ssim': 0.5}, 'seconds': 1.0, 'curve': {'psnr': curve}}

    runs = {('l1', 1): run(20.0, [(50, 18.0), (75, 19.9), (100, 20.0)]),
            ('l1', 2): run(21.0, [(50, 18.0), (75, 20.8), (100, 21.0)]),
            ('spn_auto', 1): run(20.5, [(100, 20.5)]), ('spn_auto', 2): run(20.7, [(100, 20.7)])}
    summary = from_scratch.summarise(runs, ['l1', 'spn_auto'], [1, 2], 100)
    assert summary['l1']['last_quarter_gain'] == pytest.approx(0.15)
    assert summary['spn_auto']['psnr_diff'] == pytest.approx([0.5, -0.3])
    assert summary['spn_auto']['psnr_diff_mean'] == pytest.approx(0.1)
    assert '| L1 + SPN, lambda auto | 20.600 ± 0.141 |' in from_scratch.table('dehaze', summary, [1, 2])


def test_from_scratch_length_table_has_a_row_per_schedule_with_its_own_plateau():
    from benchmarks import from_scratch

    def run(curve):
        return {'final': {'psnr': curve[-1][1], 'ssim': 0.9}, 'seconds': 2.0, 'curve': {'psnr': curve}}

    table = from_scratch.length_table('sr_x2', {200: run([(100, 30.0), (150, 30.5), (200, 31.0)]),
                                                100: run([(50, 29.0), (75, 29.5), (100, 29.6)])})
    rows = table.splitlines()[2:]
    assert rows == ['| 100 iterations | 29.600 | 0.9000 | +0.100 dB | 2 |',
                    '| 200 iterations | 31.000 | 0.9000 | +0.500 dB | 2 |']


def test_from_scratch_lengths_need_no_vgg_and_train_l1_once_per_length(tmp_path, monkeypatch):
    from benchmarks import from_scratch
    trained = []

    def fake_training(opt, workdir, threads):
        trained.append((opt['model_type'], opt['train']['total_iter'], opt['manual_seed'], workdir))
        n = opt['train']['total_iter']
        return 1.0, {'psnr': [(n // 2, 20.0), (n, 21.0)], 'ssim': [(n // 2, 0.5), (n, 0.6)]}

    monkeypatch.setattr(from_scratch, 'run_training', fake_training)
    monkeypatch.setattr(from_scratch, 'build_photo_data', lambda task: str(tmp_path / 'data'))
    assert from_scratch.main(['--task', 'dehaze', '--lengths', '30,60', '--seeds', '7,8', '--jobs', '1',
                              '--vgg-weights', str(tmp_path / 'absent.pth'), '--workdir', str(tmp_path)]) == 0
    assert sorted(trained) == [('SRModel', 30, 7, str(tmp_path / 'lengths' / '30')),
                               ('SRModel', 60, 7, str(tmp_path / 'lengths' / '60'))]
    saved = json.loads((tmp_path / 'from_scratch_dehaze_lengths.json').read_text())
    assert [r['iters'] for r in saved['runs']] == [30, 60] and saved['seed'] == 7


@pytest.mark.parametrize('extra', [['--arms', 'spn_auto'], ['--iters', '100'], ['--quick']])
def test_from_scratch_lengths_refuse_options_they_would_ignore(extra, tmp_path, capsys):
    from benchmarks import from_scratch
    with pytest.raises(SystemExit):
        from_scratch.main(['--lengths', '30,60', '--workdir', str(tmp_path)] + extra)
    assert '--lengths trains L1 alone' in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_several_gpus_run_under_torchrun_and_one_runs_plainly():
    assert reproduce._entry('mclir_basicsr.train', 'x.yml', 4)[1:] == [
        '-m', 'torch.distributed.run', '--nproc_per_node=4', '-m', 'mclir_basicsr.train', '-opt', 'x.yml',
        '--launcher', 'pytorch']
    assert reproduce._entry('mclir_basicsr.test', 'x.yml', 1)[1:] == ['-m', 'mclir_basicsr.test', '-opt', 'x.yml']
