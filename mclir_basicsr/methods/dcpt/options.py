"""The keys of DCPT's model classes (degradation-classification pre-training), checked before anything is written.

* top level ``network_dc``: the classifier (``type: DegradationClassifier``, ``feature_dims``, ``num_classes``,
  ``num_res_blocks``); ``hook_names``: the modules of ``network_g`` whose outputs it reads (:mod:`.feature_hooks`);
* ``train.optim_dc``: the classifier's optimizer (any ``torch.optim`` type); ``train.classify_opt``: its loss
  (``ClassFocalLoss`` / ``FocalLoss``, ``ClassCrossEntropyLoss``);
* ``path.pretrain_network_dc``, ``path.strict_load_dc``, ``path.param_key_dc``: as BasicSR's ``*_g`` keys.

Labels are the indices of the training dataset's tasks (``AllInOneDataset``); ``network_dc.num_classes`` must equal
their number. A validation set of ``AllInOneDataset`` is scored by task name: each of its tasks must be named (or
be of a kind) like a training task.
"""
import functools
import json
import torch
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY

from ...checks.options import OptionError, registered_name
from ...training.optimizers import check_arguments
from ...training.progressive import check_progressive
from .degradation_classifier_arch import feature_channels
from .feature_hooks import FeatureHooks, as_name_list, describe_candidates

DCPT_TOP_KEYS = ('network_dc', 'hook_names')
DCPT_TRAIN_KEYS = ('optim_dc', 'classify_opt', 'progressive')
PROBE_SIZE = 64  # side of the input the fit check runs network_g on (at most the training patch)
DEFAULT_NUM_CLASSES = 3


def task_names(ds_opt):
    """Names of an ``AllInOneDataset`` block's tasks (name, else kind), or None for another dataset type (a
    ``DCPTTasksDataset`` labels by position, not by name)."""
    if not isinstance(ds_opt, dict) or ds_opt.get('type') != 'AllInOneDataset':
        return None
    return [t.get('name') or t.get('kind') for t in ds_opt.get('tasks') or [] if isinstance(t, dict)]


def check_loss_block(block, key):
    """A loss option block: a mapping with a registered ``type`` and arguments its class takes."""
    if not isinstance(block, dict) or 'type' not in block:
        raise OptionError(f'{key} must be a mapping with a type, e.g. {{type: ClassFocalLoss, gamma: 2}}.')
    cls = registered_name(LOSS_REGISTRY, block['type'], 'loss in BasicSR\'s LOSS_REGISTRY', f'{key}.type')
    check_arguments(cls, {k: v for k, v in block.items() if k != 'type'}, key)


def check_network_block(block, key):
    if not isinstance(block, dict) or 'type' not in block:
        raise OptionError(f'{key} must be a mapping with a type, e.g. {{type: DegradationClassifier, feature_dims: '
                          f'[64, 128, 256, 512], num_classes: 3}}.')
    cls = registered_name(ARCH_REGISTRY, block['type'], 'network in BasicSR\'s ARCH_REGISTRY', f'{key}.type')
    check_arguments(cls, {k: v for k, v in block.items() if k != 'type'}, key)


def check_labels(opt, num_classes):
    """``num_classes`` fits the training tasks; every validation task is one of them."""
    datasets = opt.get('datasets') or {}
    train = task_names(datasets.get('train'))
    if train is None:
        return
    if num_classes != len(train):
        raise OptionError(f'network_dc.num_classes is {num_classes} but datasets.train has {len(train)} tasks '
                          f'({", ".join(train)}): one class per task. Set num_classes: {len(train)}.')
    for key, ds in datasets.items():
        names = task_names(ds) if key != 'train' else None
        for name in names or []:
            if name not in train:
                raise OptionError(f'datasets.{key}: task {name!r} is not a training task ({", ".join(train)}), so '
                                  f'its label is unknown. Name it like the training task of the same degradation.')


