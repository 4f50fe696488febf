"""The training step of this plugin's model classes whose network returns more than an image (DSRIR, ConStyle):
losses from the class's ``training_losses(current_iter)``, one backward, the divergence guard around the step."""
from .options import parse_amp, parse_grad_clip, parse_guard
from .precision import StepPrecision
from .step_guard import StepGuard

STEP_KEYS = ('divergence_guard', 'grad_clip', 'use_grad_clip')  # train keys the step reads


class GuardedStep:
    """Mixin placed before ``AtomicCheckpoints``: ``optimize_parameters`` = progressive crop, losses, backward,
    guarded optimiser step (a non-finite loss or gradient skips it; ``train.grad_clip`` applies), EMA. The guard's
    count of bad steps is in the training state (``bad_steps``)."""

    @staticmethod
    def check_step_options(train_opt):
        parse_guard(train_opt)
        parse_grad_clip(train_opt)

    def init_training_settings(self):
        super().init_training_settings()
        train_opt = self.opt['train']
        self.guard = StepGuard(parse_guard(train_opt), StepPrecision(parse_amp({}), self.device), self.device,
                               parse_grad_clip(train_opt))

    def optimize_parameters(self, current_iter):
        self.progressive_batch(current_iter)
        self.optimizer_g.zero_grad()
        losses = self.training_losses(current_iter)
        l_total = sum(losses.values())
        l_total.backward()
        self.log_dict = self.reduce_loss_dict(losses)
        self.log_dict.update(self.step_diagnostics())
        if not self.guard.step(self.optimizer_g, self.net_g.parameters(), l_total, current_iter, self.log_dict):
            return  # skipped: weights and EMA unchanged
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def step_diagnostics(self):
        """Extra values to log for this step (plain floats)."""
        return {}

    def plugin_training_state(self):
        return {'format': 1, 'bad_steps': self.guard.bad_steps}

    def load_plugin_training_state(self, entry, source):
        if entry is not None:
            self.guard.bad_steps = int(entry.get('bad_steps', 0))
