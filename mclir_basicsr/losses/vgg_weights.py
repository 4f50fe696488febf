"""VGG feature weights from disk, never from the network: file names, where to look, one resolver, one reader.

BasicSR's ``VGGFeatureExtractor`` asks torchvision for ``vgg<N>(pretrained=True)``, which downloads. The runtime
fix ``vgg_never_downloads`` (:mod:`mclir_basicsr.runtime.fixes`) puts :data:`VGG_FACTORY` in its place: it reads
the weights from a file, or fails at once saying where to put the file. :class:`vgg_source` lets one loss choose
its file (or ``'random'``) while it builds its extractor.
"""
import contextlib
import contextvars
import json
import logging
import os
import os.path as osp
import torch
from basicsr.archs import vgg_arch
from torch import nn
from torchvision.models import vgg as tv_vgg

from ..utils import few

RANDOM = 'random'
FETCHED_VGG_TYPE = 'vgg16'  # the one mclir-fetch-vgg writes
RANDOM_VGG_SEED = 0  # random VGG features are the same in every run
_CFG_OF = {'vgg11': 'A', 'vgg13': 'B', 'vgg16': 'D', 'vgg19': 'E'}


def torchvision_vgg_filename(vgg_type):
    """File name torchvision uses for the ImageNet weights of ``vgg_type`` (e.g. ``vgg19-dcbb9e9d.pth``)."""
    weights_enum = getattr(tv_vgg, f'{vgg_type.upper()}_Weights', None)  # vgg16_bn -> VGG16_BN_Weights
    if weights_enum is None:
        raise ValueError(f'unknown vgg_type {vgg_type!r}; use one of vgg11, vgg13, vgg16, vgg19 (+ _bn)')
    return osp.basename(weights_enum.IMAGENET1K_V1.url)


def vgg_weight_search_paths(vgg_type):
    """Places searched, in order, for the ImageNet weights of ``vgg_type`` when no file is named."""
    fname = torchvision_vgg_filename(vgg_type)
    return [osp.join('experiments', 'pretrained_models', fname), osp.join(torch.hub.get_dir(), 'checkpoints', fname)]


def find_vgg_weights(vgg_type):
    """The first existing weights file for ``vgg_type``, or ``None``."""
    return next((p for p in vgg_weight_search_paths(vgg_type) if osp.isfile(p)), None)


def how_to_get_vgg_weights(vgg_type, key):
    """The sentence every missing-VGG message ends with: how to get the file without a download at training time,
    and the smoke-run way out (``key: random``)."""
    fname = torchvision_vgg_filename(vgg_type)
    if vgg_type == FETCHED_VGG_TYPE:
        get = f'Run mclir-fetch-vgg to write experiments/pretrained_models/{fname}'
    else:  # mclir-fetch-vgg writes vgg16 only
        get = (f'Copy torchvision\'s {fname} from a machine with internet (mclir-fetch-vgg writes vgg16 only, the '
               f'weights of vgg_type: vgg16, another network)')
    return f'{get}; for a smoke run, {key}: random uses random VGG features (results then differ from the paper).'


def where_to_put_vgg_weights(vgg_type, key):
    """Where the file is looked for, and the key that names it instead."""
    places = ' or '.join(vgg_weight_search_paths(vgg_type))
    return f'put torchvision\'s {torchvision_vgg_filename(vgg_type)} at {places}, or set {key} to its path. '


def missing_vgg_weights_message(vgg_type, key):
    return (f'ImageNet weights for {vgg_type} were asked for but no file was found (nothing is downloaded): '
            + where_to_put_vgg_weights(vgg_type, key) + how_to_get_vgg_weights(vgg_type, key))


