"""The goal arithmetic of `backprop-bench goals`, and the command itself, on a synthetic measurement."""

from __future__ import annotations

import json
import statistics

import pytest

import bench.goals
from bench.flops import epoch_flops, sparse_epoch_flops
from bench.goals import goal_table, table_rows, verdicts
from tests.conftest import run_cli


def entry(name: str, batch_size: int, seconds: list[float], status: str = "ok") -> dict:
    return {"name": name, "batch_size": batch_size, "status": status, "seconds": seconds, "message": None}


@pytest.fixture
def document() -> dict:
    epochs = [
        entry("numba", 100, [0.09, 0.10, 0.11]),
        entry("numba-parallel", 100, [0.08, 0.08, 0.09]),
        entry("torch", 100, [0.20, 0.21, 0.22]),
        entry("jax", 100, [0.15, 0.16, 0.20]),
        entry("vectorized", 100, [], status="parity-failed"),
        entry("numba", 10, [0.30, 0.30, 0.31]),
        entry("torch", 10, [0.35, 0.36, 0.37]),
        entry("jax", 10, [0.90, 0.95, 1.0]),
    ]
    per_example = {
        "numba": entry("numba", 1, [0.010, 0.011]),
        "numba-fastmath": entry("numba-fastmath", 1, [0.008, 0.009]),
        "loop": entry("loop", 1, [0.300, 0.310]),
    }
    setting = {"threads": 1, "dtype": "float64", "roof_epoch_seconds": 0.06, "epochs": epochs}
    setting["per_example"] = per_example
    two = {"threads": 2, "dtype": "float64", "roof_epoch_seconds": 0.03, "per_example": {}}
    two["epochs"] = [entry("numba-parallel", 100, [0.05, 0.05, 0.05]), entry("numba", 100, [0.07, 0.07, 0.08])]
    density = [
        {"zero_fraction": z, "dtype": "float64", "epochs": {"numba": entry("numba", 100, [0.1]), "numba-sparse": s}}
        for z, s in [(0.0, entry("numba-sparse", 100, [0.2])), (0.5, entry("numba-sparse", 100, [0.09]))]
    ]
    return {"settings": [setting, two], "cache_warm_up_seconds": 0.3, "n_train": 60_000, "density": density}


def test_rows_give_roof_multiple_and_ratio_to_best_peer(document):
    rows = {(r["kernel"], r["batch_size"]): r for r in table_rows(document) if r["threads"] == 1}
    assert rows[("numba", 100)]["median_epoch_ms"] == pytest.approx(100.0)
    assert rows[("numba", 100)]["roof_multiple"] == pytest.approx(0.10 / 0.06)
    assert rows[("numba", 100)]["vs_best_peer"] == pytest.approx(0.10 / 0.16)  # jax is the faster peer
    assert rows[("numba", 10)]["vs_best_peer"] == pytest.approx(0.30 / 0.36)  # torch is, at batch 10
    failed = rows[("vectorized", 100)]
    assert failed["median_epoch_ms"] is None and failed["roof_multiple"] is None and failed["status"] == "parity-failed"


def test_verdicts_name_the_best_kernel_and_say_met_or_not(document):
    lines = verdicts(document)
    assert "goal 1 threads=1 float64 batch 100: fastest numba-parallel at 1.33x roof (NOT met)" in lines
    assert "goal 2 threads=1 float64 batch 100: numba-parallel 0.50x best peer (met)" in lines
    assert "goal 2 threads=1 float64 batch 10: numba 0.83x best peer (NOT met)" in lines
    assert any(
        line.startswith("goal 3 threads=1 float64: numba-fastmath 35.9x") and "(NOT met)" in line for line in lines
    )
    assert "goal 4: warm-up from cache 0.30 s (met)" in lines
    assert "goal 5 threads=1 float64: numba at 1.67x roof (NOT met)" in lines
    # The fastest kernel at two threads against its own one-core time: 0.05 / 0.08.
    assert "goal 6 threads=2 float64: numba-parallel takes 0.62x its one-core time (NOT met)" in lines
    assert "density float64: numba-sparse / numba at batch 100: 0% zeros 2.00x, 50% zeros 0.90x; " in " ".join(lines)
    assert any(line.endswith("dense wins up to 0% zeros") for line in lines)


