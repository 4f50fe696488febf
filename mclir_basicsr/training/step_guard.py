"""The divergence guard (``train.divergence_guard``): an optimiser step happens only with a finite loss and finite
gradients on every rank; otherwise the weights, the optimiser state, the EMA and the history copies stay as they
are, and too many bad steps in a row stop training with a clear message."""
import torch
from basicsr.utils import get_root_logger

from .precision import MIN_HEALTHY_SCALE
from .ranks import all_ranks_agree


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps with a non-finite loss or gradient (``train.divergence_guard``)."""


class StepGuard:
    """Finishes a training step: checks it, then steps the optimiser or skips.

    Args:
        cfg (GuardConfig): ``enabled`` and ``max_consecutive_bad_steps``.
        precision (StepPrecision): autocast / gradient scaling of the step.
        device (torch.device): where the step runs (for the cross-rank vote).
        clip (GradClipConfig | None): clip the gradient norm before the optimiser step.
    """

    def __init__(self, cfg, precision, device, clip=None):
        self.cfg = cfg
        self.precision = precision
        self.device = device
        self.clip = clip  # GradClipConfig or None
        self.bad_steps = 0
        self.last_saved = None  # named in the message when training stops

    def step(self, optimizers, loss, current_iter, log_dict):
        """Step every optimizer if ``loss`` and the gradients of their parameters are finite on every rank.

        Returns:
            bool: True if the optimisers stepped (the caller then updates the EMA and the history copies).
        """
        params = [p for optimizer in optimizers for group in optimizer.param_groups for p in group['params']]
        checked = self.cfg.enabled or self.precision.scaling
        if checked or self.clip is not None:
            for optimizer in optimizers:
                self.precision.unscale_(optimizer)  # fp16: check and clip the gradients at their true size
        if checked and not self._finite(loss, params):
            self._skip(optimizers, loss, current_iter, log_dict)
            return False
        if self.clip is not None:  # the gradients are already all-reduced: the same norm on every rank
            norm = torch.nn.utils.clip_grad_norm_(params, self.clip.max_norm, self.clip.norm_type)
            log_dict['grad_norm'] = norm.item()
        self.bad_steps = 0
        self.precision.step(optimizers)
        return True

    def _finite(self, loss, params):
        """Loss and all gradients finite, on every rank (one device sync; one all-reduce under DDP)."""
        grads = [p.grad for p in params if p.grad is not None]
        values = [loss.detach().float().reshape(1)]  # float32 also under autocast (fp16 overflows at 65504)
        if grads:
            values.append(torch.stack(torch._foreach_norm(grads)).float())
        return all_ranks_agree(bool(torch.isfinite(torch.cat(values)).all().item()), self.device)

    def _skip(self, optimizers, loss, current_iter, log_dict):
        # fp16 with a finite loss: the scaled gradients overflowed, which the scaler handles by halving its scale
        overflow = self.precision.scaling and all_ranks_agree(bool(torch.isfinite(loss.detach()).all().item()),
                                                              self.device)
        self.precision.skip()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        logger = get_root_logger()
        if overflow and self.precision.scale >= MIN_HEALTHY_SCALE:
            logger.info(f'iter {current_iter}: fp16 gradient overflow, step skipped; loss scale now '
                        f'{self.precision.scale:g}.')
            return
        if not self.cfg.enabled:
            return
        self.bad_steps += 1
        limit = self.cfg.max_consecutive_bad_steps
        terms = ', '.join(f'{k}={v:.4g}' for k, v in log_dict.items())
        logger.warning(f'iter {current_iter}: non-finite loss or gradient ({terms}); step skipped, weights and history '
                       f'copies unchanged ({self.bad_steps}/{limit} in a row).')
        if self.bad_steps >= limit:
            raise TrainingDiverged(
                f'training stopped at iter {current_iter}: {self.bad_steps} consecutive steps with a non-finite loss '
                f'or gradient (train.divergence_guard.max_consecutive_bad_steps = {limit}). Last checkpoint: '
                f'{self.last_saved or "none saved yet in this run"}. Lower train.spn_opt.loss_weight (the subtract '
                f'form is unbounded) or the learning rate, or use form: ratio; then resume with --auto_resume.')
