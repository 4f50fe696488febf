"""Datasets (``*_dataset.py``, registered by :mod:`mclir_basicsr.runtime.registration`), the degradation tasks of
the all-in-one data, the demo data and the lmdb tools."""
