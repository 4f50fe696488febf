"""The runtime layer: every fix this plugin makes to BasicSR 1.4.2, listed in :mod:`.fixes` and applied by
``import mclir_basicsr`` (so they reach our entry points and a project's own ``train.py`` alike)."""
