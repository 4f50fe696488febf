"""Build the demo data sets from scikit-image's bundled photos (same as the ``mclir-demo-data`` command).

Example: ``python datasets/make_demo_data.py --root datasets/demo [--tasks sr_x2 dn_s25] [--force] [--seed 0]``
"""
import sys

import mclir_basicsr  # noqa: F401  (must come before anything that imports basicsr)
from mclir_basicsr.data.demo_data import main

if __name__ == '__main__':
    sys.exit(main())
