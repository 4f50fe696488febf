"""How the DCPT repositories' option files are read (hoatong2411/dcpt at edd4c7a, MILab-PKU/dcpt; docs/repo_dcpt.md).

A file is theirs when it says so in their way: ``model_type: DCDistModel``, a top-level ``dataloader`` or ``classify``,
``datasets.train_1..N``, one of their dataset types, ``NAFNetBaseline`` / ``Restormer_origin``, or a ``window_size``
on ``NAFNet``, ``PromptIR``, ``Restormer`` (which take none elsewhere). Then:

* networks: ``NAFNet``, ``PromptIR``, ``Restormer``, ``SwinIR`` are theirs (``DCPTNAFNet``, ``DCPTPromptIR``,
  ``DCPTRestormer``, ``DCPTSwinIR``); ``PairedImageDataset`` is theirs (``DCPTPairedImageDataset``);
* model types: ``SRModel`` is ``DCPTSRModel`` (their top-level ``grad_clip`` read as ``train.grad_clip``),
  ``DCDistModel`` is ``DCPTTransferModel`` (its ``dataset_idx`` is the fixed label); in a ``DCPTModel`` file their
  class reads neither ``train.ema_decay`` nor ``val.metrics`` / ``val.save_img``: those are removed;
* layout: ``datasets.train_1..N`` and the top-level ``dataloader`` become one ``datasets.train`` of type
  ``DCPTTasksDataset`` (label = position); with ``classify: true`` their ``val_1..M`` become one ``datasets.val`` of
  that type (classification accuracy over all of them, batch 1; their loader took the training batch settings);
  ``dataloader_val`` (which their script never reads) and ``resume_remove_dc`` (our transfer class saves its
  classifier, so a resume finds it) are dropped;
* metrics: ``calculate_psnr`` / ``calculate_ssim`` are theirs (``calculate_psnr_dcpt`` / ``calculate_ssim_dcpt``:
  ``image_range`` read, measured on the float images; :mod:`.dcpt_metrics`);
* ``hook_names: decoder``: their rule, the network's top-level modules whose name contains it;
* ``CosineAnnealingRestartLR`` with a list ``eta_min`` (one per period) is ``CosineAnnealingRestartCyclicLR``.
"""
import re
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from ...checks.options import OptionError, check_bool, check_number
from ...checks.repository_names import RepositoryNames
from .dcpt_metrics import THEIR_METRICS

DATASET_TYPES = ('PairedImageDenoiseDataset', 'PairedImageDehazeDataset', 'PairedImageMosaicDataset',
                 'PairedImageJPEGCARDataset', 'PairedImageInpaintingDataset', 'MultiDegradationDataset')
NETWORKS = {'NAFNet': 'DCPTNAFNet', 'PromptIR': 'DCPTPromptIR', 'Restormer': 'DCPTRestormer', 'SwinIR': 'DCPTSwinIR'}
MODEL_TYPES = {'SRModel': 'DCPTSRModel', 'DCDistModel': 'DCPTTransferModel'}
TASK_KEY = re.compile(r'^(train|val)_\d+$')
LOADER_KEYS = ('use_shuffle', 'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio', 'prefetch_mode',
               'pin_memory', 'persistent_workers')


def _recognise(opt):
    net = opt.get('network_g') if isinstance(opt.get('network_g'), dict) else {}
    task_keys = any(TASK_KEY.match(str(k)) and str(k).startswith('train') for k in opt.get('datasets') or {})
    return ('dataloader' in opt or 'classify' in opt or task_keys or
            net.get('type') in ('NAFNetBaseline', 'Restormer_origin') or
            (net.get('type') in ('NAFNet', 'PromptIR', 'Restormer') and 'window_size' in net))


