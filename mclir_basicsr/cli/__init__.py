"""The command-line tools: the pipeline runner behind ``mclir-train``/``mclir-test``, the demo, the probe and the VGG
fetcher (``mclir-make-lmdb`` and ``mclir-demo-data`` live with the data tools)."""
from .pipeline import command_line, import_registries, run_pipeline, split_imports  # noqa: F401  (the old cli module)
