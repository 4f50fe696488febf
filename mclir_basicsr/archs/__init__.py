"""Networks shared by several methods (NAFNet, PromptIR, FFA-Net, Restormer blocks); a method's own network lives in
its folder under ``methods/``. Registered by :mod:`mclir_basicsr.runtime.registration` (``*_arch.py``)."""
