"""Train with BasicSR's training loop: ``python -m mclir_basicsr.train -opt X.yml`` or ``mclir-train -opt X.yml``.

Same flags as BasicSR's ``basicsr/train.py`` (``--launcher``, ``--auto_resume``, ``--debug``, ``--force_yml``),
plus ``--import MODULE`` (repeatable or comma-separated): import a package's registries first, e.g.
``--import hat.archs,hat.models`` for ``base_model_type: HATModel``.
The experiment root is the current directory: ``experiments/``, ``tb_logger/`` are created there.
"""
import sys
from basicsr import train as basicsr_train

from mclir_basicsr.cli.pipeline import run_pipeline


def main(argv=None):
    """Console script ``mclir-train``; returns the exit code."""
    return run_pipeline(basicsr_train.train_pipeline, argv, 'mclir-train')


if __name__ == '__main__':
    sys.exit(main())
