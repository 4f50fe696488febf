"""PyPI basicsr 1.4.2 on current torch/torchvision, through ``import mclir_basicsr``."""
import subprocess
import sys
import warnings

import pytest
import torch

from mclir_basicsr.compat import fix_options, patch_basicsr_runtime, vgg_source
from tests.conftest import ROOT


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
        fix_options(opt)
    assert opt['datasets']['train']['prefetch_mode'] == expected
    assert bool(caught) == (mode != expected)


def test_runtime_patch_is_idempotent():
    import basicsr.train as bsr_train
    patch_basicsr_runtime()
    first = bsr_train.parse_options
    patch_basicsr_runtime()
    assert bsr_train.parse_options is first
    from mclir_basicsr import resume
    assert bsr_train.load_resume_state is resume.load_resume_state


def test_console_scripts_declared_and_runnable():
    from importlib.metadata import entry_points
    scripts = {e.name: e.value for e in entry_points(group='console_scripts') if e.name.startswith('mclir-')}
    assert scripts == {'mclir-train': 'mclir_basicsr.train:main', 'mclir-test': 'mclir_basicsr.test:main',
                       'mclir-demo': 'mclir_basicsr.demo:main', 'mclir-make-lmdb': 'mclir_basicsr.data.lmdb_tools:main',
                       'mclir-demo-data': 'mclir_basicsr.data.demo_data:main'}
    res = subprocess.run([sys.executable, '-m', 'mclir_basicsr.train', '-h'], capture_output=True, text=True)
    assert res.returncode == 0 and '--auto_resume' in res.stdout and '--launcher' in res.stdout


def test_basicsr_vgg_pretrain_path_branch_loads_features(tmp_path, monkeypatch):
    """BasicSR's own branch for experiments/pretrained_models/vgg19-dcbb9e9d.pth loads a full VGG file."""
    from basicsr.archs import vgg_arch
    from basicsr.losses import build_loss

    from mclir_basicsr.compat import build_torchvision_vgg_features
    torch.manual_seed(3)
    feats = build_torchvision_vgg_features('vgg11')
    state = {f'features.{k}': v for k, v in feats.state_dict().items()}
    state['classifier.0.weight'] = torch.zeros(2, 2)  # a full torchvision file also holds the classifier
    path = tmp_path / 'vgg.pth'
    torch.save(state, path)
    monkeypatch.setattr(vgg_arch, 'VGG_PRETRAIN_PATH', str(path))
    loss = build_loss({'type': 'PerceptualLoss', 'layer_weights': {'conv1_1': 1.0}, 'vgg_type': 'vgg11'})
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, feats[0].weight)
