"""VGG weight checks: the files SPNLoss, PositiveContrastLoss and BasicSR's PerceptualLoss will load (found, and,
when named by ``vgg_weights``, matching their ``vgg_type``).

Built on :mod:`mclir_basicsr.vgg_weights` (the same resolver and reader the losses use); nothing is downloaded.
"""
from ...losses.vgg_weights import (RANDOM, find_vgg_weights, how_to_get_vgg_weights, read_vgg_features_state,
                                   resolve_vgg_weights, where_to_put_vgg_weights)
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
PERCEPTUAL_DEFAULT_VGG = 'vgg19'  # BasicSR's


def _check_named(block, option_key, default_vgg):
    """A block whose ``vgg_weights`` names the file (or ``random``); without it, the standard places."""
    key = f'train.{option_key}.vgg_weights'
    vgg_type = block.get('vgg_type') or default_vgg
    spec = block.get('vgg_weights')
    if spec is not None and not isinstance(spec, str):
        raise OptionError(f'{key} must be a file path or "random", got {spec!r}.')
    try:
        weights = resolve_vgg_weights(spec, vgg_type, key)
    except FileNotFoundError as err:  # its message starts with the key
        raise OptionError(str(err)) from None
    except ValueError as err:  # an unknown vgg_type
        raise OptionError(f'train.{option_key}.vgg_type: {err}.') from None
    if weights != RANDOM:
        _check_vgg_file(weights, vgg_type, key)


def _check_perceptual(block, option_key):
    """BasicSR's PerceptualLoss builds its VGG whatever its weights; without ``vgg_weights`` it asks for ImageNet
    weights (``pretrained=True``) from the standard places."""
    if block.get('vgg_weights') is not None:
        _check_named(block, option_key, PERCEPTUAL_DEFAULT_VGG)
        return
    key = f'train.{option_key}'
    vgg_type = block.get('vgg_type', PERCEPTUAL_DEFAULT_VGG)
    try:
        weights = find_vgg_weights(vgg_type)
    except ValueError as err:  # an unknown vgg_type
        raise OptionError(f'{key}.vgg_type: {err}.') from None
    if weights is None:
        raise OptionError(f'{key}: BasicSR\'s PerceptualLoss needs ImageNet weights for {vgg_type} and none were '
                          f'found (nothing is downloaded): ' + where_to_put_vgg_weights(vgg_type, f'{key}.vgg_weights')
                          + how_to_get_vgg_weights(vgg_type, f'{key}.vgg_weights'))


def check_vgg_weights(opt):
    """The VGG weights training will load: ``train.spn_opt`` (SPNLoss), ``train.pocl_opt``
    (PositiveContrastLoss) and every ``train.<x>_opt`` of BasicSR's PerceptualLoss (``perceptual_opt``; the MCLIR
    authors' ``perceptual_pos_opt``).

    Raises:
        OptionError: a file is missing, or (named by ``vgg_weights``) is not torchvision's weights of that
        ``vgg_type``.
    """
    train_opt = opt.get('train') or {}
    for option_key, (loss_type, default_vgg) in OUR_VGG_LOSSES.items():
        block = train_opt.get(option_key)
        if isinstance(block, dict) and block.get('type') == loss_type:
            _check_named(block, option_key, default_vgg)
    for option_key, block in train_opt.items():
        if str(option_key).endswith('_opt') and isinstance(block, dict) and block.get('type') == 'PerceptualLoss':
            _check_perceptual(block, str(option_key))
