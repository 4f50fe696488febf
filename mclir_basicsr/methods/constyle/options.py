"""The keys of ConStyleModel and IRConStyleModel (the authors' spelling), checked before anything is written.

* ``train.ConStyle_iter`` (int >= 0, required by ConStyleModel): the prompter trains with the restorer up to this
  iteration (with the auxiliary losses), then is frozen;
* ``train.CrossEntropy_opt`` (InfoNCE, ``type: CrossEntropyLoss``), ``train.content_opt`` (``ContentLoss`` /
  ``ConStyleContentLoss``), ``train.style_opt`` (``StyleLoss`` / ``ConStyleStyleLoss``): optional loss blocks;
* ``train.mixing_augs``: ``{mixup, mixup_beta, use_identity}``, Restormer's mixup of training batches
  (:mod:`.mixing`);
* ``path.pretrain_constyle`` (IRConStyleModel, required): a file with a trained prompter (a ConStyleModel
  ``net_g_*.pth``), read under ``path.param_key_constyle`` (default ``params_ema``), loaded with
  ``path.strict_load_constyle`` (default true).
"""
from ...checks.options import OptionError, check_bool, check_int, check_loss_blocks, check_network_trait
from ...training.progressive import check_progressive
from .mixing import parse_mixing

AUX_LOSSES = {'CrossEntropy_opt': 'l_CrossEntropy', 'content_opt': 'l_content', 'style_opt': 'l_style'}
EXAMPLES = {'CrossEntropy_opt': 'CrossEntropyLoss', 'content_opt': 'ContentLoss', 'style_opt': 'StyleLoss'}
PATH_KEYS = ('pretrain_constyle', 'strict_load_constyle', 'param_key_constyle')  # IRConStyleModel's prompter file


def check_constyle_options(opt, model_type, frozen=False):
    """``frozen``: IRConStyleModel (a pre-trained prompter, never trained here)."""
    check_network_trait(opt, 'has_prompter', model_type,
                        'a restorer with a ConStyle prompter (ConStyleNAFNet, ConStyleRestormer, ConStyleMaxim)')
    net = opt.get('network_g') or {}
    train_opt = opt.get('train') or {}
    if not train_opt.get('pixel_opt') and not train_opt.get('perceptual_opt'):
        raise OptionError('train.pixel_opt is required: the restoration loss, e.g. {type: L1Loss, loss_weight: 1}.')
    given = [k for k in AUX_LOSSES if train_opt.get(k) is not None]
    if frozen:
        extra = given + [k for k in ('ConStyle_iter', ) if k in train_opt]
        if extra:
            raise OptionError(f'train.{extra[0]}: IRConStyleModel keeps the pre-trained prompter frozen, so the '
                              f'prompter\'s losses and ConStyle_iter do not apply. Remove them (or use ConStyleModel '
                              f'to train the prompter).')
        _check_prompter_keys(opt)
    else:
        if 'ConStyle_iter' not in train_opt:
            raise OptionError('train.ConStyle_iter is required: the iteration up to which the prompter trains '
                              '(the authors use 250000), after which it is frozen.')
        check_int(train_opt['ConStyle_iter'], 'train.ConStyle_iter', low=0)
        if given and train_opt['ConStyle_iter'] > 0 and net.get('Train', True) is False:
            raise OptionError('network_g.Train: false builds no key encoder and no queue, which the prompter\'s '
                              f'losses ({", ".join(given)}) need. Set Train: true.')
    check_loss_blocks(train_opt, EXAMPLES)
    parse_mixing(train_opt.get('mixing_augs'))
    check_progressive(opt)


def _check_prompter_keys(opt):
    """The file itself is checked with the other inputs (:func:`mclir_basicsr.preflight.checkpoints`)."""
    path_opt = opt.get('path') or {}
    src = path_opt.get('pretrain_constyle')
    if not src:
        raise OptionError('path.pretrain_constyle is required by IRConStyleModel: a ConStyleModel checkpoint '
                          '(experiments/<name>/models/net_g_<iter>.pth) whose prompter is loaded and frozen.')
    check_bool(path_opt.get('strict_load_constyle', True), 'path.strict_load_constyle')
