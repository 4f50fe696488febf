"""The one training step of this plugin's model classes, with its hooks.

``optimize_parameters``: the batch cropped as ``train.progressive`` says, every optimizer's gradients zeroed, the
class's losses computed under autocast (``train.amp``), one backward, the guard (``train.divergence_guard``: a step
with a non-finite loss or gradient on any rank is skipped; ``train.grad_clip`` applies), every optimizer steps, the
EMA, then the class's after-step work. A method adds what is its own through the hooks:

* :meth:`training_losses` (required for a network that returns more than an image): the losses, ``self.output`` set;
* :meth:`step_losses`: what the step sums (default: :meth:`training_losses`; SPN adds its terms here);
* :meth:`loss_context`: a context around the losses (SPN: one VGG pass per tensor);
* :meth:`step_log`: plain floats to log beside the losses;
* :meth:`after_step`: after a good optimiser step (SPN: refresh the history copies).

``train.progressive`` (:mod:`.progressive`) crops and subsamples the batch first in every step; the crop
generator's state is in the training state.

The guard's count of bad steps and the gradient scaler are in every training state (``bad_steps``, ``amp``).
"""
import contextlib
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info

from .checkpoints import AtomicCheckpoints
from .options import parse_amp, parse_grad_clip, parse_guard
from .precision import StepPrecision
from .progressive import BATCH_KEYS, SEED_OFFSET, ProgressivePatches, check_progressive
from .reconstruction import reconstruction_losses
from .step_guard import StepGuard

STEP_KEYS = ('divergence_guard', 'grad_clip', 'use_grad_clip', 'amp')  # the train keys the step reads


class TrainingStep(AtomicCheckpoints):
    """Mixin placed before a BasicSR model class (``class M(TrainingStep, SRModel)``); see the module doc."""

    step_reads_output = False  # True where a hook reads self.output after training_losses (SPN)
    default_grad_clip = None  # GradClipConfig applied when train sets neither grad_clip nor use_grad_clip

    @staticmethod
    def check_step_options(train_opt):
        parse_guard(train_opt)
        parse_grad_clip(train_opt)
        parse_amp(train_opt)

    def init_training_settings(self):
        train_opt = self.opt['train']
        self.train_net_g = self.net_g  # what the step calls; net_g (saved, validated) stays as it is
        self.precision = StepPrecision(parse_amp(train_opt), self.device)
        self.guard = StepGuard(parse_guard(train_opt), self.precision, self.device,
                               parse_grad_clip(train_opt, default=self.default_grad_clip))
        super().init_training_settings()
        schedule = check_progressive(self.opt)
        self.progressive = None
        if schedule is not None:
            seed = int(self.opt.get('manual_seed') or 0) + SEED_OFFSET + get_dist_info()[0]
            self.progressive = ProgressivePatches(**schedule, seed=seed)

    def progressive_batch(self, current_iter):
        """This step's batch cropped and subsampled as ``train.progressive`` says (nothing without it)."""
        if self.progressive is None:
            return
        tensors = {k: getattr(self, k) for k in BATCH_KEYS if getattr(self, k, None) is not None}
        cropped, changed = self.progressive.apply(tensors, current_iter)
        for key, value in cropped.items():
            setattr(self, key, value)
        if changed:
            stage = self.progressive.current_stage
            get_root_logger().info(f'Progressive training, stage {stage + 1}/{len(self.progressive.patch_sizes)} from '
                                   f'iteration {current_iter}: patch {self.progressive.patch_sizes[stage]}, batch '
                                   f'{self.progressive.batch_sizes[stage]} per GPU.')

    def optimize_parameters(self, current_iter):
        self.progressive_batch(current_iter)
        for optimizer in self.optimizers:
            optimizer.zero_grad()
        with self.precision.autocast(), self.loss_context():
            losses = self.step_losses(current_iter)
            l_total = sum(losses.values())
        self.precision.backward(l_total)  # also for a bad loss: under DDP every rank joins the gradient all-reduce
        self.log_dict = self.reduce_loss_dict(losses)
        self.log_dict.update(self.step_log(losses, current_iter))
        if not self.guard.step(self.optimizers, l_total, current_iter, self.log_dict):
            return  # skipped: weights, optimizer states, EMA unchanged
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        self.after_step(current_iter)

    # ------------------------------------------------------------------ hooks
    def training_losses(self, current_iter):
        """``self.output`` = the network on ``self.lq``, and its losses against GT."""
        self.output = self.train_net_g(self.lq)
        return self.reconstruction_losses(self.output)

    def step_losses(self, current_iter):
        return self.training_losses(current_iter)

    def loss_context(self):
        return contextlib.nullcontext()

    def step_log(self, losses, current_iter):
        return self.step_diagnostics()

    def step_diagnostics(self):
        """Extra plain floats to log for this step (a method with more to say overrides this)."""
        return {}

    def after_step(self, current_iter):
        """After a good optimiser step and the EMA."""

    def reconstruction_losses(self, output):
        """SRModel's losses against GT: ``l_pix``, ``l_percep``, ``l_style`` (those configured)."""
        return reconstruction_losses(self, output)

    # ------------------------------------------------------------------ training state
    def plugin_training_state(self):
        state = {'bad_steps': self.guard.bad_steps, 'amp': self.precision.state_dict()}
        if self.progressive is not None:
            state['progressive'] = self.progressive.state_dict()
        return state

    def rank_local_state(self):
        state = super().rank_local_state()
        if self.progressive is not None:  # seeded per rank
            state['progressive'] = self.progressive.generator.get_state()
        return state

    def load_rank_local_state(self, state):
        super().load_rank_local_state(state)
        if self.progressive is not None and state.get('progressive') is not None:
            self.progressive.generator.set_state(state['progressive'])

    def training_state_saved(self, path):
        self.guard.last_saved = path

    def load_plugin_training_state(self, entry, source):
        if entry is None:
            return
        self.guard.bad_steps = int(entry.get('bad_steps', 0))
        self.guard.last_saved = source
        self.precision.load_state_dict(entry.get('amp'), source=source)
        if self.progressive is not None and entry.get('progressive') is not None:
            if not self.progressive.load_state_dict(entry['progressive']):
                get_root_logger().warning(f'train.progressive differs from the schedule {source} was trained with: '
                                          f'the new schedule applies from the next iteration.')
