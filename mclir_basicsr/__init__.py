"""mclir-basicsr: task-agnostic training add-ons for image restoration, as a BasicSR plugin.

``import mclir_basicsr`` (before ``basicsr``):

1. makes PyPI basicsr 1.4.2 importable on current torchvision (:mod:`mclir_basicsr.runtime.shims`);
2. registers this package's archs, datasets, losses and models into BasicSR's registries (every ``*_arch.py``,
   ``*_dataset.py``, ``*_loss.py``, ``*_model.py``; each method in its folder under ``methods/``);
3. applies the runtime fixes for BasicSR 1.4.2 listed in :mod:`mclir_basicsr.runtime.fixes` (CPU resume, DDP on
   CPU, VGG without download, option and input checks, ...), for our entry points and your own ``train.py``.

Reference for the first method: Wu et al., "Learning from History: Task-agnostic Model Contrastive Learning for
Image Restoration", AAAI 2024 (arXiv 2309.06023).
"""
from .runtime.shims import install_torchvision_shim as _install_torchvision_shim

_install_torchvision_shim()

from .runtime.registration import import_registering_modules as _import_registering_modules  # noqa: E402

_import_registering_modules(__name__, __path__[0])  # archs, datasets, losses, models into BasicSR's registries

from .runtime import fixes as _fixes  # noqa: E402
from .runtime import moved as _moved  # noqa: E402
from .version import __version__  # noqa: E402,F401

_moved.install(__name__)
_fixes.install()
