"""Make PyPI ``basicsr==1.4.2`` usable on today's PyTorch stack, without touching site-packages.

Two kinds of fixes live here:

* Import-time fixes (:func:`install_import_shims`), applied by ``import mclir_basicsr`` before the first
  ``import basicsr``: torchvision >= 0.17 removed ``torchvision.transforms.functional_tensor``, which
  ``basicsr.data.degradations`` still imports.
* Runtime fixes for our entry points (:func:`patch_basicsr_runtime`), applied by ``mclir_basicsr.train`` and
  ``mclir_basicsr.test``: CPU-safe, root-relative resume; ``prefetch_mode: cuda`` without a GPU; distributed
  initialisation and DDP wrapping that work on CPU (gloo) as well as on GPUs (nccl); a VGG factory that never
  tries to download weights.
"""
import importlib
import os
import os.path as osp
import sys
import types
import warnings

import torch

_TV_TENSOR_MODULE = 'torchvision.transforms.functional_tensor'


def install_import_shims():
    """Provide ``torchvision.transforms.functional_tensor`` if this torchvision lacks it.

    Must run before the first ``import basicsr``. Idempotent.
    """
    if _TV_TENSOR_MODULE in sys.modules:
        return
    try:
        importlib.import_module(_TV_TENSOR_MODULE)
        return
    except ImportError:
        pass
    if 'basicsr' in sys.modules and 'basicsr.data.degradations' not in sys.modules:
        # basicsr was imported (or half-imported) before us: the shim would come too late for it.
        warnings.warn('basicsr was imported before mclir_basicsr; with torchvision >= 0.17 `import basicsr` '
                      'fails unless `import mclir_basicsr` comes first.')
    from torchvision.transforms import functional as tv_functional
    shim = types.ModuleType(_TV_TENSOR_MODULE)
    shim.rgb_to_grayscale = tv_functional.rgb_to_grayscale
    shim.__doc__ = 'Compatibility alias created by mclir_basicsr (removed from torchvision 0.17).'
    sys.modules[_TV_TENSOR_MODULE] = shim


# ----------------------------------------------------------------------------------------------------------------
# VGG weights: never download
# ----------------------------------------------------------------------------------------------------------------
def torchvision_vgg_filename(vgg_type):
    """File name torchvision uses for the ImageNet weights of ``vgg_type`` (e.g. ``vgg19-dcbb9e9d.pth``)."""
    from torchvision.models import vgg as tv_vgg
    weights_enum = getattr(tv_vgg, f'{vgg_type.upper()}_Weights', None)  # vgg16_bn -> VGG16_BN_Weights
    if weights_enum is None:
        raise ValueError(f'unknown vgg_type {vgg_type!r}; use one of vgg11, vgg13, vgg16, vgg19 (+ _bn)')
    return osp.basename(weights_enum.IMAGENET1K_V1.url)


def vgg_weight_search_paths(vgg_type):
    """Places searched, in order, for the ImageNet weights of ``vgg_type`` when no file is named."""
    fname = torchvision_vgg_filename(vgg_type)
    paths = [osp.join('experiments', 'pretrained_models', fname)]
    try:
        hub_dir = torch.hub.get_dir()
    except Exception:  # pragma: no cover - torch.hub always has a dir
        hub_dir = osp.join(osp.expanduser('~'), '.cache', 'torch', 'hub')
    paths.append(osp.join(hub_dir, 'checkpoints', fname))
    return paths


def find_vgg_weights(vgg_type):
    """Return the first existing weights file for ``vgg_type`` or ``None``."""
    for path in vgg_weight_search_paths(vgg_type):
        if osp.isfile(path):
            return path
    return None


def missing_vgg_weights_message(vgg_type, key='vgg_weights'):
    fname = torchvision_vgg_filename(vgg_type)
    places = '\n  '.join(vgg_weight_search_paths(vgg_type))
    return (f'ImageNet weights for {vgg_type} were asked for but no file was found (nothing is downloaded). '
            f'Put torchvision\'s {fname} in one of:\n  {places}\n'
            f'or set {key} to the path of that file, or set {key}: random to train with random VGG features '
            f'on purpose (results then differ from the paper).')


