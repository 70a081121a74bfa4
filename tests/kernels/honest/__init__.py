"""Fixture kernels that agree with the reference (tests/kernels/__init__.py)."""
