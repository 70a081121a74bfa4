"""The built-in kernels, one module each, every one with the same public names (see :mod:`implementations`).

``loop`` is the baseline and ``vectorized`` the float64 reference. Two modules here are
not kernels: :mod:`~implementations.kernels.numba_common` holds what the flat-parameter
Numba kernels share, :mod:`~implementations.kernels.torch_common` what the PyTorch ones
share. Nothing here imports the registry or the harness; the registry
(:mod:`implementations.registry`) lists these modules by name and imports each on first use.
"""
