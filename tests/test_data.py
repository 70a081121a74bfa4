"""The IDX reader and data loading, on small files the tests write and on the shipped MNIST."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from bench.run import data
from bench.run.data import DataError, load_dataset, one_hot, read_idx, resolve_data_dir, scale_pixels
from tests.conftest import idx_bytes


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_reads_good_file_with_checksum(tmp_path, images, compressed):
    raw = idx_bytes(images)
    path = tmp_path / ("x.gz" if compressed else "x")
    path.write_bytes(gzip.compress(raw) if compressed else raw)
    np.testing.assert_array_equal(read_idx(path, 3, hashlib.sha256(raw).hexdigest()), images)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw[:-7], "truncated"),
        (lambda raw: raw[:6], "truncated"),
        (lambda raw: b"\x00\x00\x08\x01" + raw[4:], "dimensions, expected 3"),
        (lambda raw: b"\x1a\x2b" + raw[2:], "not an IDX file"),
        (lambda raw: b"\x00\x00\x0d\x03" + raw[4:], "element type"),
        (lambda raw: raw + b"\x00", "continues past"),
        (lambda raw: b"", "truncated"),
    ],
    ids=["truncated-payload", "truncated-header", "wrong-rank", "wrong-magic", "float-type", "trailing", "empty"],
)
def test_rejects_bad_files(tmp_path, images, mutate, message):
    path = tmp_path / "x"
    path.write_bytes(mutate(idx_bytes(images)))
    with pytest.raises(DataError, match=message):
        read_idx(path, 3)


def test_rejects_checksum_mismatch(tmp_path, images):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(images))
    with pytest.raises(DataError, match="sha256 mismatch"):
        read_idx(path, 3, "0" * 64)


def test_rejects_corrupt_gzip(tmp_path, images):
    packed = bytearray(gzip.compress(idx_bytes(images)))
    packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=str(path)):
        read_idx(path, 3)


def test_rejects_absurd_declared_size(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 3]) + np.array([2**20, 2**20, 2**20], ">u4").tobytes())
    with pytest.raises(DataError, match="plausible"):
        read_idx(path, 3)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot open"):
        read_idx(tmp_path / "absent", 1)


def test_named_folder_must_exist_and_hold_the_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir("mnist", tmp_path / "nope")
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte"):
        resolve_data_dir("mnist", tmp_path)


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """Point the shipped folder and Debian's at empty folders under tmp_path."""
    monkeypatch.setattr(data, "default_data_dir", lambda dataset: tmp_path / dataset)
    monkeypatch.setattr(data, "system_data_dir", lambda dataset: tmp_path / "system" / dataset)
    return tmp_path


def test_default_folder_without_files_or_torchvision_says_what_to_do(no_data, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torchvision", None)  # as if not installed
    with pytest.raises(DataError, match="install torchvision"):
        resolve_data_dir("fashion-mnist", None)


def test_scaling_and_one_hot():
    X = scale_pixels(np.array([[0, 255, 51]], np.uint8), "float64")
    np.testing.assert_allclose(X, [[0.0, 1.0, 0.2]])
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), "float32", 3), [[0, 0, 1], [1, 0, 0]])


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def test_shipped_mnist_loads_and_verifies(mnist):
    assert mnist.train_images.shape == (60000, 784) and mnist.test_images.shape == (10000, 784)
    # Label counts from data/mnist/README.md.
    assert np.bincount(mnist.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_data_dir_with_a_corrupted_file_fails_its_checksum(tmp_path):
    for name in data.FILES.values():
        shutil.copy(data.default_data_dir("mnist") / f"{name}.gz", tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    label = 8 + 100  # past the 8-byte header: the label of test image 100
    raw[label] = (raw[label] + 1) % 10  # still a valid label, so only the checksum can tell
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_dataset("mnist", tmp_path)
    assert load_dataset("mnist", tmp_path, verify=False).test_labels[100] == raw[label]


def test_failed_torchvision_download_is_one_line(no_data, monkeypatch):
    datasets = pytest.importorskip("torchvision.datasets")

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://example, got:\n<urlopen error>")

    monkeypatch.setattr(datasets, "FashionMNIST", offline)
    with pytest.raises(DataError) as caught:
        resolve_data_dir("fashion-mnist", None)
    message = str(caught.value)
    assert "\n" not in message and "<urlopen error>" in message and "dataset-fashion-mnist" in message


def test_debian_package_folder_is_found_without_data_dir(no_data):
    system = no_data / "system" / "mnist"
    system.mkdir(parents=True)
    for name in data.FILES.values():
        shutil.copy(data.REPO_ROOT / "data" / "mnist" / f"{name}.gz", system)
    (no_data / "mnist").mkdir()  # the shipped folder, with the checksums but no images
    shutil.copy(data.REPO_ROOT / "data" / "mnist" / "SHA256SUMS", no_data / "mnist")
    assert resolve_data_dir("mnist", None) == system
    assert load_dataset("mnist").source == system  # verified against the shipped checksums
