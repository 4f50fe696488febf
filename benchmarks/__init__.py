"""Benchmarks of mclir_basicsr: each script runs from the repository root as ``python -m benchmarks.<name>``;
``common`` holds what they share (paths, a training through the entry point, runs over seeds, tables, plots, the
results JSON). benchmarks/README.md lists the scripts and the numbers they measured."""
