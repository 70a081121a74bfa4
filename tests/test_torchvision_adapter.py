"""The torchvision data path, offline: torchvision's folder layout, read without the network.

Where the default data folder lacks the IDX files, ``backprop-bench run`` fetches
them with ``torchvision.datasets.MNIST`` / ``FashionMNIST``. These tests lay the
raw files out as torchvision does (root/MNIST/raw/...), block every socket, and
check that torchvision reads them without downloading, that its arrays equal our
IDX reader's, and that bench.run.data falls back to that path.
"""

from __future__ import annotations

import gzip
import shutil
import socket

import numpy as np
import pytest

torchvision = pytest.importorskip("torchvision")

from bench.run import data  # noqa: E402

MNIST_DIR = data.REPO_ROOT / "data" / "mnist"
N_TRAIN, N_TEST = 300, 100
CLASSES = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Make any attempt to open a connection fail loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("the torchvision path tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array as an uncompressed IDX file (the form torchvision keeps in raw/)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


def _mnist_subset() -> dict[str, np.ndarray]:
    """Return {canonical file name: array}: the first N_TRAIN / N_TEST examples of the shipped MNIST."""
    subset = {}
    for key, name in data.FILES.items():
        array = data.read_idx(MNIST_DIR / f"{name}.gz", 3 if key.endswith("images") else 1)
        subset[name] = array[: N_TRAIN if key.startswith("train") else N_TEST]
    return subset


def _lay_out(root, dataset: str, arrays: dict[str, np.ndarray]):
    """Return root/<class>/raw after writing the arrays there as torchvision would leave them."""
    raw = root / data._TORCHVISION_FOLDER[dataset] / "raw"
    raw.mkdir(parents=True)
    for name, array in arrays.items():
        _write_idx(raw / name, array)
    return raw


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_torchvision_reads_our_layout_offline_and_agrees(tmp_path, dataset):
    arrays = _mnist_subset()  # any valid IDX content will do for the layout, Fashion-MNIST's too
    raw = _lay_out(tmp_path, dataset, arrays)
    for train, split in ((True, "train"), (False, "t10k")):
        ours_images = data.read_idx(raw / f"{split}-images-idx3-ubyte", 3)
        ours_labels = data.read_idx(raw / f"{split}-labels-idx1-ubyte", 1)
        theirs = CLASSES[dataset](root=str(tmp_path), train=train, download=True)
        np.testing.assert_array_equal(theirs.data.numpy(), ours_images)
        np.testing.assert_array_equal(theirs.targets.numpy(), ours_labels)


def test_fetch_with_torchvision_returns_the_raw_folder_without_downloading(tmp_path):
    raw = _lay_out(tmp_path, "mnist", _mnist_subset())
    assert data._fetch_with_torchvision("mnist", tmp_path) == raw
    assert sorted(p.name for p in raw.iterdir()) == sorted(data.FILES.values())  # nothing added


def test_default_folder_falls_back_to_torchvision_layout(tmp_path, monkeypatch):
    """With the default folder empty but torchvision's layout beside it, the full data set loads and verifies."""
    default = tmp_path / "mnist"
    default.mkdir()
    shutil.copy(MNIST_DIR / "SHA256SUMS", default / "SHA256SUMS")
    raw = default / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.FILES.values():
        with gzip.open(MNIST_DIR / f"{name}.gz") as src, (raw / name).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    monkeypatch.setattr(data, "default_data_dir", lambda dataset: tmp_path / dataset)

    assert data.resolve_data_dir("mnist", None) == raw
    loaded = data.load_dataset("mnist")  # checksums verified against the shipped SHA256SUMS
    shipped = data.load_dataset("mnist", data_dir=MNIST_DIR)
    assert loaded.source == raw
    for key in data.FILES:
        np.testing.assert_array_equal(getattr(loaded, key), getattr(shipped, key))


def test_empty_default_folder_downloads_through_torchvision(tmp_path, monkeypatch):
    """The download itself, with torchvision's fetch replaced by a local copy (no network here)."""
    source = tmp_path / "mirror"
    source.mkdir()
    arrays = _mnist_subset()
    for name, array in arrays.items():
        _write_idx(source / name, array)
        with (source / name).open("rb") as src, gzip.open(source / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    fetched = []

    def fake_download(url, download_root, filename, md5):
        fetched.append(filename)
        shutil.copy(source / filename, f"{download_root}/{filename}")
        torchvision.datasets.utils.extract_archive(f"{download_root}/{filename}")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", fake_download)
    monkeypatch.setattr(data, "default_data_dir", lambda dataset: tmp_path / dataset)

    folder = data.resolve_data_dir("mnist", None)
    assert folder == tmp_path / "mnist" / "MNIST" / "raw"
    assert sorted(fetched) == sorted(f"{name}.gz" for name in data.FILES.values())
    loaded = data.load_dataset("mnist", verify=False)
    assert loaded.train_images.shape == (N_TRAIN, 784)
    np.testing.assert_array_equal(loaded.test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_named_folder_is_never_downloaded_into(tmp_path):
    with pytest.raises(data.DataError, match="lacks"):
        data.resolve_data_dir("mnist", tmp_path)
    assert list(tmp_path.iterdir()) == []
