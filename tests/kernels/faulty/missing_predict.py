"""Bad input: a kernel module that defines gradients but forgets predict."""

from implementations.kernels.vectorized import gradients

name = "missing-predict"

__all__ = ["name", "gradients"]