def test_a_sparse_kernel_gets_dense_equivalent_and_actual_flops(document):
    document["settings"][0]["epochs"].append(
        {**entry("numba-sparse", 100, [0.05]), "sparse_input": True, "input_density": 0.19}
    )
    row = next(r for r in table_rows(document) if r["kernel"] == "numba-sparse" and r["threads"] == 1)
    dense = epoch_flops([784, 30, 10], 60_000, 100)
    assert row["gflops"] == pytest.approx(dense / 0.05 / 1e9)
    assert row["actual_gflops"] == pytest.approx(sparse_epoch_flops([784, 30, 10], 60_000, 100, 0.19) / 0.05 / 1e9)
    assert row["actual_gflops"] < 0.5 * row["gflops"]  # 81% zeros skipped in both input-sized products


def test_real_data_sets_give_their_zero_share_and_the_sparse_ratio(document):
    document["datasets"] = [
        {"dataset": "mnist", "dtype": "float64", "zero_fraction": 0.81, "epochs": {
            "numba": entry("numba", 100, [0.20]), "numba-sparse": entry("numba-sparse", 100, [0.15])}},
        {"dataset": "fashion-mnist", "dtype": "float64", "zero_fraction": 0.502, "epochs": {
            "numba": entry("numba", 100, [0.20]), "numba-sparse": entry("numba-sparse", 100, [0.30])}},
        {"dataset": "fashion-mnist", "dtype": "float32", "skipped": "fashion-mnist IDX files not found", "epochs": {}},
    ]  # fmt: skip
    lines = verdicts(document)
    assert "mnist float64: 81% zeros, numba-sparse / numba at batch 100 0.75x (sparse wins)" in lines
    assert "fashion-mnist float64: 50% zeros, numba-sparse / numba at batch 100 1.50x (dense wins)" in lines
    assert "fashion-mnist float32: not measured: fashion-mnist IDX files not found" in lines


def test_cache_warm_up_is_shown_in_its_parts(document):
    document["cache_warm_up"] = {"import_numba": 0.4, "numba_setup": 0.3, "numba": 0.1, "total": 0.8}
    document["cache_warm_up_seconds"] = 0.8
    assert "goal 4: warm-up from cache 0.80 s (import_numba 0.40, numba_setup 0.30, numba 0.10) (NOT met)" in verdicts(
        document
    )


def test_goal_table_has_a_row_per_goal_and_a_column_per_setting(document):
    lines = goal_table(document).splitlines()
    assert lines[0] == "| goal | target | 1 thread, float64 | 2 threads, float64 |"
    assert "| 1. fastest exact kernel / dense roof, batch 100 | <= 1.0x | numba-parallel 1.33x ✗ | " in lines[2]
    assert lines[3].endswith("| numba-parallel 0.50x | - |")  # met: no mark; no peers at two threads
    assert lines[5].startswith("| 3. batch-1 SGD speed-up over loop | >= 50x | numba-fastmath 35.9x ✗ |")
    assert lines[-2].endswith("| - | numba-parallel 0.62x ✗ |")
    assert lines[-1].startswith("| 4. warm-up from the Numba cache | <= 0.5 s | 0.30 s |")


def test_a_data_set_not_found_is_kept_with_the_reason_and_not_timed(monkeypatch):
    from bench.errors import DataError
    from bench.goals import session as goals

    def not_here(dataset, data_dir):
        raise DataError(f"{dataset} IDX files not found in data/{dataset}")

    monkeypatch.setattr(goals, "DATASETS", ("fashion-mnist",))
    monkeypatch.setattr(goals, "resolve_data_dir", not_here)
    monkeypatch.setattr(goals, "_epoch_times", lambda *args: pytest.fail("a missing data set must not be timed"))
    (point,) = goals.dataset_points("float32", 3, lambda line: None)
    assert point == {
        "dataset": "fashion-mnist",
        "dtype": "float32",
        "skipped": "fashion-mnist IDX files not found in data/fashion-mnist",
        "epochs": {},
    }


