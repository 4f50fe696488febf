"""SRModel's losses against the ground truth, as one function every model class of ours calls."""
from collections import OrderedDict


def reconstruction_losses(model, output, stages=None):
    """``{'l_pix', 'l_percep', 'l_style'}`` (those configured) of ``output`` against ``model.gt``, from the model's
    ``cri_pix`` and ``cri_perceptual`` (``train.pixel_opt``, ``train.perceptual_opt``). With ``stages`` (a
    multi-output network's images, final first), a pixel loss that declares ``takes_stages`` gets all of them."""
    losses = OrderedDict()
    if model.cri_pix:
        staged = stages is not None and getattr(model.cri_pix, 'takes_stages', False)
        losses['l_pix'] = model.cri_pix(stages if staged else output, model.gt)
    if model.cri_perceptual:
        l_percep, l_style = model.cri_perceptual(output, model.gt)
        if l_percep is not None:
            losses['l_percep'] = l_percep
        if l_style is not None:
            losses['l_style'] = l_style
    return losses
