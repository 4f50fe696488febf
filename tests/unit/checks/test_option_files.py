"""Every shipped option file loads, passes our checks, and every ``type:`` resolves in its BasicSR registry."""
import functools
import glob
import json
import os.path as osp

import pytest
import torch
import yaml

from basicsr.archs import build_network
from basicsr.utils.options import ordered_yaml
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
from mclir_basicsr.checks.options import check_options
from tests.helpers import ROOT

FILES = sorted(glob.glob(osp.join(ROOT, 'options', '**', '*.yml'), recursive=True))


def _load(path):
    with open(path) as f:
        return yaml.load(f, Loader=ordered_yaml()[0])


def test_there_are_option_files():
    names = {osp.relpath(p, ROOT) for p in FILES}
    for task in ('SRx2', 'DNs25'):
        assert f'options/train/demo/train_MCLIR_EDSR_{task}_demo.yml' in names
        assert f'options/train/demo/train_EDSR_{task}_demo_baseline.yml' in names
        assert f'options/test/demo/test_MCLIR_EDSR_{task}_demo.yml' in names
    assert len([n for n in names if n.startswith('options/train/paper/')]) >= 3
    assert len([n for n in names if n.startswith('options/test/paper/')]) >= 3


# DCPT's checks run the paper-sized network and classifier once (do the hooked features fit?): seconds per file
CHECK_FILES = [pytest.param(p, marks=[pytest.mark.e2e] if '/dcpt/paper/' in p else [], id=osp.relpath(p, ROOT))
               for p in FILES]


@pytest.mark.parametrize('path', CHECK_FILES)
def test_option_file(path):
    opt = _load(path)
    is_train = '/train/' in path
    opt['is_train'] = is_train
    check_options(opt)
    assert opt['model_type'] in MODEL_REGISTRY
    model_cls = MODEL_REGISTRY.get(opt['model_type'])
    getattr(model_cls, 'resolve_model_class', lambda o: model_cls)(opt)  # base_model_type resolves
    assert opt['network_g']['type'] in ARCH_REGISTRY
    for phase, dataset in opt['datasets'].items():
        assert dataset['type'] in DATASET_REGISTRY, (phase, dataset['type'])
    for metric in (opt.get('val') or {}).get('metrics', {}).values():
        assert metric['type'] in METRIC_REGISTRY
    for key, value in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(value, dict):
            assert value['type'] in LOSS_REGISTRY, (key, value['type'])


# paper-sized networks take seconds to build: outside the fast unit tier (the demo files' networks stay in it)
NETWORK_FILES = [pytest.param(p, marks=[pytest.mark.e2e] if '/paper/' in p else [], id=osp.relpath(p, ROOT))
                 for p in FILES]


@pytest.mark.parametrize('path', NETWORK_FILES)
def test_option_file_network(path):
    """The network's arguments are right: it builds and runs on a small input."""
    opt = _load(path)
    assert _output_width(json.dumps(opt['network_g'], sort_keys=True)) == 16 * opt.get('scale', 1)


@functools.lru_cache(maxsize=None)
def _output_width(network_g):
    """Build ``network_g`` (JSON) and run it on a 16x16 input; once per configuration (train and test files, a
    baseline and its SPN twin share one)."""
    net = build_network(json.loads(network_g)).eval()
    with torch.no_grad():
        return net(torch.rand(1, 3, 16, 16)).shape[-1]


SPN_TWINS = [('demo', f'EDSR_{task}_demo_baseline', f'MCLIR_EDSR_{task}_demo') for task in ('SRx2', 'DNs25')] + [
    ('demo', 'FFA_Dehaze_demo_baseline', 'MCLIR_FFA_Dehaze_demo'),
    ('all_in_one/demo', 'NAFNet_AIO3_demo_baseline', 'MCLIR_NAFNet_AIO3_demo')] + [
    ('all_in_one/paper', f'{net}_{tag}', f'MCLIR_{net}_{tag}')
    for net in ('NAFNet', 'PromptIR') for tag in ('AIO3', 'AIO5')]


def test_demo_pairs_differ_only_in_mclir_keys():
    """Each SPN file is its baseline plus model_type, history and spn_opt (and its name): nothing else changes."""
    for folder, base_name, spn_name in SPN_TWINS:
        base = _load(osp.join(ROOT, 'options', 'train', folder, f'train_{base_name}.yml'))
        spn = _load(osp.join(ROOT, 'options', 'train', folder, f'train_{spn_name}.yml'))
        assert spn['model_type'] == 'MCLIRModel' and base['model_type'] == 'SRModel'
        for key in ('history', 'spn_opt'):
            spn['train'].pop(key)
        for d in (base, spn):
            d.pop('name')
            d.pop('model_type')
        assert spn == base