def test_goals_refuse_to_measure_against_a_reference_that_fails_finite_differences(monkeypatch):
    from bench.errors import BenchError
    from bench.goals import session as goals

    monkeypatch.setattr(goals, "reference_check", lambda seed: 1e-3)
    with pytest.raises(BenchError, match="finite-difference check"):
        goals.measure([1], ["float64"], 1, lambda text: None)


def test_the_command_saves_the_measurement_and_prints_the_table_and_verdicts(document, tmp_path, capsys, monkeypatch):
    """The command's own work in-process; the measurement (full MNIST, minutes) is the synthetic one."""
    asked = []

    def measure(threads, dtypes, rounds, say, density=True, runs=2, checkpoint=None):
        asked.append((threads, dtypes, rounds, density, runs))
        return document

    monkeypatch.setattr(bench.goals, "measure", measure)
    out = tmp_path / "goals.json"
    args = ["--threads", "2", "--dtype", "float64", "--rounds", "3", "--no-density", "--out", str(out)]
    status, stdout, err = run_cli(capsys, "goals", *args)
    assert status == 0, err
    assert asked == [([2], ["float64"], 3, False, 2)]
    assert json.loads(out.read_text()) == document
    assert "numba-parallel" in stdout and verdicts(document)[-1] in stdout
    assert f"results saved to {out}" in err


@pytest.mark.parametrize("args", [["--threads", "0"], ["--dtype", "float16"], ["--rounds", "x"], ["--runs", "0"]])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args):
    monkeypatch.setattr(bench.goals, "measure", lambda *args, **kwargs: pytest.fail("measured despite a bad option"))
    status, _, err = run_cli(capsys, "goals", *args, "--out", str(tmp_path / "goals.json"))
    assert status == 2 and len(err.strip().splitlines()) == 1, err


# Interleaved rounds, the per-round roof, two runs per verdict, batch 10 against the roof.


class FakeWorker:
    """A kernel's round worker without a process: each epoch is logged and takes ``seconds``."""

    def __init__(self, name: str, log: list[str], seconds: float = 0.1, fails_in_round: int | None = None):
        from bench.results.schema import KernelResult

        self.name, self.log, self.seconds, self.fails_in_round = name, log, seconds, fails_in_round
        self.result, self.running = KernelResult(name=name), True

    def ready(self) -> bool:
        return True

    def epoch(self) -> float | None:
        round_index = len(self.result.epoch_seconds)
        self.log.append(f"{self.name} {round_index}")
        self.result.epoch_seconds.append(self.seconds)
        if round_index == self.fails_in_round:
            self.result.status, self.result.message, self.running = "mismatch", "departed", False
            return None
        return self.seconds

    def finish(self):
        if self.running:
            self.result.status, self.running = "ok", False
        return self.result

    def stop(self) -> None:
        pass


@pytest.fixture
def fake_rounds(monkeypatch):
    """Return the log of timed epochs and roofs of bench.goals.rounds.interleave, run on fake workers."""
    from bench.goals import rounds

    log: list[str] = []
    failing: dict[str, int] = {}
    monkeypatch.setattr(rounds, "ensure_reference", lambda config: None)
    monkeypatch.setattr(
        rounds, "start_worker", lambda name, config: FakeWorker(name, log, fails_in_round=failing.get(name))
    )

    def roof(dtype):
        log.append(f"roof {sum(e.startswith('roof') for e in log)}")
        return {"gflops": 50.0 + len(log), "seconds": [0.1], "method": "fake", "dtype": dtype}

    monkeypatch.setattr(rounds, "measure_roof", roof)
    monkeypatch.setattr(rounds, "wait_until_quiet", lambda: log.append("quiet") or 0.25)
    return log, failing


