"""How a DCPT repository's file is recognised and read: one name, three meanings (NAFNet in megvii's, IRConStyle's and
DCPT's files), their train_1..N + dataloader layout gathered into one labelled dataset, their hook-name rule, their
top-level grad_clip and list eta_min; files of ours are left alone."""
import copy
import glob
import os.path as osp

import pytest
import yaml

from mclir_basicsr.checks.options import OptionError
from mclir_basicsr.checks.repository_names import use_repository_names
from mclir_basicsr.runtime.option_checks import REPOSITORIES
from tests.helpers import ROOT, TEST_DATA


def _read(*parts):
    with open(osp.join(*parts)) as f:
        return yaml.safe_load(f)


def _read_as_ours(opt):
    opt = copy.deepcopy(opt)
    use_repository_names(opt, REPOSITORIES)
    return opt


def test_nafnet_means_each_repository_s_own_network():
    dcpt = _read_as_ours(_read(TEST_DATA, 'dcpt', 'hoatong2411', 'options', 'all_in_one', 'train',
                               'train_NAFNet_AIO_5d.yml'))
    irconstyle = _read_as_ours(_read(TEST_DATA, 'irconstyle', 'options', 'train', 'NAFNet', 'train_NAFNet_Deblur.yml'))
    megvii = _read_as_ours(_read(TEST_DATA, 'nafnet', 'options', 'train', 'SIDD', 'NAFNet-width32.yml'))
    assert (dcpt['network_g']['type'], irconstyle['network_g']['type'], megvii['network_g']['type']) == (
        'DCPTNAFNet', 'IRConStyleNAFNet', 'NAFNet')


def test_their_layout_becomes_one_labelled_training_set_with_their_loader():
    original = _read(TEST_DATA, 'dcpt', 'hoatong2411', 'options', 'all_in_one', 'pretrain',
                     'pretrain_NAFNet_AIO_5d.yml')
    opt = _read_as_ours(original)
    train = opt['datasets']['train']
    assert train['type'] == 'DCPTTasksDataset' and list(train['tasks']) == [f'train_{i}' for i in range(1, 6)]
    assert train['tasks']['train_1']['type'] == 'DCPTPairedImageDataset'
    assert train['batch_size_per_gpu'] == original['dataloader']['batch_size_per_gpu']
    assert opt['datasets']['val']['type'] == 'DCPTTasksDataset'  # classify: one labelled validation set
    assert 'dataloader' not in opt and 'classify' not in opt and 'dataloader_val' not in opt
    assert opt['hook_names'] == ['decoder0', 'decoder1', 'decoder2', 'decoder3']  # their substring rule
    assert 'ema_decay' not in opt['train'] and 'metrics' not in opt['val']


def test_their_transfer_file_keys_are_read_as_ours():
    opt = _read_as_ours(_read(TEST_DATA, 'dcpt', 'hoatong2411', 'options', 'transfer',
                              'train_Restormer_DN_from_DR_dc_guided.yml'))
    assert opt['model_type'] == 'DCPTTransferModel' and opt['dataset_idx'] == 1
    assert opt['train']['grad_clip'] == {'max_norm': 0.01} and 'grad_clip' not in opt
    assert opt['train']['scheduler']['type'] == 'CosineAnnealingRestartCyclicLR'
    assert opt['train']['scheduler']['eta_mins'] == [0.0003, 1e-6]


def test_files_of_ours_are_not_read_as_a_repository_s():
    shipped = glob.glob(osp.join(ROOT, 'options', '**', '*.yml'), recursive=True)
    assert len(shipped) > 20
    claimed = [p for p in shipped if use_repository_names(_read(p), REPOSITORIES) is not None]
    assert claimed == []


@pytest.mark.parametrize('model_type', ['DCTModel', 'DCModel'])
def test_their_classes_no_file_names_are_refused_with_what_to_use(model_type):
    opt = dict(_read(TEST_DATA, 'dcpt', 'hoatong2411', 'options', 'transfer', 'train_Restormer_DN_from_DR.yml'),
               model_type=model_type)
    with pytest.raises(OptionError, match=f'model_type {model_type}: .*model_type: DCPTModel'):
        use_repository_names(opt, REPOSITORIES)