def check_dcpt_options(opt, transfer=False):
    """Every DCPT key of a training option dict; the classifier must fit the hooked features (a forward pass of
    ``network_g`` on a small random input, on the CPU, random state untouched)."""
    for key in ('network_dc', 'hook_names'):
        if opt.get(key) is None:
            raise OptionError(f'{key} is required by model_type {opt.get("model_type")} (docs/dcpt.md).')
    check_network_block(opt['network_dc'], 'network_dc')
    as_name_list(opt['hook_names'])
    train_opt = opt.get('train') or {}
    check_loss_block(train_opt.get('classify_opt'), 'train.classify_opt')
    check_progressive(opt)
    if not transfer and not isinstance(train_opt.get('optim_dc'), dict):
        raise OptionError('train.optim_dc is required: the classifier\'s optimizer, e.g. {type: AdamW, lr: 1.0e-4, '
                          'weight_decay: 1.0e-4}.')
    if not train_opt.get('pixel_opt') and not train_opt.get('perceptual_opt'):
        raise OptionError('train.pixel_opt is required: the reconstruction loss, e.g. {type: L1Loss, loss_weight: 1}.')
    if (opt.get('val') or {}).get('metrics') is not None and not transfer:
        raise OptionError('val.metrics: DCPTModel validates the degradation classification (accuracy per validation '
                          'set); remove val.metrics. Measure PSNR/SSIM after fine-tuning (SRModel or MCLIRModel).')
    if (opt.get('val') or {}).get('save_img') and not transfer:
        raise OptionError('val.save_img: DCPTModel validation classifies degradations and makes no images; set '
                          'save_img: false.')
    num_classes = opt['network_dc'].get('num_classes', DEFAULT_NUM_CLASSES)
    check_labels(opt, num_classes)
    check_classifier_fits(opt)


def probe_input(opt):
    """A (1, C, S, S) random input for the fit check: C from network_g's usual keys, S <= the training patch."""
    net = opt['network_g']
    channels = next((net[k] for k in ('img_channel', 'inp_channels', 'num_in_ch', 'in_chans', 'in_nc') if k in net), 3)
    size = ((opt.get('datasets') or {}).get('train') or {}).get('gt_size') or PROBE_SIZE
    return torch.rand(1, channels, min(size, PROBE_SIZE), min(size, PROBE_SIZE),
                      generator=torch.Generator().manual_seed(0))


def _build(net_opt):
    """The network of an option block, built without BasicSR's ``build_network``: that one logs, and a first log
    call before BasicSR's ``init_loggers`` would leave the experiment without its log file."""
    kwargs = {k: v for k, v in net_opt.items() if k != 'type'}
    return ARCH_REGISTRY.get(net_opt['type'])(**kwargs)


def check_classifier_fits(opt):
    """Build ``network_g`` and ``network_dc`` on the CPU and check that the hooked features match ``feature_dims``
    (count and channels); OptionError lists the candidate modules with their channels otherwise. Checked once per
    configuration in a process."""
    sample = probe_input(opt)
    _check_fit(json.dumps([opt['network_g'], opt['network_dc'], opt['hook_names'], sample.shape[-1]], sort_keys=True))


@functools.lru_cache(maxsize=64)
def _check_fit(config):
    network_g, network_dc, hook_names, size = json.loads(config)
    opt = {'network_g': network_g, 'network_dc': network_dc, 'hook_names': hook_names,
           'datasets': {'train': {'gt_size': size}}}
    try:  # shapes only, on the meta device: no memory, no initialisation, no arithmetic
        _fit_on(opt, 'meta')
    except (NotImplementedError, RuntimeError):  # a network whose construction or forward needs real values
        _fit_on(opt, 'cpu')


def _fit_on(opt, device):
    sample = probe_input(opt).to(device)
    with torch.random.fork_rng(devices=[]), torch.device(device):
        net_g = _build(opt['network_g']).eval()
        hooks = FeatureHooks(net_g, opt['hook_names'], sample=sample)
        with torch.no_grad(), hooks.capture() as features:
            net_g(sample)
        hooks.remove()
        dims = [feature_channels(f) for f in features]
        wanted = opt['network_dc'].get('feature_dims')
        if dims != list(wanted or []):
            raise OptionError(
                f'network_dc.feature_dims is {wanted} but hook_names {opt["hook_names"]} give {len(dims)} features '
                f'with channels {dims} (modules {", ".join(hooks.names)}; highest resolution first). Set feature_dims: '
                f'{dims}, or hook other modules. Candidates (name: output for a '
                f'{sample.shape[-2]}x{sample.shape[-1]} input):\n' + describe_candidates(net_g, sample))
        net_dc = _build(opt['network_dc']).eval()
        with torch.no_grad():
            net_dc(features)