def test_rounds_interleave_every_kernel_and_the_roof_in_a_rotating_order(fake_rounds):
    from bench.goals.rounds import interleave
    from bench.run.config import RunConfig

    log, _ = fake_rounds
    said: list[str] = []
    out = interleave(["a", "b", "c"], RunConfig(epochs=3, dtype="float32", threads=1), True, said.append)
    assert log[:2] == ["quiet", "a 0"] and log.count("quiet") == 12  # before every kernel's epoch and every roof
    assert out["quiet_wait_seconds"] == [1.0, 1.0, 1.0]
    log[:] = [entry for entry in log if entry != "quiet"]
    assert log == [
        "a 0", "b 0", "c 0", "roof 0",
        "b 1", "c 1", "roof 1", "a 1",
        "c 2", "roof 2", "a 2", "b 2",
    ]  # fmt: skip
    assert out["order"] == [["a", "b", "c", "roof"], ["b", "c", "roof", "a"], ["c", "roof", "a", "b"]]
    assert len(out["roof_gflops"]) == 3 and out["roof"] == {"method": "fake", "dtype": "float32"}
    assert {name: r.status for name, r in out["results"].items()} == {"a": "ok", "b": "ok", "c": "ok"}
    assert "round 2/3: b 100 ms, c 100 ms, roof" in " ".join(said)


def test_a_kernel_that_fails_in_a_round_is_never_timed_again(fake_rounds):
    from bench.goals.rounds import interleave
    from bench.run.config import RunConfig

    log, failing = fake_rounds
    failing["b"] = 0
    out = interleave(["a", "b"], RunConfig(epochs=2, threads=1), False, lambda line: None)
    assert log == ["quiet", "a 0", "quiet", "b 0", "quiet", "a 1"]  # no wait for a kernel that dropped out
    assert out["results"]["b"].status == "mismatch" and out["roof_gflops"] == []


def test_a_kernel_timed_alone_gets_a_one_core_worker_in_the_same_rounds(fake_rounds, monkeypatch):
    from bench.goals import rounds
    from bench.run.config import RunConfig

    log, _ = fake_rounds
    threads: dict[str, int] = {}
    start = rounds.start_worker

    def recording(name, config):
        threads[name] = threads.get(name, 0) + config.threads  # "a" twice: on 2 threads, then alone on 1
        return start(name, config)

    monkeypatch.setattr(rounds, "start_worker", recording)
    out = rounds.interleave(["a", "b"], RunConfig(epochs=2, threads=2), False, lambda line: None, alone=("a",))
    assert threads == {"a": 3, "b": 2}
    assert out["order"] == [["a", "b", "a" + rounds.ALONE], ["b", "a" + rounds.ALONE, "a"]]
    assert set(out["results"]) == {"a", "b", "a" + rounds.ALONE}
    assert [entry for entry in log if entry != "quiet"] == ["a 0", "b 0", "a 0", "b 1", "a 1", "a 1"]


def test_a_two_thread_setting_times_the_fastest_one_core_kernel_beside_its_kernels(monkeypatch):
    from bench.goals import session
    from bench.goals.rounds import ALONE
    from bench.results.schema import KernelResult

    one_core_seconds = {"numba": 0.09, "numba-sparse": 0.05, "jax": 0.2}
    asked = []

    def interleave(names, config, roof, say, alone=()):
        asked.append((config.threads, config.batch_size, alone))
        results = {
            name: KernelResult(name=name, status="ok", epoch_seconds=[one_core_seconds.get(name, 1.0)] * 2)
            for name in names
        }
        results.update({name + ALONE: KernelResult(name=name, status="ok", epoch_seconds=[0.2, 0.1]) for name in alone})
        return {"results": results, "roof_gflops": [], "roof": {}, "order": [], "quiet_wait_seconds": []}

    monkeypatch.setattr(session, "interleave", interleave)
    monkeypatch.setattr(session, "_epoch_times", lambda names, config, rounds, say: {})
    monkeypatch.setattr(session, "cache_warm_up", lambda: {"total": 0.2})
    run = session.measure_run([2, 1], ["float32"], 2, lambda line: None, density=False)
    assert (run["settings"][0]["threads"], run["settings"][0]["one_core"]) == (1, [])
    assert asked == [(1, 100, ()), (1, 10, ()), (2, 100, ("numba-sparse",)), (2, 10, ())]
    two = run["settings"][1]
    assert [(e["name"], e["batch_size"], e["seconds"]) for e in two["one_core"]] == [("numba-sparse", 100, [0.2, 0.1])]
    assert not any(e["name"].endswith(ALONE) for e in two["epochs"])


