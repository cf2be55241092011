"""Benchmarks: `python -m benchmarks.gas` measures the contracts' gas from transaction receipts."""
