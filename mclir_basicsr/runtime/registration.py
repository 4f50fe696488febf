"""BasicSR-style registration: every module whose file name ends with ``_arch``, ``_dataset``, ``_loss`` or
``_model``, anywhere in the package, is imported so that its decorators fill BasicSR's registries (the suffixes
BasicSR's own packages scan for). A method's folder needs no list of its modules."""
import importlib
import os
from os import path as osp

SUFFIXES = ('_arch', '_dataset', '_loss', '_model')


def import_registering_modules(package_name, package_dir):
    """Import ``<package_name>.<...>.<x><suffix>`` for every such file below ``package_dir``; return the modules."""
    names = []
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(('_', '.')))
        prefix = osp.relpath(folder, package_dir).replace(os.sep, '.')
        for f in sorted(files):
            stem, ext = osp.splitext(f)
            if ext == '.py' and stem.endswith(SUFFIXES):
                names.append(f'{package_name}.{stem}' if prefix == '.' else f'{package_name}.{prefix}.{stem}')
    return [importlib.import_module(name) for name in names]
