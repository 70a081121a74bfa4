"""Fixture kernels wrong on purpose: they run and compute something else (tests/kernels/__init__.py)."""
