"""Bad input: one of two kernel files that claim the same name."""

from implementations.kernels.vectorized import gradients, predict

name = "twin"

__all__ = ["name", "gradients", "predict"]
