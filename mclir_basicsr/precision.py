"""Mixed precision for the training step (``train.amp``): autocast, and a gradient scaler for float16.

The step (history copies, network, losses) runs under ``torch.autocast`` on the model's device type; the
parameters, the optimiser and the history copies stay float32, and validation runs in float32.

float16 needs loss scaling: the loss is multiplied by a scale before ``backward`` and the gradients are divided by
it before the optimiser step (``torch.amp.GradScaler``). A step whose scaled gradients overflow is skipped and the
scale halved; that is the scaler's normal operation, so such a step is not counted by the divergence guard while
the scale stays >= :data:`MIN_HEALTHY_SCALE`. Below it, the gradients overflow float16 even unscaled: the guard
counts the step as bad.
"""
import contextlib

import torch

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
    """Autocast and (float16) loss scaling for one optimiser.

    Args:
        cfg (AmpConfig): from :func:`mclir_basicsr.options.parse_amp`.
        device (torch.device): where the step runs.
    """

    def __init__(self, cfg, device):
        self.enabled = cfg.enabled
        self.dtype = getattr(torch, cfg.dtype)
        self.device_type = torch.device(device).type
        self.scaler = None
        if self.enabled and self.dtype == torch.float16:
            self.scaler = torch.amp.GradScaler(self.device_type, init_scale=cfg.init_scale)
        if self.enabled and self.device_type == 'cpu' and not cpu_has_native_half():
            from basicsr.utils import get_root_logger
            get_root_logger().warning(
                f'train.amp on a CPU without native bf16/fp16 instructions (torch reports '
                f'{torch.backends.cpu.get_cpu_capability()}): autocast is emulated and the step gets much SLOWER '
                f'(measured ~45x on an AVX2 CPU, benchmarks/README.md). Set train.amp.enabled: false here.')

    def describe(self):
        if not self.enabled:
            return 'float32'
        name = 'bf16' if self.dtype == torch.bfloat16 else 'fp16'
        return f'{name} autocast on {self.device_type}' + (
            f', GradScaler (init scale {self.scaler.get_scale():g})' if self.scaler else '')

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale_(self, optimizer):
        """Divide the gradients by the scale (float16), so they can be checked and clipped at their true size."""
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer):
        """``optimizer.step()``; with a scaler, skipped when the gradients overflowed, and the scale updated."""
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def skip(self, optimizer):
        """End a step without changing the weights (the scaler's bookkeeping still advances)."""
        if self.scaler:
            self.scaler.step(optimizer)  # the recorded overflow makes it skip optimizer.step()
            self.scaler.update()

    @property
    def scale(self):
        return self.scaler.get_scale() if self.scaler else 1.0

    def is_overflow_only(self, loss):
        """A float16 step whose loss is finite: non-finite gradients are then the scaler's to handle."""
        return self.scaler is not None and bool(torch.isfinite(loss.detach()).all().item())

    def state_dict(self):
        return {'scaler': self.scaler.state_dict()} if self.scaler else {}

    def load_state_dict(self, state, source='resume state'):
        if self.scaler is None:
            return
        if state and 'scaler' in state:
            self.scaler.load_state_dict(state['scaler'])
        else:
            from basicsr.utils import get_root_logger
            get_root_logger().warning(f'{source} holds no gradient-scaler state (trained without train.amp fp16?): '
                                      f'the scale restarts at {self.scaler.get_scale():g}.')
