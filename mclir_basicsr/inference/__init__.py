"""Restoring users' own images (no ground truth, any size): ``mclir-restore`` and its Python function.

    from mclir_basicsr.inference import load_restorer, restore_images
    restorer = load_restorer(network='EDSR', network_args={...}, weights='net_g_latest.pth', tile=512)
    report = restore_images(['photos/'], 'restored/', restorer)

See docs/restore.md.
"""
from .inputs_outputs import Report, restore_images  # noqa: F401
from .option_source import RestoreError  # noqa: F401
from .restorer import Restorer, load_restorer  # noqa: F401