def build_torchvision_vgg_features(vgg_type, weights_path=None):
    """Build ``torchvision.models.<vgg_type>().features`` without its classifier, never downloading.

    Args:
        vgg_type (str): vgg11|vgg13|vgg16|vgg19, optionally with ``_bn``.
        weights_path (str | None): a torchvision VGG state dict (only ``features.*`` keys are needed).
            ``None`` keeps torchvision's random initialisation.
    Returns:
        nn.Sequential: the feature layers.
    """
    from torch import nn
    from torchvision.models import vgg as tv_vgg
    base = vgg_type.replace('_bn', '')
    cfg_key = {'vgg11': 'A', 'vgg13': 'B', 'vgg16': 'D', 'vgg19': 'E'}.get(base)
    if cfg_key is None:
        raise ValueError(f'unknown vgg_type {vgg_type!r}; use one of vgg11, vgg13, vgg16, vgg19 (+ _bn)')
    features = tv_vgg.make_layers(tv_vgg.cfgs[cfg_key], batch_norm=vgg_type.endswith('_bn'))
    for m in features.modules():  # the same initialisation torchvision's VGG applies
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if weights_path is not None:
        try:
            state = torch.load(weights_path, map_location='cpu', weights_only=True)
        except Exception as err:
            raise ValueError(f'cannot read VGG weights file {weights_path}: {err}. It must be a torchvision '
                             f'{vgg_type} state dict (e.g. {torchvision_vgg_filename(vgg_type)}).') from err
        if isinstance(state, dict) and 'state_dict' in state and isinstance(state['state_dict'], dict):
            state = state['state_dict']
        if not isinstance(state, dict):
            raise ValueError(f'VGG weights file {weights_path} does not hold a state dict')
        feat_state = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
        try:
            features.load_state_dict(feat_state, strict=True)
        except RuntimeError as err:
            raise ValueError(f'VGG weights file {weights_path} does not match vgg_type {vgg_type!r} (it must be a '
                             f'torchvision {vgg_type} state dict such as {torchvision_vgg_filename(vgg_type)}): '
                             f'{str(err).splitlines()[0]}') from err
    return features


class _VGGFeaturesOnly(torch.nn.Module):
    """A torchvision VGG without its classifier; ``load_state_dict`` takes a full VGG file (BasicSR's
    ``VGG_PRETRAIN_PATH`` branch loads one) and uses its ``features.*`` tensors."""

    def __init__(self, features):
        super().__init__()
        self.features = features

    def load_state_dict(self, state_dict, strict=True, assign=False):
        feats = {k: v for k, v in state_dict.items() if k.startswith('features.')}
        return super().load_state_dict(feats, strict=strict, assign=assign)


class _VGGFactory(types.SimpleNamespace):
    """Stands in for ``torchvision.models.vgg`` inside ``basicsr.archs.vgg_arch``.

    BasicSR calls ``vgg.<type>(pretrained=True|False)``; with ``pretrained=True`` torchvision would download.
    Here it reads the weights from disk or fails at once with a message saying where to put the file.
    ``weights_path`` (set by :func:`vgg_source`) overrides the search; ``'random'`` keeps random weights.
    """

    weights_path = None

    def __getattr__(self, name):
        if not name.startswith('vgg'):
            raise AttributeError(name)

        def factory(pretrained=False, **_):
            path = self.weights_path
            if path == 'random':
                path = None
            elif path is None and pretrained:
                path = find_vgg_weights(name)
                if path is None:
                    raise FileNotFoundError(missing_vgg_weights_message(name, key='VGG weights'))
            return _VGGFeaturesOnly(build_torchvision_vgg_features(name, path))

        return factory


_VGG_FACTORY = _VGGFactory()


class vgg_source:  # noqa: N801 - used as a context manager, reads like a function
    """Context manager: make ``basicsr.archs.vgg_arch.VGGFeatureExtractor`` read ``weights`` (a path or
    ``'random'``) instead of its fixed ``VGG_PRETRAIN_PATH`` or a download. Used by :class:`SPNLoss`."""

    def __init__(self, weights):
        self.weights = weights

    def __enter__(self):
        from basicsr.archs import vgg_arch
        self._saved = (vgg_arch.VGG_PRETRAIN_PATH, _VGG_FACTORY.weights_path)
        vgg_arch.VGG_PRETRAIN_PATH = osp.join(os.devnull, 'no-such-vgg-file')  # forces the factory branch
        _VGG_FACTORY.weights_path = self.weights
        return self

    def __exit__(self, *exc):
        from basicsr.archs import vgg_arch
        vgg_arch.VGG_PRETRAIN_PATH, _VGG_FACTORY.weights_path = self._saved
        return False


def install_vgg_factory():
    """Route BasicSR's VGG construction (also its PerceptualLoss) through :class:`_VGGFactory`."""
    from basicsr.archs import vgg_arch
    vgg_arch.vgg = _VGG_FACTORY


