"""`run` and `sweep` share one definition of their common options, and read them the same way."""

from __future__ import annotations

from dataclasses import fields

import pytest

from bench.cli import build_parser
from bench.cli.options import given
from bench.run.config import RunConfig, SweepConfig, WorkloadConfig

SHARED = [
    "--impl", "numba", "--impl", "examples/my_kernel.py", "--epochs", "3", "--eta", "0.5", "--seed", "7", "--shuffle",
    "--train-limit", "1000", "--dataset", "mnist", "--data-dir", "somewhere", "--no-verify", "--dtype", "float32",
    "--threads", "1", "--timeout", "60",
]  # fmt: skip


def _options(command: str, args: list[str]) -> dict:
    parsed = build_parser().parse_args([command, *args])
    config = RunConfig if command == "run" else SweepConfig
    return given(parsed, config)


def test_run_and_sweep_accept_the_same_shared_options_with_the_same_meaning():
    run, sweep = _options("run", SHARED), _options("sweep", SHARED)
    shared = {f.name for f in fields(WorkloadConfig)}
    assert set(run) == set(sweep) == shared  # every shared option given, read into the same field
    assert {k: run[k] for k in shared} == {k: sweep[k] for k in shared}
    assert run["verify_data"] is False and run["impls"] == ["numba", "examples/my_kernel.py"]


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_option_not_given_is_left_to_the_config_default(command):
    assert _options(command, []) == {}
    config = RunConfig if command == "run" else SweepConfig
    assert config().verify_data is True and config().shuffle is False


def test_the_commands_differ_only_where_they_should():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sweep", "--resume", "x.json"])  # run's own option
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--widths", "30"])  # sweep's own option
