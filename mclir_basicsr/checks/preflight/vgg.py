"""VGG weight checks: the files SPNLoss and PositiveContrastLoss (found, and matching their ``vgg_type``) and
BasicSR's PerceptualLoss (found) will load.

Built on :mod:`mclir_basicsr.vgg_weights` (the same resolver and reader the losses use); nothing is downloaded.
"""
from ...losses.vgg_weights import (RANDOM, find_vgg_weights, read_vgg_features_state, resolve_vgg_weights,
                                   torchvision_vgg_filename, vgg_weight_search_paths)
from ..options import OptionError
from .files import load_checked


def _check_vgg_file(path, vgg_type, key):
    """``path`` must be torchvision's ``vgg_type`` state dict (``features.*`` names and shapes)."""
    try:
        read_vgg_features_state(load_checked(path, key), vgg_type, f'{key}: {path}')
    except ValueError as err:
        raise OptionError(str(err)) from None


# losses of ours that read VGG weights: option key -> (loss type, its default vgg_type)
OUR_VGG_LOSSES = {'spn_opt': ('SPNLoss', 'vgg16'), 'pocl_opt': ('PositiveContrastLoss', 'vgg19')}


def _check_ours(block, option_key, default_vgg):
    key = f'train.{option_key}.vgg_weights'
    vgg_type = block.get('vgg_type') or default_vgg
    try:
        weights = resolve_vgg_weights(block.get('vgg_weights'), vgg_type, key)
    except FileNotFoundError as err:  # its message starts with the key
        raise OptionError(str(err)) from None
    except ValueError as err:  # an unknown vgg_type
        raise OptionError(f'train.{option_key}.vgg_type: {err}.') from None
    if weights != RANDOM:
        _check_vgg_file(weights, vgg_type, key)


def _check_perceptual(perc):
    key = 'train.perceptual_opt'
    vgg_type = perc.get('vgg_type', 'vgg19')  # BasicSR's default
    if not (perc.get('perceptual_weight', 1.0) or perc.get('style_weight', 0.)):
        return
    try:
        weights = find_vgg_weights(vgg_type)
    except ValueError as err:  # an unknown vgg_type
        raise OptionError(f'{key}.vgg_type: {err}.') from None
    if weights is None:  # BasicSR's PerceptualLoss always asks for ImageNet VGG (pretrained=True)
        places = '\n  '.join(vgg_weight_search_paths(vgg_type))
        raise OptionError(f'{key}: BasicSR\'s PerceptualLoss needs ImageNet weights for {vgg_type} and none were '
                          f'found (nothing is downloaded). Put torchvision\'s {torchvision_vgg_filename(vgg_type)} '
                          f'in one of:\n  {places}')


def check_vgg_weights(opt):
    """The VGG weights training will load: ``train.spn_opt`` (SPNLoss), ``train.pocl_opt``
    (PositiveContrastLoss) and ``train.perceptual_opt`` (BasicSR's PerceptualLoss).

    Raises:
        OptionError: a file is missing, or (SPNLoss) is not torchvision's weights of that ``vgg_type``.
    """
    train_opt = opt.get('train') or {}
    for option_key, (loss_type, default_vgg) in OUR_VGG_LOSSES.items():
        block = train_opt.get(option_key)
        if isinstance(block, dict) and block.get('type') == loss_type:
            _check_ours(block, option_key, default_vgg)
    perc = train_opt.get('perceptual_opt')
    if isinstance(perc, dict) and perc.get('type') == 'PerceptualLoss':
        _check_perceptual(perc)
