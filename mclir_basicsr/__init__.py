"""mclir-basicsr: model contrastive learning ("learning from history") for BasicSR.

``import mclir_basicsr`` makes PyPI basicsr 1.4.2 importable on current torchvision and registers this
package's models (``MCLIRModel`` ...), losses (``SPNLoss``) and archs into BasicSR's registries.
Import it before ``basicsr``.

Reference: Wu et al., "Learning from History: Task-agnostic Model Contrastive Learning for Image
Restoration", AAAI 2024 (arXiv 2309.06023).
"""
from .compat import install_import_shims as _install_import_shims

_install_import_shims()

from .compat import install_vgg_factory as _install_vgg_factory  # noqa: E402

_install_vgg_factory()

from . import archs, data, losses, models  # noqa: E402,F401  (register into BasicSR's registries)
from .version import __version__  # noqa: E402,F401
