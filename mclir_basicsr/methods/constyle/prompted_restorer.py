"""What every ConStyle-prompted restorer shares (ConStyleNAFNet, ConStyleRestormer, ConStyleMaxim): the prompter, the
padding, the authors' checkpoints, and the forward pass ConStyleModel trains."""
import torch
from torch import nn

from ...archs.padding import pad_to_multiple
from .constyle_authors_keys import authors_shape, authors_to_ours, rename_authors_state

PROMPTER_PREFIX = 'prompter.encoder_q.'  # the trained prompter's weights in a checkpoint (IRConStyleModel loads them)


class PromptedRestorer(nn.Module):
    """Base of a restorer with ``self.prompter`` (a :class:`~.constyle_arch.ConStyle`) and ``restore(lq, code,
    feats)``, whose inputs are padded to ``size_multiple`` (an int or ``(mh, mw)``) and cropped back.

    ``net(lq)`` restores (prompter query encoder + restorer), so validation, test, EMA and history copies use it as
    any restorer; ``net(lq, gt=gt)`` is the training pass (the prompter's contrastive pass too). The authors'
    checkpoints (their names, their queue layout) load as they are once :meth:`load_authors_checkpoints` is called.
    """

    has_prompter = True  # self.prompter: a ConStyle; read by ConStyleModel's checks
    size_multiple = 8  # three 2x downsamplings, in the restorer and in the prompter

    def load_authors_checkpoints(self):
        self._register_load_state_dict_pre_hook(lambda state, prefix, *args: rename_authors_state(state, prefix))

    @staticmethod
    def checkpoint_key(key, net_opt):
        """Our name of a checkpoint key (the authors' names are renamed); for the checks before training."""
        return authors_to_ours(key)

    @staticmethod
    def checkpoint_shape(key, shape):
        """The shape of checkpoint tensor ``key`` in our layout (the authors' queue is transposed)."""
        return authors_shape(key, shape)

    def forward(self, lq, gt=None):
        """``lq`` -> the restored image. With ``gt`` (training): a dict with ``output``, the prompter's ``codes``
        ``[q1, q2]``, the InfoNCE ``logits``, the momentum ``key`` and the style negatives ``older``."""
        h, w = lq.shape[-2:]
        lq = pad_to_multiple(lq, self.size_multiple)
        if gt is None:
            codes, feats = self.prompter(lq)
            return self.restore(lq, codes[1], feats)[..., :h, :w]
        codes, feats, logits, key, older = self.prompter.contrast(lq, pad_to_multiple(gt, self.size_multiple))
        output = self.restore(lq, codes[1], feats)[..., :h, :w]
        return dict(output=output, codes=codes, logits=logits, key=key, older=older)

    def restore(self, lq, code, feats):
        """The authors' ``forward(inp_img, q, feas)`` on a padded ``lq``."""
        raise NotImplementedError


class PromptedUNet(PromptedRestorer):
    """The prompted U-Net of ConStyleNAFNet and ConStyleRestormer: ``embed``; three levels of ``encoders`` each
    followed by a ``down`` that concatenates the prompter's features there (``prompts``); a ``bottleneck`` gated by
    the prompter's code (``fuse(cat[b, b * gate(code)])``); ``ups`` and ``decoders`` back up; an optional
    ``refinement`` (Restormer's) and the ``ending`` conv; a global residual."""

    def restore(self, lq, code, feats):
        x = self.embed(lq)
        skips = []
        for encoder, down, prompt, feat in zip(self.encoders, self.downs, self.prompts, feats):
            x = encoder(x)
            skips.append(x)
            x = down(x, prompt(feat))
        x = self.bottleneck(x)
        x = self.fuse(torch.cat([x, x * self.gate(code)[..., None, None]], dim=1))
        for i in (2, 1, 0):
            x = self.decoders[i](self.ups[i](x, skips[i]))
        if 'refinement' in self._modules:  # Restormer's
            x = self.refinement(x)
        return self.ending(x) + lq
