"""Every validation error of our option keys: it names the key path and what to do."""
import copy

import pytest

from mclir_basicsr.checks.options import OptionError, check_options
from mclir_basicsr.methods.mclir.options import parse_history
from tests.helpers import make_opt


def _train(**kw):
    base = {'history': {'init_decay': 0.1, 'copies': [{'period': 100, 'decay': 0.1}, {'period': 1000,
                                                                                      'decay': 0.1}]}}
    base.update(kw)
    return base


def test_history_block_parsed():
    cfg = parse_history(_train())
    assert cfg.init_decay == 0.1
    assert [(c.period, c.decay) for c in cfg.copies] == [(100, 0.1), (1000, 0.1)]


def test_init_decay_and_negatives_defaults():
    cfg = parse_history({'history': {'copies': [{'period': 5, 'decay': 0.5}]}})
    assert cfg.init_decay == 0.1 and cfg.negatives == 'all'
    cfg = parse_history({'history': {'negatives': 'round_robin', 'copies': [{'period': 5, 'decay': 0.5}]}})
    assert cfg.negatives == 'round_robin'


@pytest.mark.parametrize('keys, expected', [
    ({'neg_iter': [100, 200, 500, 1000], 'neg_decay': 0.1, 'neg_start': 0.01},
     (0.01, [(100, 0.1), (200, 0.1), (500, 0.1), (1000, 0.1)])),
    ({'neg_iter': 100, 'neg_decay': 0.2, 'neg_start': 0.1}, (0.1, [(100, 0.2)])),
    ({'neg_iter': [10, 20], 'neg_decay': [0.1, 0.3]}, (0.1, [(10, 0.1), (20, 0.3)])),
])
def test_authors_keys_mapping(keys, expected):
    cfg = parse_history(keys)
    assert (cfg.init_decay, [(c.period, c.decay) for c in cfg.copies]) == expected


BAD_HISTORY = [
    (_train(history={'init_decay': 0.1, 'copise': []}), r'unknown key train.history.copise. Did you mean '
     r'train.history.copies\?'),
    (_train(history={'copies': []}), 'train.history.copies must be a non-empty list'),
    (_train(history={'copies': 'x'}), 'train.history.copies must be a non-empty list'),
    (_train(history=[1, 2]), 'train.history must be a mapping'),
    (_train(history={'copies': [{'period': 10, 'decay': 1.2}]}),
     r'train.history.copies\[0\].decay must be in \[0, 1\), got 1.2'),
    (_train(history={'copies': [{'period': 10, 'decay': 0.1}, {'period': 10, 'decay': 1.0}]}),
     r'train.history.copies\[1\].decay must be in \[0, 1\), got 1'),
    (_train(history={'copies': [{'period': 10, 'decay': -0.1}]}), r'copies\[0\].decay must be in \[0, 1\)'),
    (_train(history={'copies': [{'period': 0, 'decay': 0.1}]}), r'copies\[0\].period must be >= 1, got 0'),
    (_train(history={'copies': [{'period': 2.5, 'decay': 0.1}]}), r'copies\[0\].period must be an integer'),
    (_train(history={'copies': [{'period': True, 'decay': 0.1}]}), r'copies\[0\].period must be an integer'),
    (_train(history={'copies': [{'period': 10, 'decay': '0.1'}]}), r'copies\[0\].decay must be a number'),
    (_train(history={'copies': [{'period': 10}]}), r'copies\[0\].decay is missing'),
    (_train(history={'copies': [{'period': 10, 'decay': 0.1, 'decy': 0.2}]}),
     r'unknown key train.history.copies\[0\].decy. Did you mean train.history.copies\[0\].decay'),
    (_train(history={'copies': [5]}), r'copies\[0\] must be a mapping'),
    (_train(history={'init_decay': 1.5, 'copies': [{'period': 1, 'decay': 0}]}),
     r'train.history.init_decay must be in \[0, 1\], got 1.5'),
    (_train(neg_iter=[100]), 'both given; use one spelling'),
    ({'neg_decay': 0.1}, 'train.neg_iter is required'),
    ({'neg_iter': [10, 20], 'neg_decay': [0.1]}, 'train.neg_decay has 1 entries but train.neg_iter has 2'),
    ({'neg_iter': [10, 0]}, r'train.neg_iter\[1\] must be >= 1'),
    ({'neg_iter': 10, 'neg_start': 2}, r'train.neg_start must be in \[0, 1\]'),
    ({'neg_iter': 10, 'neg_decay': 1}, r'train.neg_decay must be in \[0, 1\)'),
    ({}, 'train.history is required by MCLIR models'),
    (_train(history={'negatives': 'one', 'copies': [{'period': 1, 'decay': 0}]}),
     "train.history.negatives must be one of all, round_robin, got 'one'"),
]


@pytest.mark.parametrize('train, message', BAD_HISTORY)
def test_bad_history(train, message):
    with pytest.raises(OptionError, match=message):
        parse_history(train)


def _check(tmp_path, mutate, model_type='MCLIRModel'):
    opt = make_opt(tmp_path, model_type=model_type)
    mutate(opt)
    check_options(opt)


def test_valid_options_pass(tmp_path):
    _check(tmp_path, lambda o: None)
    _check(tmp_path, lambda o: None, model_type='SRModel')
    _check(tmp_path, lambda o: o.update(base_model_type='SwinIRModel'))


