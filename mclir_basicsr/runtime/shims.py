"""Import-time shim: PyPI basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor``, which torchvision
0.17 removed. ``import mclir_basicsr`` provides that module name before the first ``import basicsr``.

Listed with the other BasicSR fixes in :mod:`mclir_basicsr.runtime.fixes`; this one lives apart because it must
run before ``basicsr`` can be imported at all.
"""
import importlib
import sys
import types
import warnings

TV_TENSOR_MODULE = 'torchvision.transforms.functional_tensor'


def install_torchvision_shim():
    """Provide ``torchvision.transforms.functional_tensor.rgb_to_grayscale`` if this torchvision lacks it.

    Idempotent. Returns True if the shim is (now) in place, False if torchvision has the real module.
    """
    if TV_TENSOR_MODULE in sys.modules:
        return getattr(sys.modules[TV_TENSOR_MODULE], '__mclir_shim__', False)
    try:
        importlib.import_module(TV_TENSOR_MODULE)
        return False
    except ImportError:
        pass
    if 'basicsr' in sys.modules and 'basicsr.data.degradations' not in sys.modules:
        warnings.warn('basicsr was imported before mclir_basicsr; with torchvision >= 0.17 `import basicsr` '
                      'fails unless `import mclir_basicsr` comes first.')
    from torchvision.transforms import functional as tv_functional
    shim = types.ModuleType(TV_TENSOR_MODULE)
    shim.rgb_to_grayscale = tv_functional.rgb_to_grayscale
    shim.__doc__ = 'Compatibility alias created by mclir_basicsr (removed from torchvision 0.17).'
    shim.__mclir_shim__ = True
    sys.modules[TV_TENSOR_MODULE] = shim
    return True
