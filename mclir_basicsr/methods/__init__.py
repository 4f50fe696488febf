"""One folder per method: its model classes, losses, own network, option keys and helpers. A new method is a new
folder here; its ``*_arch.py``, ``*_loss.py`` and ``*_model.py`` register by their names."""
