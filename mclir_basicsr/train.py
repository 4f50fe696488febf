"""Train with BasicSR's training loop: ``python -m mclir_basicsr.train -opt X.yml`` or ``mclir-train -opt X.yml``.

Same flags as BasicSR's ``basicsr/train.py`` (``--launcher``, ``--auto_resume``, ``--debug``, ``--force_yml``).
The experiment root is the current directory: ``experiments/``, ``tb_logger/`` are created there.
"""
import os
import sys

import mclir_basicsr  # noqa: F401  (compat shims + registration, before basicsr)
from mclir_basicsr.compat import patch_basicsr_runtime
from mclir_basicsr.models.mclir_model import TrainingDiverged
from mclir_basicsr.options import OptionError


def main(argv=None):
    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)
    patch_basicsr_runtime()
    from basicsr.train import train_pipeline
    try:
        train_pipeline(os.getcwd())
        _finish_distributed()
    except OptionError as err:
        sys.exit(f'mclir-train: option error: {err}')
    except TrainingDiverged as err:
        sys.exit(f'mclir-train: {err}')


def _finish_distributed():
    """Under DDP: wait for rank 0's final save and validation, then tear the process group down cleanly.

    BasicSR returns without this; a rank that reaches interpreter exit first while gloo's threads still run can
    abort ("terminate called without an active exception", SIGABRT), failing the whole torchrun job.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