def test_goal_6_pairs_each_two_thread_epoch_with_the_one_core_epoch_of_its_round(document):
    """Round 1 was slow for both: per round 0.5x, 0.5x, 0.5x; the medians of the settings minutes apart give 0.625x."""
    from bench.goals import goal_figures

    two = document["settings"][1]
    two["epochs"] = [entry("numba-parallel", 100, [0.10, 0.05, 0.05])]
    two["one_core"] = [entry("numba-parallel", 100, [0.20, 0.10, 0.10])]
    document["settings"][0]["epochs"][1] = entry("numba-parallel", 100, [0.08, 0.08, 0.09])
    goal_6 = [f for f in goal_figures(document) if f["goal"] == 6]
    assert [(f["kernel"], f["value"]) for f in goal_6] == [("numba-parallel", pytest.approx(0.5))]
    del two["one_core"]  # a file from before: the medians of the two settings
    goal_6 = [f for f in goal_figures(document) if f["goal"] == 6]
    assert [f["value"] for f in goal_6] == [pytest.approx(0.05 / 0.08)]


def test_the_roof_multiple_pairs_each_epoch_with_the_roof_of_its_round():
    from bench.goals import roof_multiple
    from bench.goals.verdicts import roof_epochs

    # Round 1 was slow for kernel and roof alike; round 2 for the kernel only.
    seconds, gflops = [0.10, 0.20, 0.20], [40.0, 20.0, 40.0]
    setting = {"rounds": [{"batch_size": 100, "roof_gflops": gflops, "order": []}]}
    roofs = roof_epochs(setting, 100, 60_000)
    flops = epoch_flops([784, 30, 10], 60_000, 100)
    assert roofs == pytest.approx([flops / 1e9 / g for g in gflops])
    per_round = [s / r for s, r in zip(seconds, roofs, strict=True)]  # k, k, 2k
    assert roof_multiple(seconds, roofs) == pytest.approx(per_round[0]) == pytest.approx(per_round[1])
    assert 0.20 / statistics.median(roofs) == pytest.approx(2 * per_round[0])  # a median over medians: 2k
    # A file with one roof per setting: every epoch against it; batch 10 scaled by its own FLOPs.
    legacy = {"roof_epoch_seconds": 0.06}
    assert roof_epochs(legacy, 10, 60_000) == [pytest.approx(0.06 * epoch_flops([784, 30, 10], 60_000, 10) / flops)]


def two_runs(first: dict, second: dict) -> dict:
    """Return a goals document of two runs made of two one-run documents (run numbers added)."""
    document = {"targets": dict(bench.goals.TARGETS), "n_train": 60_000, "settings": [], "density": []}
    for number, run in ((1, first), (2, second)):
        document["settings"] += [{"run": number, **s} for s in run["settings"]]
    document["cache_warm_up"] = [{"total": first["cache_warm_up_seconds"]}, {"total": second["cache_warm_up_seconds"]}]
    return document


def one_core(numba: float, peer: float, roof_gflops: list[float], numba10: float = 0.5) -> dict:
    """Return a one-run document: one thread, float64, numba and jax at batch 100 and 10, per-round roofs."""
    rounds = [{"batch_size": b, "roof_gflops": roof_gflops, "order": []} for b in (100, 10)]
    setting = {"threads": 1, "dtype": "float64", "rounds": rounds, "per_example": {}}
    setting["epochs"] = [
        entry("numba", 100, [numba] * len(roof_gflops)),
        entry("jax", 100, [peer] * len(roof_gflops)),
        entry("numba", 10, [numba10] * len(roof_gflops)),
        entry("jax", 10, [1.0] * len(roof_gflops)),
    ]
    return {"settings": [setting], "cache_warm_up_seconds": 0.3}


