"""Imports every `*_loss.py` here so that its classes register in BasicSR's registries."""
from .._scan import import_suffixed

_modules = import_suffixed(__name__, __file__, '_loss')
