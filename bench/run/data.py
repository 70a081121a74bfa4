"""MNIST-format data: a strict IDX reader, checksum verification and dataset loading.

The reader trusts nothing in a file: it checks the magic number, the element type,
the number of dimensions, that the payload is exactly as long as the header says,
and the sha256 of the decompressed bytes. It reads at most the declared size plus
one byte, so a corrupt header or a gzip bomb cannot make it allocate far beyond
what the header declares (and the header itself is bounded by MAX_ELEMENTS).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETS = ("mnist", "fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
N_CLASSES = 10
# Far above any MNIST-like file (47 million bytes), far below what would exhaust memory.
MAX_ELEMENTS = 2**31
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def default_data_dir(dataset: str) -> Path:
    """Return the folder the repository ships (or caches) ``dataset`` in."""
    return REPO_ROOT / "data" / dataset


def system_data_dir(dataset: str) -> Path:
    """Return the folder Debian's data set package installs ``dataset`` in (``apt-get install dataset-<name>``)."""
    return Path("/usr/share/datasets") / dataset


def known_checksums(dataset: str) -> dict[str, str]:
    """Return {canonical file name: sha256 of its decompressed bytes} from the shipped SHA256SUMS."""
    sums_file = default_data_dir(dataset) / "SHA256SUMS"
    try:
        lines = sums_file.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"cannot read the known checksums {sums_file}: {exc.strerror}") from None
    sums = {}
    for line in lines:
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    return sums


class _Reader:
    """Read exactly-sized chunks from a plain or gzip file, hashing what it reads."""

    def __init__(self, path: Path):
        self.path = path
        self.sha256 = hashlib.sha256()
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise DataError(f"cannot open {path}: {exc.strerror}") from None
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            self.file = gzip.GzipFile(fileobj=raw)
        else:
            raw.seek(0)
            self.file = raw
        self._raw = raw

    def read(self, n: int, what: str) -> bytes:
        """Return exactly n bytes, or raise DataError naming what was cut short.

        Reads in chunks, so memory grows with what the file really holds, not with
        what its header claims.
        """
        chunks, remaining = [], n
        try:
            while remaining:
                chunk = self.file.read(min(remaining, _CHUNK))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{self.path}: corrupt compressed data ({exc})") from None
        if remaining:
            raise DataError(f"{self.path}: truncated: {what} needs {n} bytes, only {n - remaining} present")
        data = b"".join(chunks)
        self.sha256.update(data)
        return data

    def at_end(self) -> bool:
        """Return True when no byte follows what has been read."""
        try:
            return self.file.read(1) == b""
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{self.path}: corrupt compressed data ({exc})") from None

    def close(self) -> None:
        self.file.close()
        self._raw.close()


def read_idx(path: str | Path, ndim: int, expected_sha256: str | None = None) -> np.ndarray:
    """Return the uint8 array stored in an IDX file (gzip or plain), shape from its header.

    Raises DataError for a wrong magic number, element type or rank, a truncated or
    over-long payload, corrupt compression, or a sha256 mismatch of the decompressed
    content (when ``expected_sha256`` is given).
    """
    path = Path(path)
    reader = _Reader(path)
    try:
        magic = reader.read(4, "the header")
        if magic[0] != 0 or magic[1] != 0:
            raise DataError(f"{path}: not an IDX file (magic bytes {magic.hex()}, expected 0000{_UBYTE:02x}{ndim:02x})")
        if magic[2] != _UBYTE:
            raise DataError(f"{path}: unsupported IDX element type 0x{magic[2]:02x} (only unsigned bytes, 0x08)")
        if magic[3] != ndim:
            raise DataError(f"{path}: IDX file has {magic[3]} dimensions, expected {ndim}")
        shape = tuple(int(d) for d in np.frombuffer(reader.read(4 * ndim, "the dimensions"), ">u4"))
        n_elements = math.prod(shape)  # Python ints: a hostile header cannot overflow it
        if n_elements > MAX_ELEMENTS:
            raise DataError(f"{path}: header declares {n_elements} elements, more than any plausible data set")
        payload = reader.read(n_elements, f"a payload of shape {shape}")
        if not reader.at_end():
            raise DataError(f"{path}: data continues past the {n_elements} bytes its header declares")
    finally:
        reader.close()
    if expected_sha256 is not None and reader.sha256.hexdigest() != expected_sha256:
        raise DataError(
            f"{path}: sha256 mismatch (got {reader.sha256.hexdigest()[:16]}..., expected {expected_sha256[:16]}...); "
            "the file is corrupt or not the canonical one (--no-verify skips this check)"
        )
    return np.frombuffer(payload, np.uint8).reshape(shape)


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 rows (n, 784) and labels as int64 (n,), for training and test."""

    name: str
    source: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def n_inputs(self) -> int:
        """Return the number of pixels per image (784 for MNIST)."""
        return self.train_images.shape[1]


def scale_pixels(images: np.ndarray, dtype: str) -> np.ndarray:
    """Return uint8 pixels (n, p) scaled to [0, 1] in ``dtype``, C-contiguous."""
    return np.ascontiguousarray(images, dtype=dtype) / np.asarray(255, dtype=dtype)


def one_hot(labels: np.ndarray, dtype: str, n_classes: int = N_CLASSES) -> np.ndarray:
    """Return labels (n,) one-hot encoded as (n, n_classes) in ``dtype``."""
    return np.eye(n_classes, dtype=dtype)[labels]


def _find(folder: Path, name: str) -> Path | None:
    """Return folder/name or folder/name.gz, whichever exists (plain first)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(folder: Path) -> list[str]:
    """Return the canonical names of the IDX files absent from folder."""
    return [name for name in FILES.values() if _find(folder, name) is None]


