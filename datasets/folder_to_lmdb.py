"""Pack paired GT/LQ image folders into two lmdbs for BasicSR (same as the ``mclir-make-lmdb`` command).

Example (DIV2K x4)::

    python datasets/folder_to_lmdb.py --gt DIV2K_train_HR --lq DIV2K_train_LR_bicubic/X4 \\
        --out-gt datasets/DIV2K_HR.lmdb --out-lq datasets/DIV2K_LRx4.lmdb --lq-template '{}x4'
"""
import sys

import mclir_basicsr  # noqa: F401  (must come before anything that imports basicsr)
from mclir_basicsr.data.lmdb_tools import main

if __name__ == '__main__':
    sys.exit(main())
