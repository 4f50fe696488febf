"""Test with BasicSR's test pipeline: ``python -m mclir_basicsr.test -opt Y.yml`` or ``mclir-test -opt Y.yml``.

Reports the metrics of the option file (PSNR/SSIM ...) in the log as BasicSR does, saves images under
``results/<name>/visualization``, and also writes ``results/<name>/metrics.json``
(``{dataset_name: {metric: value}}``) for scripts. ``--import MODULE`` imports a package's registries first.
"""
import sys
from basicsr import test as basicsr_test

from mclir_basicsr.cli.pipeline import run_pipeline


def main(argv=None):
    """Console script ``mclir-test``; returns the exit code."""
    return run_pipeline(basicsr_test.test_pipeline, argv, 'mclir-test')


if __name__ == '__main__':
    sys.exit(main())
