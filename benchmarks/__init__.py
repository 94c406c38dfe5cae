"""Benchmarks of novita-notebook against the embedded sandbox: `python -m benchmarks [--quick]`.
Every figure is measured in the run that prints it; nothing is hard-coded.
"""
