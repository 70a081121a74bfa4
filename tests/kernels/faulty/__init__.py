"""Fixture kernels faulty on purpose: they raise, hang, crash or return what is refused (tests/kernels/__init__.py)."""
