"""The reference's trajectory on a run's own workload, made once, cached on disk, and reused.

The float64 reference trains on the run's own workload (the same initial parameters,
batch size, eta and order in every epoch, the whole training set); its parameters and
correct test images after every epoch are kept, and the same from parameters one ulp
away (its *noise*: how far rounding alone carries a run of this workload). In a float32
run the float32 reference trains too. It is computed once per workload, outside every
timing, and cached on disk (:func:`cache_dir`), keyed by the workload and the reference's
own source, so repeated runs, their workers and pytest sessions reuse it; a longer run
extends a cached shorter one. The checks against it are :mod:`bench.run.verify`'s.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import implementations
from bench.run.config import RunConfig
from bench.run.data import Dataset, load_dataset, one_hot, scale_pixels
from implementations.core import Params, batch_order, init_params

# Bump when the cached file's content or meaning changes: older files are then ignored.
TRAJECTORY_FORMAT = 1
CACHE_VARIABLE = "BACKPROP_BENCH_CACHE"


@dataclass
class Trajectory:
    """The reference's run of one workload: parameters and correct test images after every epoch.

    ``nudged`` is the same run from parameters one ulp away (every initial weight and
    bias moved to the next float64 up): how far it drifts from ``params`` is how far
    rounding differences alone carry an honest kernel on this workload (``spread``).
    """

    params: list[Params]
    correct: list[int]
    nudged: list[Params]
    correct_nudged: list[int]
    # float32 runs: the float32 reference's parameters and correct images.
    params32: list[Params] | None = None
    correct32: list[int] | None = None

    @property
    def epochs(self) -> int:
        """Return how many epochs it holds."""
        return len(self.params)

    @functools.cached_property
    def spread(self) -> list[float]:
        """Return, per epoch, the nudged run's relative distance from the reference's parameters."""
        return [implementations.max_rel_error(a, b) for a, b in zip(self.nudged, self.params)]

    @functools.cached_property
    def drift32(self) -> list[float] | None:
        """Return, per epoch, the float32 reference's relative distance from the float64 one (float32 runs)."""
        if self.params32 is None:
            return None
        return [implementations.max_rel_error(a, b) for a, b in zip(self.params32, self.params)]


@dataclass
class ReferenceInfo:
    """Where a trajectory came from and what it cost, for the results file."""

    path: str
    key: str
    epochs: int
    cached: bool
    seconds: float

    def to_json(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)