def resolve_vgg_weights(spec, vgg_type, key):
    """The one resolver: ``'random'`` -> ``'random'``; ``None`` -> the first standard file; a path -> that file.

    Raises:
        FileNotFoundError: naming ``key`` and saying where to put the file.
    """
    if spec == RANDOM:
        return RANDOM
    if spec is None:
        found = find_vgg_weights(vgg_type)
        if found is None:
            raise FileNotFoundError(f'{key}: ' + missing_vgg_weights_message(vgg_type, key))
        return found
    path = osp.expanduser(spec)
    if not osp.isfile(path):
        where = '' if osp.isabs(path) else f' (relative to the current directory {os.getcwd()})'
        raise FileNotFoundError(f'{key}: {path} does not exist{where}; give the path of torchvision\'s {vgg_type} '
                                f'weights. ' + how_to_get_vgg_weights(vgg_type, key))
    return path


def vgg_feature_layers(vgg_type):
    """``torchvision.models.<vgg_type>().features`` with torchvision's initialisation, built without the
    classifier (cheap; on the meta device under ``torch.device('meta')``)."""
    base = vgg_type.replace('_bn', '')
    if base not in _CFG_OF:
        raise ValueError(f'unknown vgg_type {vgg_type!r}; use one of vgg11, vgg13, vgg16, vgg19 (+ _bn)')
    features = tv_vgg.make_layers(tv_vgg.cfgs[_CFG_OF[base]], batch_norm=vgg_type.endswith('_bn'))
    for m in features.modules():  # the same initialisation torchvision's VGG applies
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return features


def read_vgg_features_state(state, vgg_type, source):
    """The ``features.*`` tensors of a torchvision VGG state dict (``state``, already loaded), keys without the
    ``features.`` prefix, checked against ``vgg_type``'s layers (names and shapes).

    Raises:
        ValueError: naming ``source`` and the file torchvision would use.
    """
    fname = torchvision_vgg_filename(vgg_type)
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    if not isinstance(state, dict):
        raise ValueError(f'{source} does not hold a state dict; it must be torchvision\'s {vgg_type} weights '
                         f'({fname}).')
    have = {str(k)[len('features.'):]: v for k, v in state.items()
            if str(k).startswith('features.') and hasattr(v, 'shape')}
    with torch.random.fork_rng(devices=[]), torch.device('meta'):
        want = {k: tuple(v.shape) for k, v in vgg_feature_layers(vgg_type).state_dict().items()}
    shapes = {k: tuple(v.shape) for k, v in have.items()}
    if shapes != want:
        diff = sorted(set(want) ^ set(shapes)) + sorted(k for k in set(want) & set(shapes) if want[k] != shapes[k])
        raise ValueError(f'{source} does not match vgg_type {vgg_type!r} (features.* differ: {few(diff)}). It must be '
                         f'torchvision\'s {vgg_type} state dict ({fname}); fix the file or vgg_type.')
    return have


def build_torchvision_vgg_features(vgg_type, weights_path=None):
    """``torchvision.models.<vgg_type>().features``, never downloading.

    Args:
        vgg_type (str): vgg11|vgg13|vgg16|vgg19, optionally with ``_bn``.
        weights_path (str | None): a torchvision VGG state dict (only ``features.*`` are used); ``None`` keeps
            torchvision's random initialisation.
    """
    features = vgg_feature_layers(vgg_type)
    if weights_path is not None:
        logging.getLogger('basicsr').info(f'{vgg_type} features: {weights_path} ({describe_provenance(weights_path)}).')
        try:
            state = torch.load(weights_path, map_location='cpu', weights_only=True)
        except Exception as err:
            raise ValueError(f'cannot read VGG weights file {weights_path}: {err}. It must be a torchvision '
                             f'{vgg_type} state dict (e.g. {torchvision_vgg_filename(vgg_type)}).') from err
        features.load_state_dict(read_vgg_features_state(state, vgg_type, f'VGG weights file {weights_path}'))
    return features


def describe_provenance(weights_path):
    """Where a weights file came from, from ``<file>.provenance.json`` beside it (``mclir-fetch-vgg`` writes one)."""
    try:
        with open(f'{weights_path}.provenance.json') as f:
            info = json.load(f)
        return f'from {info.get("source")}, written {info.get("date")}, sha256 {str(info.get("sha256"))[:16]}...'
    except (OSError, ValueError):
        return 'no provenance file beside it'


