"""Checkpoints for restoring: every format by its keys, read by torch's weights-only loader (a file's code never
runs, foreign objects become inert), and a mismatch named key by key."""
import argparse
import os
import os.path as osp

import numpy as np
import pytest
import torch
from basicsr.archs.edsr_arch import EDSR

from mclir_basicsr.inference.weights import Skipped, WeightsError, load_weights, read_checkpoint
from tests.helpers import constyle_authors_state


def _edsr(seed):
    torch.manual_seed(seed)
    return EDSR(3, 3, num_feat=8, num_block=1, upscale=2)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


class _Hyper:  # a class of the training code that saved the file (not importable when reading it)
    def __init__(self):
        self.lr = 2e-4


def _formats(state):
    """The released formats of the methods' repositories, around one state dict."""
    return {
        'ours': {'params': state},
        'ours_with_ema': {'params': {k: torch.zeros_like(v) for k, v in state.items()}, 'params_ema': state},
        'lightning_promptir': {'state_dict': {f'net.{k}': v for k, v in state.items()}, 'epoch': 3,
                               'hyper_parameters': argparse.Namespace(lr=2e-4), 'hparams': _Hyper(),
                               'optimizer_states': [{'state': {}, 'param_groups': [{'lr': np.float64(2e-4)}]}]},
        'dsrir': {'epoch': 120, 'state_dict': state, 'optimizer': {'state': {}, 'param_groups': []}},
        'ffa': {'step': 5000, 'max_psnr': np.float64(30.1), 'psnrs': [np.float64(29.0)],
                'model': {f'module.{k}': v for k, v in state.items()}},
        'bare': dict(state),
        'compiled_ddp': {'params': {f'module._orig_mod.{k}': v for k, v in state.items()}},
    }


@pytest.mark.parametrize('fmt', list(_formats({})))
def test_every_released_format_loads_by_its_keys(fmt, tmp_path):
    reference = _edsr(0)
    path = tmp_path / f'{fmt}.pth'
    torch.save(_formats(reference.state_dict())[fmt], path)
    net = _edsr(1)
    assert not _same(net, reference)
    load_weights(net, str(path))
    assert _same(net, reference)


def test_a_checkpoint_s_code_never_runs_and_its_tensors_come_out(tmp_path):
    """Foreign classes come out inert; a global torch never allows (os.system) refuses the file in one line."""
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}', )

    path = tmp_path / 'payload.pth'
    torch.save({'params': _edsr(0).state_dict(), 'hparams': _Hyper()}, path)
    assert isinstance(read_checkpoint(str(path))['hparams'], Skipped)
    net = _edsr(1)
    load_weights(net, str(path))
    assert _same(net, _edsr(0))
    torch.save({'params': _edsr(0).state_dict(), 'extra': Payload()}, path)
    with pytest.raises(WeightsError, match='posix.system') as err:
        read_checkpoint(str(path))
    assert not marker.exists() and '\n' not in str(err.value)


def test_authors_key_names_load_through_the_network_s_own_renaming(tmp_path):
    """ConStyle's released restorer (their part names, with its prompter) into ConStyleNAFNet as it is."""
    from basicsr.utils.registry import ARCH_REGISTRY
    path = tmp_path / 'constyle.pth'
    torch.save(constyle_authors_state(0.5), path)
    net = ARCH_REGISTRY.get('ConStyleNAFNet')()
    load_weights(net, str(path))
    assert all(bool((v == 0.5).all()) for k, v in net.state_dict().items() if v.is_floating_point())


def test_a_mismatch_names_the_first_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / 'other.pth'
    state = _edsr(0).state_dict()
    state['extra.weight'] = torch.zeros(1)
    del state['conv_last.weight']
    torch.save({'params': state}, path)
    with pytest.raises(WeightsError) as err:
        load_weights(_edsr(1), str(path))
    message = str(err.value)
    assert 'conv_last.weight' in message and 'extra.weight' in message and '\n' not in message
    torch.save({'params': _edsr(0).state_dict()}, path)
    with pytest.raises(WeightsError, match='shapes differ: .*conv_first.weight'):
        load_weights(EDSR(3, 3, num_feat=16, num_block=1, upscale=2), str(path))


@pytest.mark.parametrize('content, expected', [(b'', 'cannot read'), (b'not a checkpoint at all', 'cannot read')])
def test_a_file_that_is_no_checkpoint_is_refused_in_one_line(content, expected, tmp_path):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=expected) as err:
        load_weights(_edsr(0), str(path))
    assert '\n' not in str(err.value) and osp.basename(path) in str(err.value)


def test_a_named_param_key_is_used_or_refused(tmp_path):
    path = tmp_path / 'ema.pth'
    reference = _edsr(0).state_dict()
    torch.save(_formats(reference)['ours_with_ema'], path)
    net = _edsr(1)
    load_weights(net, str(path), 'params')
    assert all(bool((v == 0).all()) for v in net.state_dict().values())
    with pytest.raises(WeightsError, match='no state dict under "params_x"'):
        load_weights(net, str(path), 'params_x')