def test_a_cell_is_met_when_both_runs_meet_it_not_met_when_neither_and_unstable_otherwise():
    roof = epoch_flops([784, 30, 10], 60_000, 100) / 1e9 / 0.1  # a 100 ms roof epoch
    # Goal 1 at batch 100: 0.09 and 0.095 of a 0.1 roof (met twice); goal 2: 0.09/0.2 and 0.095/0.15 (met,
    # then 0.63x: unstable); goal 5 as goal 1; goal 1 at batch 10 (numba 0.5 s): missed twice.
    document = two_runs(one_core(0.09, 0.20, [roof] * 3), one_core(0.095, 0.15, [roof] * 3))
    document["cache_warm_up"][1]["total"] = 0.6  # goal 4: met, then missed
    found = {(c["goal"], c["batch_size"]): c for c in bench.goals.cells(document)}
    assert found[(1, 100)]["verdict"] == "met"
    assert [f["value"] for f in found[(1, 100)]["figures"]] == pytest.approx([0.9, 0.95])
    assert found[(2, 100)]["verdict"] == "unstable"
    assert found[(2, 10)]["verdict"] == "met"  # 0.5 / 1.0 twice
    assert found[(1, 10)]["verdict"] == "not met"
    assert found[(4, None)]["verdict"] == "unstable"
    lines = verdicts(document)
    assert (
        "goal 2 threads=1 float64 batch 100: run 1 numba 0.45x best peer; run 2 numba 0.63x best peer "
        "(UNSTABLE: the runs disagree)"
    ) in lines
    assert (
        "goal 1 threads=1 float64 batch 100: run 1 fastest numba at 0.90x roof; run 2 fastest numba at 0.95x roof (met)"
        in lines
    )
    table = goal_table(document).splitlines()
    assert table[2] == "| 1. fastest exact kernel / dense roof, batch 100 | <= 1.0x | numba 0.90x, 0.95x |"
    assert table[4] == "| 2. best Numba kernel / best peer, batch 100 | <= 0.5x | numba 0.45x, 0.63x unstable |"
    assert table[-1] == "| 4. warm-up from the Numba cache | <= 0.5 s | 0.30 s, 0.60 s unstable |"


def test_a_goal_missing_from_one_run_is_unstable_never_met():
    roof = epoch_flops([784, 30, 10], 60_000, 100) / 1e9 / 0.1
    second = one_core(0.09, 0.20, [roof])
    second["settings"][0]["epochs"] = [
        {**e, "status": "mismatch", "seconds": []} if e["name"] == "numba" else e
        for e in second["settings"][0]["epochs"]
    ]
    document = two_runs(one_core(0.09, 0.20, [roof]), second)
    cell = next(c for c in bench.goals.cells(document) if (c["goal"], c["batch_size"]) == (2, 100))
    assert cell["verdict"] == "unstable" and cell["figures"][1] is None
    assert "run 2 not measured" in " ".join(verdicts(document))


@pytest.mark.parametrize(("numba10", "verdict"), [(0.12, "met"), (0.14, "not met")])
def test_batch_10_is_held_to_1_3x_the_dense_roof(numba10, verdict):
    roof10 = epoch_flops([784, 30, 10], 60_000, 10) / 1e9 / 0.1  # a 100 ms roof epoch at batch 10
    document = two_runs(*(one_core(0.09, 0.2, [roof10], numba10=numba10) for _ in range(2)))
    cell = next(c for c in bench.goals.cells(document) if (c["goal"], c["batch_size"]) == (1, 10))
    assert cell["verdict"] == verdict and cell["figures"][0]["value"] == pytest.approx(10 * numba10)
    assert "| 1. fastest exact kernel / dense roof, batch 10 | <= 1.3x | numba " in goal_table(document)


def test_a_file_without_targets_is_held_to_the_goals_of_its_time(document):
    """Files written before batch 10 was held to the roof: no such verdict, one run, as they were read then."""
    assert "batch 10 | <= 1.3x" not in goal_table(document)
    assert not any(line.startswith("goal 1 threads=1 float64 batch 10:") for line in verdicts(document))
    assert bench.goals.runs(document) == [document]