class VGGFeaturesOnly(nn.Module):
    """A torchvision VGG without its classifier; ``load_state_dict`` takes a full VGG file (BasicSR's
    ``VGG_PRETRAIN_PATH`` branch loads one) and uses its ``features.*`` tensors."""

    def __init__(self, features):
        super().__init__()
        self.features = features

    def load_state_dict(self, state_dict, strict=True, assign=False):
        feats = {k: v for k, v in state_dict.items() if k.startswith('features.')}
        return super().load_state_dict(feats, strict=strict, assign=assign)


# The weights the next VGG built by BasicSR reads, set for the duration of a ``vgg_source`` block.
_CHOSEN_WEIGHTS = contextvars.ContextVar('mclir_vgg_weights', default=None)


class VGGFactory:
    """Stands in for ``torchvision.models.vgg`` inside ``basicsr.archs.vgg_arch``.

    BasicSR calls ``vgg.<type>(pretrained=True|False)``; here ``pretrained=True`` reads the weights from the
    standard places or fails at once. Inside a :func:`vgg_source` block, that block's weights are used instead.
    """

    def __getattr__(self, name):
        if not name.startswith('vgg'):
            raise AttributeError(name)

        def factory(pretrained=False, **_):
            path = _CHOSEN_WEIGHTS.get()
            if path == RANDOM:
                path = None
            elif path is None and pretrained:
                path = resolve_vgg_weights(None, name, key='vgg_weights')  # the loss block's key; unknown here
            return VGGFeaturesOnly(build_torchvision_vgg_features(name, path))

        return factory


VGG_FACTORY = VGGFactory()


@contextlib.contextmanager
def vgg_source(weights):
    """Make ``basicsr.archs.vgg_arch.VGGFeatureExtractor`` built inside the block read ``weights`` (a path or
    ``'random'``) instead of its fixed ``VGG_PRETRAIN_PATH`` or a download. Used by the losses that take
    ``vgg_weights`` (SPNLoss, PositiveContrastLoss, BasicSR's PerceptualLoss here)."""
    saved_path = vgg_arch.VGG_PRETRAIN_PATH
    vgg_arch.VGG_PRETRAIN_PATH = osp.join(os.devnull, 'no-such-vgg-file')  # forces the factory branch
    token = _CHOSEN_WEIGHTS.set(weights)
    try:
        yield
    finally:
        _CHOSEN_WEIGHTS.reset(token)
        vgg_arch.VGG_PRETRAIN_PATH = saved_path


def perceptual_loss_with_vgg_weights(basicsr_init):
    """BasicSR's ``PerceptualLoss.__init__`` with one more argument, ``vgg_weights``, meaning what it means for
    SPNLoss: a torchvision VGG file, or ``random`` (seeded) for a smoke run. Absent, BasicSR's own lookup runs
    unchanged (never a download)."""

    def __init__(self, layer_weights, vgg_type='vgg19', use_input_norm=True, range_norm=False, perceptual_weight=1.0,
                 style_weight=0., criterion='l1', vgg_weights=None):
        kwargs = dict(vgg_type=vgg_type, use_input_norm=use_input_norm, range_norm=range_norm,
                      perceptual_weight=perceptual_weight, style_weight=style_weight, criterion=criterion)
        if vgg_weights is None:
            basicsr_init(self, layer_weights, **kwargs)
            return
        if not isinstance(vgg_weights, str):
            raise ValueError(f'PerceptualLoss.vgg_weights must be a file path or "random", got {vgg_weights!r}.')
        weights = resolve_vgg_weights(vgg_weights, vgg_type, 'PerceptualLoss.vgg_weights')
        if weights == RANDOM:
            logging.getLogger('basicsr').warning('PerceptualLoss uses RANDOM VGG features (vgg_weights: random): not '
                                                 'the ImageNet feature space, so results differ from the paper.')
        # random features are seeded (the same in every run) and leave the global random stream alone
        with torch.random.fork_rng(devices=[]), vgg_source(weights):
            torch.manual_seed(RANDOM_VGG_SEED)
            basicsr_init(self, layer_weights, **kwargs)

    return __init__