# ----------------------------------------------------------------------------------------------------------------
# Runtime fixes for our entry points
# ----------------------------------------------------------------------------------------------------------------
def init_dist_any_device(launcher, backend=None, **kwargs):
    """``basicsr.utils.dist_util.init_dist`` that also works without GPUs (gloo) and honours LOCAL_RANK."""
    import torch.distributed as dist
    import torch.multiprocessing as mp
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    if launcher == 'slurm':
        from basicsr.utils import dist_util
        if backend is None:
            backend = 'nccl' if torch.cuda.is_available() else 'gloo'
        return dist_util._init_dist_slurm(backend, **kwargs)
    if launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher}')
    use_cuda = torch.cuda.is_available() and torch.cuda.device_count() > 0
    if backend is None:
        backend = 'nccl' if use_cuda else 'gloo'
    if use_cuda:
        local_rank = int(os.environ.get('LOCAL_RANK', os.environ.get('RANK', 0)))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, **kwargs)


def _model_to_device(self, net):
    """``BaseModel.model_to_device`` without the CUDA-only ``device_ids`` under DDP on CPU."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel
    net = net.to(self.device)
    if self.opt['dist']:
        find_unused = self.opt.get('find_unused_parameters', False)
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
    elif self.opt['num_gpu'] > 1:
        net = DataParallel(net)
    return net


def _unwrap_keys_then(print_different_keys):
    """``BaseModel.load_network`` strips ``module.`` only; a checkpoint saved from a ``torch.compile``d network
    (keys ``_orig_mod.*``) would not load. BasicSR hands the loaded dict to ``_print_different_keys_loading`` just
    before ``load_state_dict``, so the keys are normalised there, in place."""
    from .utils import strip_wrapper_prefixes

    def normalise_then_print(self, crt_net, load_net, strict=True):
        for k in [k for k in load_net if strip_wrapper_prefixes(k) != k]:
            load_net[strip_wrapper_prefixes(k)] = load_net.pop(k)
        return print_different_keys(self, crt_net, load_net, strict)

    normalise_then_print._mclir_wrapped = True
    return normalise_then_print


def fix_options(opt):
    """Post-process parsed BasicSR options for this machine; returns ``opt`` (changed in place).

    * ``prefetch_mode: cuda`` without a GPU: BasicSR's CUDAPrefetcher would crash; use the plain loader.
    * ``prefetch_mode: cpu`` with ``num_worker_per_gpu: 0``: BasicSR's PrefetchDataLoader starts a second reader
      thread on the same dataset object at the first epoch; the lazily opened file client races
      (``KeyError: 'type'`` in the thread) and the training loop then waits forever. Use the plain loader.
    """
    train_set = (opt.get('datasets') or {}).get('train')
    if train_set is None:
        return opt
    mode = train_set.get('prefetch_mode')
    if mode == 'cuda' and opt.get('num_gpu', 0) == 0:
        warnings.warn('datasets.train.prefetch_mode is cuda but no GPU is used (num_gpu: 0): using the CPU '
                      'prefetcher instead.')
        train_set['prefetch_mode'] = None
    elif mode == 'cpu' and not train_set.get('num_worker_per_gpu'):
        warnings.warn('datasets.train.prefetch_mode: cpu with num_worker_per_gpu: 0 hangs in BasicSR 1.4.2 (two '
                      'threads read one dataset); using the plain CPU prefetcher instead.')
        train_set['prefetch_mode'] = None
    return opt


def patch_basicsr_runtime():
    """Apply the runtime fixes used by ``mclir_basicsr.train`` / ``mclir_basicsr.test``. Idempotent."""
    import basicsr.test as bsr_test
    import basicsr.train as bsr_train
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import options as bsr_options

    from . import resume
    bsr_options.init_dist = init_dist_any_device
    BaseModel.model_to_device = _model_to_device
    if not getattr(BaseModel._print_different_keys_loading, '_mclir_wrapped', False):
        BaseModel._print_different_keys_loading = _unwrap_keys_then(BaseModel._print_different_keys_loading)
    bsr_train.load_resume_state = resume.load_resume_state
    if not hasattr(bsr_train.EnlargedSampler, 'skip_once'):
        bsr_train.EnlargedSampler = resume.resumable_sampler_class()
    if not getattr(bsr_train.create_train_val_dataloader, '_mclir_wrapped', False):
        bsr_train.create_train_val_dataloader = resume.wrap_create_loaders(bsr_train.create_train_val_dataloader)
    for module in (bsr_train, bsr_test):
        if not getattr(module.parse_options, '_mclir_wrapped', False):
            module.parse_options = _wrap_parse_options(module.parse_options)


def _wrap_parse_options(parse_options):
    def parse_and_check(root_path, is_train=True):
        opt, args = parse_options(root_path, is_train=is_train)
        fix_options(opt)
        from .options import check_options
        from .preflight import check_inputs
        check_options(opt)
        check_inputs(opt)
        return opt, args

    parse_and_check._mclir_wrapped = True
    return parse_and_check