@pytest.mark.parametrize('mutate, message', [
    (lambda o: o['train'].update(histroy=o['train'].pop('history')), 'unknown key train.histroy. Did you mean '
     'train.history'),
    (lambda o: o['train'].update(spn_otp=o['train'].pop('spn_opt')), 'Did you mean train.spn_opt'),
    (lambda o: o['train'].update(neg_iters=5), 'Did you mean train.neg_iter'),
    (lambda o: o.update(base_model_typ='SwinIRModel'), 'unknown top-level key base_model_typ. Did you mean '
     'base_model_type'),
    (lambda o: o['train'].pop('spn_opt'), 'train.spn_opt is required by MCLIR models'),
    (lambda o: o['train']['spn_opt'].update(type='SPNLos'), "train.spn_opt.type 'SPNLos' is not a registered loss. "
     'Did you mean SPNLoss'),
    (lambda o: o['train']['spn_opt'].update(lamda=0.1), 'unknown key train.spn_opt.lamda'),
    (lambda o: o['train']['spn_opt'].update(form='ratoi'), 'train.spn_opt.form must be one of subtract, ratio'),
    (lambda o: o['train']['spn_opt'].update(loss_weight=-1), r'train.spn_opt.loss_weight must be in \[0'),
    (lambda o: o['train']['spn_opt'].update(layer_weights={'relu1_1': -0.5}),
     r'train.spn_opt.layer_weights.relu1_1 must be in \[0'),
    (lambda o: o.update(model_type='MCLIRModle'), "model_type 'MCLIRModle' is not a registered model.*Did you mean "
     'MCLIRModel'),
    (lambda o: o.update(base_model_type='SwinIRModl'),
     "base_model_type 'SwinIRModl' is not a registered model.*Did you "
     'mean SwinIRModel'),
    (lambda o: o.update(base_model_type='ESRGANModel'), 'ESRGANModel has its own optimize_parameters'),
    (lambda o: o['train']['history']['copies'][0].update(decay=1.2),
     r'train.history.copies\[0\].decay must be in \[0, 1\), got 1.2'),
])
def test_bad_options(tmp_path, mutate, message):
    with pytest.raises(OptionError, match=message):
        _check(tmp_path, mutate)


def test_our_keys_refused_on_models_that_ignore_them(tmp_path):
    def add_history(o):
        o['train']['history'] = copy.deepcopy(make_opt(tmp_path)['train']['history'])

    with pytest.raises(OptionError, match='train.history set, but model_type SRModel does not use it. Use '
                       'model_type: MCLIRModel'):
        _check(tmp_path, add_history, model_type='SRModel')


def test_test_time_options_need_no_history(tmp_path):
    opt = make_opt(tmp_path)
    opt['is_train'] = False
    del opt['train']
    check_options(opt)


def test_suggestions_never_lead_to_a_refusal(tmp_path):
    """The authors' class names, with our keys set, are pointed to this plugin's classes, not to a GAN model that
    would then be refused; a model that cannot be extended is pointed to MCLIRModel alone."""
    plugin = ('MCLIRModel', 'MCLIRSwinIRModel', 'SRNegModel', 'SRNegModel_Multi', 'SwinIRNegModel',
              'SwinIRNegModel_Multi', 'ImageRestorationModel_FFANet_Neg_Multi')
    for name in ('SRNegModelMulti', 'SwinIRNegModel_multi', 'SRNegativeModel'):
        opt = make_opt(tmp_path, model_type=name, extra_train={'neg_iter': [100, 200], 'neg_decay': 0.1})
        with pytest.raises(OptionError) as err:
            check_options(opt)
        msg = str(err.value)
        assert 'SRGANModel' not in msg and ('Model classes of this plugin' in msg or
                                            any(f'Did you mean {p}?' in msg for p in plugin)), msg
    opt = make_opt(tmp_path, model_type='SRGANModel')
    opt['train']['history'] = make_opt(tmp_path)['train']['history']
    with pytest.raises(OptionError, match='SRGANModel cannot be extended by this plugin; use one of its model classes'):
        check_options(opt)
    with pytest.raises(OptionError) as err:
        check_options(make_opt(tmp_path, base_model_type='SRGANMdel'))
    assert 'SRGANModel' not in str(err.value)  # not suggested: it would be refused next


def test_base_class_that_hard_codes_cuda_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """Real-ESRGAN's RealESRNetModel builds DiffJPEG().cuda() in __init__: without a GPU, an error at check time."""
    import torch
    from basicsr.models.sr_model import SRModel
    from basicsr.utils.registry import MODEL_REGISTRY

    class CudaInInitTestModel(SRModel):
        def __init__(self, opt):
            super().__init__(opt)
            self.jpeger = torch.nn.Identity().cuda()

    if 'CudaInInitTestModel' not in MODEL_REGISTRY:
        MODEL_REGISTRY.register(CudaInInitTestModel)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(OptionError, match=r'base_model_type: CudaInInitTestModel cannot be built here: '
                                          r'CudaInInitTestModel.__init__ calls .cuda\(\)'):
        check_options(make_opt(tmp_path, base_model_type='CudaInInitTestModel'))
    with pytest.raises(OptionError, match='model_type: CudaInInitTestModel cannot be built here'):
        check_options(make_opt(tmp_path, model_type='CudaInInitTestModel'))