def test_measure_makes_two_runs_of_interleaved_rounds_with_the_roof_and_saves_after_each(monkeypatch):
    from bench.goals import session
    from bench.results.schema import KernelResult

    calls = []

    def interleave(names, config, roof, say, alone=()):
        calls.append((config.batch_size, config.epochs, roof))
        say("round 1/2: ...")
        results = {name: KernelResult(name=name, status="ok", epoch_seconds=[0.1] * config.epochs) for name in names}
        return {
            "results": results,
            "roof_gflops": [50.0] * config.epochs if roof else [],
            "roof": {},
            "order": [],
            "quiet_wait_seconds": [],
        }

    monkeypatch.setattr(session, "interleave", interleave)
    monkeypatch.setattr(session, "reference_check", lambda seed: 0.0)
    monkeypatch.setattr(session, "load_dataset", lambda name: type("Data", (), {"train_images": [0] * 600}))
    monkeypatch.setattr(session, "cache_warm_up", lambda: {"total": 0.2})
    said, saved = [], []
    document = session.measure([1], ["float32"], 2, said.append, density=False, checkpoint=saved.append)
    assert [s["run"] for s in document["settings"]] == [1, 2] and document["runs"] == 2
    assert document["targets"]["roof_batch10"] == 1.3 and document["cache_warm_up"] == [{"total": 0.2}] * 2
    assert [(b, e, roof) for b, e, roof in calls[:3]] == [(100, 2, True), (10, 2, True), (1, 2, False)]
    assert document["per_example_images"] == session.PER_EXAMPLE_SUBSET
    assert [g["roof_gflops"] for g in document["settings"][0]["rounds"]] == [[50.0, 50.0]] * 2
    assert "run 2/2 threads=1 float32 batch 10: round 1/2: ..." in said
    assert len(saved) == 2 and saved[-1] is document
    assert [c["verdict"] for c in bench.goals.cells(document)]  # the arithmetic reads what measure wrote


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_real_workers_wait_between_epochs_and_verify_each_one(tmp_path):
    """The harness's ``epoch N`` phase is the worker's gate: real workers, a tiny workload, two rounds."""
    from bench.goals.rounds import interleave
    from bench.run.config import RunConfig
    from tests.conftest import FAULTY, WRONG

    names = ["vectorized", str(WRONG / "lazy_after_first.py"), str(FAULTY / "segfault.py")]
    config = RunConfig(epochs=2, train_limit=300, batch_size=50, threads=1, timeout=60)
    said: list[str] = []
    out = interleave(names, config, True, said.append)
    honest, lazy, crashed = (out["results"][name] for name in names)
    assert honest.status == "ok" and len(honest.epoch_seconds) == len(honest.verification) == 2
    assert lazy.status == "mismatch" and lazy.mismatch_epoch == 0  # verified in its worker, never ranked
    assert crashed.status == "crashed" and "signal" in crashed.message
    assert out["order"] == [["vectorized", names[1], names[2], "roof"], ["roof", "vectorized"]]
    assert len(out["roof_gflops"]) == 2


def test_waiting_for_quiet_cpus_ends_at_the_first_quiet_window_or_gives_up(monkeypatch):
    import itertools

    from bench.goals import rounds

    monkeypatch.setattr(rounds.time, "sleep", lambda seconds: None)
    busy = iter([0.0, 1.0, 1.0, 1.2, 1.2, 1.21])  # two busy windows (1.0, 0.2 cores' worth), then a quiet one
    monkeypatch.setattr(rounds, "busy_cpu_seconds", lambda: next(busy))
    rounds.wait_until_quiet()
    assert next(busy, "spent") == "spent"  # it read all three windows and stopped at the quiet one

    readings = itertools.count(0.0)  # a core busy for every window: never quiet
    monkeypatch.setattr(rounds, "busy_cpu_seconds", lambda: next(readings))
    assert rounds.wait_until_quiet(max_wait=0.05) >= 0.05

    monkeypatch.setattr(rounds, "busy_cpu_seconds", lambda: None)  # no /proc/stat: no wait
    assert rounds.wait_until_quiet() < 0.05
