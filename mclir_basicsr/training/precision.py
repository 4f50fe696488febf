"""Mixed precision for the training step (``train.amp``), with torch's own switches.

The step (history copies, network, losses) runs under ``torch.autocast(enabled=...)`` on the model's device
type; parameters, optimiser and history copies stay float32, and validation runs in float32. float16 adds loss
scaling with ``torch.amp.GradScaler(enabled=...)``: the loss is scaled before ``backward``, the gradients are
unscaled before they are checked, and a step whose gradients overflowed is skipped with the scale halved. That
is the scaler's normal operation, so the divergence guard does not count such a step while the scale stays
>= :data:`MIN_HEALTHY_SCALE`; below it, the gradients overflow float16 even unscaled and the step counts as bad.
With ``enabled: false`` both switches are off and cost nothing.
"""
import torch
from basicsr.utils import get_root_logger

MIN_HEALTHY_SCALE = 1.0


def cpu_has_native_half():
    """Whether this CPU has bf16/fp16 arithmetic that oneDNN uses (AVX512-BF16/FP16 or AMX)."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = f.read()
    except OSError:
        return torch.backends.cpu.get_cpu_capability().startswith('AVX512')
    return any(flag in flags for flag in ('avx512_bf16', 'amx_bf16', 'avx512_fp16', 'amx_fp16'))


class StepPrecision:
    """Autocast and (float16) loss scaling for the optimisers of a step.

    Args:
        cfg (AmpConfig): from :func:`mclir_basicsr.training.options.parse_amp`.
        device (torch.device): where the step runs.
    """

    def __init__(self, cfg, device):
        self.enabled = cfg.enabled
        self.dtype = getattr(torch, cfg.dtype)
        self.device_type = torch.device(device).type
        self.scaler = torch.amp.GradScaler(self.device_type, init_scale=cfg.init_scale,
                                           enabled=cfg.enabled and self.dtype == torch.float16)
        if self.enabled and self.device_type == 'cpu' and not cpu_has_native_half():
            get_root_logger().warning(
                f'train.amp on a CPU without native bf16/fp16 instructions (torch reports '
                f'{torch.backends.cpu.get_cpu_capability()}): autocast is emulated and the step gets much SLOWER '
                f'(measured ~45x on an AVX2 CPU, benchmarks/README.md). Set train.amp.enabled: false here.')

    @property
    def scaling(self):
        """True when a float16 gradient scaler is active."""
        return self.scaler.is_enabled()

    def describe(self):
        if not self.enabled:
            return 'float32'
        name = 'bf16' if self.dtype == torch.bfloat16 else 'fp16'
        return f'{name} autocast on {self.device_type}' + (
            f', GradScaler (init scale {self.scaler.get_scale():g})' if self.scaling else '')

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)

    def backward(self, loss):
        self.scaler.scale(loss).backward()

    def unscale_(self, optimizer):
        """Divide the gradients by the scale, so they are checked at their true size (no-op without scaling)."""
        self.scaler.unscale_(optimizer)

    def step(self, optimizers):
        """``step()`` of every optimizer; with scaling, skipped if the gradients overflowed, and the scale updated
        once."""
        for optimizer in optimizers:
            self.scaler.step(optimizer)
        self.scaler.update()

    def skip(self):
        """End a step WITHOUT touching the weights. ``scaler.step`` would still call ``optimizer.step()`` when the
        gradients are finite (e.g. a non-finite loss with finite gradients), so only the scale is updated: it
        halves if the unscaled gradients overflowed, and the scaler is ready for the next step."""
        if self.scaling:
            self.scaler.update()

    @property
    def scale(self):
        return self.scaler.get_scale() if self.scaling else 1.0

    def state_dict(self):
        return {'scaler': self.scaler.state_dict()} if self.scaling else {}

    def load_state_dict(self, state, source='resume state'):
        if not self.scaling:
            return
        if state and 'scaler' in state:
            self.scaler.load_state_dict(state['scaler'])
        else:
            get_root_logger().warning(f'{source} holds no gradient-scaler state (trained without train.amp fp16?): '
                                      f'the scale restarts at {self.scaler.get_scale():g}.')