def _gather(opt, phase, loader):
    """``datasets.<phase>_1..N`` -> one ``datasets.<phase>`` of type DCPTTasksDataset (their order)."""
    datasets = opt['datasets']
    keys = [k for k in datasets if str(k).startswith(f'{phase}_') and TASK_KEY.match(str(k))]
    if not keys:
        return
    if phase in datasets:
        raise OptionError(f'datasets.{phase} and datasets.{keys[0]} are both given: a DCPT file lists one '
                          f'{phase}_N per degradation; keep those.')
    block = {'name': '+'.join(str(datasets[k].get('name', k)) for k in keys), 'type': 'DCPTTasksDataset',
             'phase': phase, 'tasks': {k: datasets.pop(k) for k in keys}}
    block.update({k: v for k, v in loader.items() if k in LOADER_KEYS})
    datasets[phase] = block


def _hook_names(opt):
    """Their ``hook_names`` string: the top-level modules of network_g whose name contains it."""
    name = opt.get('hook_names')
    if not isinstance(name, str) or not isinstance(opt.get('network_g'), dict):
        return
    args = {k: v for k, v in opt['network_g'].items() if k != 'type'}
    try:  # not build_network: it logs, and BasicSR's logger must not exist before its log file does
        with torch.device('meta'):
            net = ARCH_REGISTRY.get(opt['network_g']['type'])(**args)
    except Exception:  # the typed-block check names the problem with network_g
        return
    found = [child for child, _ in net.named_children() if name in child]
    if found and name not in found:
        opt['hook_names'] = found


def _scheduler(train_opt):
    block = train_opt.get('scheduler')
    if isinstance(block, dict) and block.get('type') == 'CosineAnnealingRestartLR' and \
            isinstance(block.get('eta_min'), list):
        block['type'] = 'CosineAnnealingRestartCyclicLR'
        block['eta_mins'] = block.pop('eta_min')


NOT_PROVIDED = {  # DCPT's classes no file of theirs names: what to use instead
    'DCTModel': 'DCPT\'s joint restoration-and-classification training of lq (named by none of their option files) is '
                'not provided: pre-train with model_type: DCPTModel (generation on GT, classification of lq)',
    'DCModel': 'DCPT\'s classifier-only training on a frozen restorer (named by none of their option files) is not '
               'provided: model_type: DCPTModel trains the classifier with the restorer',
}


def _their_layout(opt):
    model_type = opt.get('model_type')
    if model_type in NOT_PROVIDED:
        raise OptionError(f'model_type {model_type}: {NOT_PROVIDED[model_type]} (docs/repo_dcpt.md).')
    train_opt = opt.get('train') if isinstance(opt.get('train'), dict) else {}
    if model_type == 'DCPTModel':  # their pre-training class reads none of these
        train_opt.pop('ema_decay', None)
        if isinstance(opt.get('val'), dict):
            opt['val'].pop('metrics', None)
            opt['val']['save_img'] = False  # BasicSR's loop reads the key
    opt['model_type'] = MODEL_TYPES.get(model_type, model_type)
    for block in ((opt.get('val') or {}).get('metrics') or {}).values():
        if isinstance(block, dict) and block.get('type') in THEIR_METRICS:
            block['type'] = THEIR_METRICS[block['type']]
    if opt.get('grad_clip') is not None:
        train_opt['grad_clip'] = {'max_norm': check_number(opt.pop('grad_clip'), 'grad_clip', low=0, low_open=True)}
    for key in ('resume_remove_dc', 'classify'):
        if key in opt:
            check_bool(opt[key], key)
    opt.pop('resume_remove_dc', None)
    classify = opt.pop('classify', False)
    opt.pop('dataloader_val', None)
    loader = opt.pop('dataloader', None) or {}
    if isinstance(opt.get('datasets'), dict):
        _gather(opt, 'train', loader if isinstance(loader, dict) else {})
        if classify:
            _gather(opt, 'val', {})
    _hook_names(opt)
    _scheduler(train_opt)


DCPT = RepositoryNames(
    repository='hoatong2411/dcpt', docs='docs/repo_dcpt.md', model_types=('DCDistModel', 'DCTModel', 'DCModel'),
    dataset_types=DATASET_TYPES, networks=NETWORKS, datasets={'PairedImageDataset': 'DCPTPairedImageDataset'},
    rewrite=_their_layout, recognise=_recognise)
