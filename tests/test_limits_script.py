"""scripts/limits.py runs and measures what it says, on a few hundred images (its figures are docs/performance.md's)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")

from bench.run.data import load_dataset, one_hot, scale_pixels
from tests.conftest import load_script


@pytest.fixture(scope="module")
def limits():
    return load_script("limits")


@pytest.fixture(scope="module")
def mnist_subset():
    data = load_dataset("mnist")
    X, Y = scale_pixels(data.train_images[:300], "float32"), one_hot(data.train_labels[:300], "float32")
    X.flags.writeable = Y.flags.writeable = False
    return X, Y


def test_sparse_parts_count_the_index_and_time_each_loop(limits, mnist_subset):
    X, _ = mnist_subset
    parts = limits.sparse_parts("float32", X, repeats=1, hz=2.0e9, fmas=1)
    nonzero = np.count_nonzero(X, axis=1)
    # Entries are the non-zero pixels, no padding; MNIST's pixels take the compact (uint8) index.
    assert parts["entries_per_example"] == pytest.approx(np.mean(nonzero))
    assert parts["compact_index"]
    assert parts["padded_width"] == 32 and parts["row_bytes"] == 128  # 30 floats padded to two 64-byte vectors
    for key in ("forward", "scatter", "forward_l1", "scatter_l1", "forward_shuffled", "forward_shuffled_prefetched"):
        assert math.isfinite(parts[f"{key}_cycles_per_entry"]) and parts[f"{key}_cycles_per_entry"] > 0
    # One vector FMA a cycle: a cycle per vector of a row per entry, and the file says which it assumed.
    assert parts["fma_vectors_per_cycle"] == 1
    assert parts["fma_limit_cycles_per_entry"] == parts["padded_width"] / parts["lanes"]


def test_the_fma_rate_follows_the_cpu(limits, monkeypatch):
    cpuinfo = Path("/proc/cpuinfo")
    amd_wide = cpuinfo.exists() and "AuthenticAMD" in cpuinfo.read_text() and limits.simd.VECTOR_BYTES == 64
    assert limits.fma_per_cycle() == (1 if amd_wide else 2)
    monkeypatch.setattr(limits.simd, "VECTOR_BYTES", 32)  # AVX2: two full-width pipes on either vendor
    assert limits.fma_per_cycle() == 2


def test_split_parts_time_the_gradients_and_the_update(limits, mnist_subset):
    X, Y = mnist_subset
    split = limits.split_parts("float32", X, Y, repeats=1)
    assert split["slices"] == 1 or split["slices"] == 2
    assert split["gradients_ms"] > 0 and split["updates_ms"] > 0


def test_clock_is_read_or_zero(limits):
    assert limits.clock_hz() >= 0
