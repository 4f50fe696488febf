"""BasicSR-style registration: import every module of a folder whose name ends with a suffix."""
import importlib
import os
from os import path as osp


def import_suffixed(package_name, package_file, suffix):
    """Import ``<package_name>.<x>`` for every ``<x><suffix>.py`` beside ``package_file``; return the modules."""
    folder = osp.dirname(osp.abspath(package_file))
    names = sorted(osp.splitext(v)[0] for v in os.listdir(folder) if v.endswith(f'{suffix}.py'))
    return [importlib.import_module(f'{package_name}.{name}') for name in names]