# Where torchvision.datasets keeps each data set's raw IDX files: root/<class name>/raw.
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def _fetch_with_torchvision(dataset: str, folder: Path) -> Path:
    """Return the folder torchvision downloaded ``dataset``'s raw IDX files into (under ``folder``)."""
    hint = f" or `apt-get install dataset-{dataset}`" if dataset == "fashion-mnist" else ""
    try:
        from torchvision import datasets
    except ImportError:
        raise DataError(
            f"{dataset} IDX files not found in {folder}: put the four files ({', '.join(FILES.values())}, "
            f"optionally .gz) there, or pass --data-dir DIR, or install torchvision (pip install -e '.[torch]') "
            f"so they can be downloaded{hint}"
        ) from None
    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[dataset]
    try:
        # One call fetches all four files (train=False only picks which split it then parses);
        # where they already lie in folder/<class name>/raw, torchvision reads them and downloads nothing.
        cls(root=str(folder), train=False, download=True)
    except Exception as exc:  # torchvision raises many types (URLError, RuntimeError, ...)
        reason = " ".join(str(exc).split())  # torchvision's messages span several lines
        raise DataError(
            f"{dataset} IDX files not found in {folder} and the torchvision download failed ({reason}); "
            f"put the four IDX files there, or pass --data-dir DIR{hint}"
        ) from None
    return folder / _TORCHVISION_FOLDER[dataset] / "raw"


def resolve_data_dir(dataset: str, data_dir: str | Path | None) -> Path:
    """Return a folder holding all four IDX files of ``dataset``.

    A folder the user names must hold them (it is never downloaded into). The
    default folder falls back to a torchvision download, cached beside it.
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise DataError(f"data folder {folder} does not exist")
        missing = _missing(folder)
        if missing:
            raise DataError(f"data folder {folder} lacks {', '.join(missing)} (plain or .gz)")
        return folder
    folder = default_data_dir(dataset)
    if not _missing(folder):
        return folder
    cached = folder / _TORCHVISION_FOLDER[dataset] / "raw"
    if cached.is_dir() and not _missing(cached):
        return cached
    system = system_data_dir(dataset)
    if system.is_dir() and not _missing(system):
        return system
    return _fetch_with_torchvision(dataset, folder)


SYNTHETIC_PREFIX = "synthetic-"


def synthetic_name(zero_fraction: float) -> str:
    """Return the dataset name of generated inputs with ``zero_fraction`` of their pixels zero (for timing only)."""
    return f"{SYNTHETIC_PREFIX}{zero_fraction:.2f}"


def synthetic_dataset(zero_fraction: float, n_train: int = 60_000, n_test: int = 10_000, seed: int = 0) -> Dataset:
    """Return MNIST-shaped random inputs, ``zero_fraction`` of the pixels zero and the rest uniform in 1..255.

    Labels are random: the set exists to time kernels at a chosen input density, not to learn anything.
    """
    if not 0.0 <= zero_fraction <= 1.0:
        raise DataError(f"a synthetic data set needs a zero fraction in [0, 1], got {zero_fraction}")
    rng = np.random.default_rng(seed)

    def images(n: int) -> np.ndarray:
        pixels = rng.integers(1, 256, size=(n, 784), dtype=np.uint8)
        pixels[rng.random((n, 784)) < zero_fraction] = 0
        return pixels

    labels = lambda n: rng.integers(0, N_CLASSES, n).astype(np.int64)  # noqa: E731
    return Dataset(
        name=synthetic_name(zero_fraction),
        source=Path(f"<generated, {100 * zero_fraction:.0f}% zeros, seed {seed}>"),
        train_images=images(n_train),
        train_labels=labels(n_train),
        test_images=images(n_test),
        test_labels=labels(n_test),
    )


def load_dataset(dataset: str = "mnist", data_dir: str | Path | None = None, verify: bool = True) -> Dataset:
    """Return the training and test sets of ``dataset``, read from ``data_dir`` (see resolve_data_dir).

    ``synthetic-Z`` (see :func:`synthetic_name`) generates inputs with a fraction Z of zero pixels instead.
    """
    if dataset.startswith(SYNTHETIC_PREFIX):
        try:
            return synthetic_dataset(float(dataset[len(SYNTHETIC_PREFIX) :]))
        except ValueError:
            raise DataError(f"unknown dataset {dataset!r}; a generated one is named like synthetic-0.50") from None
    folder = resolve_data_dir(dataset, data_dir)
    sums = known_checksums(dataset) if verify else {}
    arrays = {}
    for key, name in FILES.items():
        ndim = 3 if key.endswith("images") else 1
        arrays[key] = read_idx(_find(folder, name), ndim, sums.get(name) if verify else None)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{folder}: {split} set has {len(images)} images but {len(labels)} labels")
        if labels.size and labels.max() >= N_CLASSES:
            raise DataError(f"{folder}: {split} labels go up to {labels.max()}, expected classes 0-{N_CLASSES - 1}")
        arrays[f"{split}_images"] = images.reshape(len(images), -1)
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return Dataset(name=dataset, source=folder, **arrays)