def cache_dir() -> Path:
    """Return the folder of cached trajectories: $BACKPROP_BENCH_CACHE, else $XDG_CACHE_HOME or ~/.cache."""
    explicit = os.environ.get(CACHE_VARIABLE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "backprop-bench" / "reference"


def _reference_source() -> str:
    """Return a digest of the code the trajectory depends on (the reference, the shared core, this module)."""
    from implementations import core
    from implementations.kernels import vectorized

    digest = hashlib.sha256()
    for module in (core, vectorized):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def _n_train(config: RunConfig, data: Dataset) -> int:
    return len(data.train_images) if config.train_limit is None else config.train_limit


# (id of the data set, training images) -> (the data set, kept alive so the id stays its own; digest).
_digests: dict[tuple[int, int], tuple[Dataset, str]] = {}


def _data_digest(data: Dataset, n: int) -> str:
    """Return a digest of the first ``n`` training examples and the test set (once per data set and n)."""
    key = (id(data), n)
    if key not in _digests or _digests[key][0] is not data:
        digest = hashlib.blake2b(digest_size=16)
        for array in (data.train_images[:n], data.train_labels[:n], data.test_images, data.test_labels):
            digest.update(np.ascontiguousarray(array).tobytes())
        _digests[key] = (data, digest.hexdigest())
    return _digests[key][1]


def workload_key(config: RunConfig, data: Dataset) -> str:
    """Return the cache key of ``config``'s workload: everything the trajectory depends on but the epochs."""
    n = _n_train(config, data)
    fields = {
        "format": TRAJECTORY_FORMAT,
        "data": _data_digest(data, n),
        "n_train": n,
        "sizes": list(config.sizes),
        "seed": config.seed,
        "batch_size": config.batch_size,
        "eta": config.eta,
        "shuffle": config.shuffle,
        "dtype": config.dtype,
        "reference": _reference_source(),
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def _correct(params: Params, X_test: np.ndarray, y_test: np.ndarray) -> int:
    """Return how many test images the reference's predict gets right with ``params``."""
    reference = implementations.get(implementations.REFERENCE)
    return int(np.sum(reference.predict(params, X_test) == y_test))


def _train(params: Params, X: np.ndarray, Y: np.ndarray, config: RunConfig, epochs: range) -> list[Params]:
    """Return the reference's parameters after each epoch in ``epochs``, starting from ``params``."""
    reference = implementations.get(implementations.REFERENCE)
    shuffle_seed = config.seed if config.shuffle else None
    out = []
    for epoch in epochs:
        params = reference.train_epoch(
            params, X, Y, config.batch_size, config.eta, batch_order(len(X), shuffle_seed, epoch)
        )
        out.append(params)
    return out


def nudge(params: Params) -> Params:
    """Return ``params`` with every entry moved one ulp up (float64)."""
    return Params([np.nextafter(w, np.inf) for w in params.weights], [np.nextafter(b, np.inf) for b in params.biases])


def compute_trajectory(config: RunConfig, data: Dataset, start: Trajectory | None = None) -> Trajectory:
    """Return the reference's trajectory of ``config.epochs`` epochs, continuing ``start`` when given."""
    n, classes = _n_train(config, data), config.sizes[-1]
    done = start.epochs if start is not None else 0
    epochs = range(done, config.epochs)
    params0 = init_params(config.sizes, config.seed, config.dtype)
    start = start or Trajectory([], [], [], [], [] if config.dtype == "float32" else None, [])
    X64, Y64 = scale_pixels(data.train_images[:n], "float64"), one_hot(data.train_labels[:n], "float64", classes)
    X_test64 = scale_pixels(data.test_images, "float64")
    params = _train(start.params[-1] if done else params0.astype("float64"), X64, Y64, config, epochs)
    nudged = _train(start.nudged[-1] if done else nudge(params0.astype("float64")), X64, Y64, config, epochs)
    del X64, Y64
    trajectory = Trajectory(
        params=start.params + params,
        correct=start.correct + [_correct(p, X_test64, data.test_labels) for p in params],
        nudged=start.nudged + nudged,
        correct_nudged=start.correct_nudged + [_correct(p, X_test64, data.test_labels) for p in nudged],
    )
    if config.dtype == "float32":
        X, Y = scale_pixels(data.train_images[:n], "float32"), one_hot(data.train_labels[:n], "float32", classes)
        X_test = scale_pixels(data.test_images, "float32")
        params32 = _train(start.params32[-1] if done else params0, X, Y, config, epochs)
        trajectory.params32 = start.params32 + params32
        trajectory.correct32 = start.correct32 + [_correct(p, X_test, data.test_labels) for p in params32]
    return trajectory


_SERIES = (("p64", "params", "correct"), ("nudged", "nudged", "correct_nudged"), ("p32", "params32", "correct32"))


def _save(path: Path, trajectory: Trajectory) -> None:
    """Write ``trajectory`` to ``path`` (.npz) through a temporary file and a rename."""
    arrays: dict[str, np.ndarray] = {}
    for tag, series, correct in _SERIES:
        if getattr(trajectory, series) is None:
            continue
        arrays[correct] = np.array(getattr(trajectory, correct), np.int64)
        for epoch, params in enumerate(getattr(trajectory, series)):
            for i, array in enumerate(params.arrays()):
                arrays[f"{tag}_{epoch}_{i}"] = array
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _params_of(arrays, tag: str, epoch: int, n_layers: int) -> Params:
    """Return the parameters stored as ``{tag}_{epoch}_{i}``, weights first."""
    values = [arrays[f"{tag}_{epoch}_{i}"] for i in range(2 * n_layers)]
    return Params(values[:n_layers], values[n_layers:])


def load_trajectory(path: str | Path, sizes: list[int], dtype: str) -> Trajectory | None:
    """Return the trajectory stored at ``path``, or None when it is missing, unreadable or of another shape."""
    n_layers = len(sizes) - 1
    found = {}
    try:
        with np.load(path) as arrays:
            for tag, series, correct in _SERIES:
                if tag == "p32" and dtype != "float32":
                    continue
                counts = [int(c) for c in arrays[correct]]
                found[correct] = counts
                found[series] = [_params_of(arrays, tag, epoch, n_layers) for epoch in range(len(counts))]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # a missing or damaged cache file is computed again, never trusted
    trajectory = Trajectory(**found)
    if trajectory.params and trajectory.params[0].sizes != list(sizes):
        return None
    return trajectory


def _writable(folder: Path) -> Path:
    """Return ``folder`` when a file can be written there, else a private folder under the system's temp."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder)
        os.close(fd)
        os.unlink(probe)
        return folder
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"backprop-bench-{os.getuid()}" / "reference"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _shown(path: Path) -> str:
    """Return ``path`` with the home folder written as ~, so results files name no user's folders."""
    home = Path(os.path.expanduser("~"))
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def ensure_trajectory(config: RunConfig, data: Dataset) -> tuple[Trajectory, ReferenceInfo]:
    """Return the reference's trajectory for ``config`` (at least ``config.epochs`` epochs) and where it came from.

    Loaded from the cache when it holds enough epochs; otherwise computed (continuing a
    shorter cached one) and saved. Never call it inside a timing.
    """
    start_time = time.perf_counter()
    key = workload_key(config, data)
    path = _writable(cache_dir()) / f"{key}.npz"
    cached = load_trajectory(path, config.sizes, config.dtype) if path.exists() else None
    if cached is not None and cached.epochs >= config.epochs:
        info = ReferenceInfo(_shown(path), key, cached.epochs, True, time.perf_counter() - start_time)
        return cached, info
    trajectory = compute_trajectory(config, data, cached)
    _save(path, trajectory)
    return trajectory, ReferenceInfo(_shown(path), key, trajectory.epochs, False, time.perf_counter() - start_time)


_datasets: dict[tuple[str, str | None], Dataset] = {}


def ensure_reference(config: RunConfig, data: Dataset | None = None) -> ReferenceInfo:
    """Return where ``config``'s trajectory is cached, computing it first if needed (the parent side of a run).

    ``data`` is the run's data set; without it, the one given before for the same data
    set, else it is loaded (once per process).
    """
    key = (config.dataset, config.data_dir)
    if data is not None:
        _datasets[key] = data
    elif key not in _datasets:
        _datasets[key] = load_dataset(config.dataset, config.data_dir, verify=False)
    return ensure_trajectory(config, _datasets[key])[1]
