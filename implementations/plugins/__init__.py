"""The door for kernels from outside the package: a file, an importable module, a Nielsen-style class, an entry point.

:mod:`~implementations.plugins.loader` finds and loads them,
:mod:`~implementations.plugins.validate` checks what they return on every call, and
:mod:`~implementations.plugins.nielsen` adapts a Nielsen-style ``Network`` class to the
kernel interface. The built-in kernels never pass through here.
"""
