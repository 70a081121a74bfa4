"""Deliberately broken kernels, one file each, for the harness's tests (never registered in the package)."""
