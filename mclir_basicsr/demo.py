"""``python -m mclir_basicsr.demo`` (= ``mclir-demo``); the demo itself is :mod:`mclir_basicsr.cli.demo`, whose names
this module also offers under its old path."""
import sys

from mclir_basicsr.cli.demo import *  # noqa: F401,F403
from mclir_basicsr.cli.demo import main

if __name__ == '__main__':
    sys.exit(main())
