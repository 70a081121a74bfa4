"""Fixture kernels for the tests, one file each, never registered in the package; a folder per role.

- ``honest/``: they agree with the reference (Nielsen's book networks as written, the
  reference as a Nielsen class, two honest files that claim one name);
- ``wrong/``: wrong on purpose, they run cleanly and compute something else (the planted
  mistakes ``check`` must name, and kernels right only where the parity probe looks);
- ``faulty/``: faulty on purpose, they raise, hang, crash, diverge, return NaN or the wrong
  dtype or shape, lack ``predict``, or interrupt the run that started them.

Tests name them through tests/conftest.py's ``HONEST``, ``WRONG`` and ``FAULTY``.
"""
