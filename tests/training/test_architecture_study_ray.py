"""The study on Ray (the shared local Ray of 2 CPUs): each cell a task of one thread, the same results.csv rows
as the serial study for the same seeds, and a rerun that continues."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO, wait_for_cpus
from pipeline.errors import run_command
from pipeline.study import main

GRID = ["--data", str(REPO / "data" / "fingers"), "--variants", "lenet5", "lenet5-max", "--epochs", "2", "--limit", "700",
        "--splits", "0", "--quiet"]
#: The columns a seed fixes; the timing columns (latency, train seconds, load, threads) depend on the machine.
DETERMINISTIC = ["variant", "split", "seed", "test_acc", "val_acc", "best_epoch", "epochs_run", "params", "macs", "run"]


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_command(main, list(args))
    return code, out.getvalue(), err.getvalue()


def rows(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv")[DETERMINISTIC].sort_values(["variant", "seed"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial") / "study"
    code, _, err = cli(*GRID, "--seeds", "0", "1", "--out", str(out))
    assert code == 0, err
    return out


def test_a_study_on_ray_gives_the_serial_rows_and_a_rerun_continues(ray_local, serial, tmp_path):
    out = tmp_path / "study"
    code, stdout, err = cli(*GRID, "--seeds", "0", "--engine", "ray", "--out", str(out))
    assert code == 0, err
    assert stdout.strip().splitlines()[-1].startswith("trained=2 skipped=0")
    table = pd.read_csv(out / "results.csv")
    assert (table["threads"] == 1).all()  # each cell on one thread
    expected = rows(serial)
    pd.testing.assert_frame_equal(rows(out), expected[expected["seed"] == 0].reset_index(drop=True))
    assert wait_for_cpus(ray_local, 2) == 2

    code, stdout, err = cli(*GRID, "--seeds", "0", "1", "--engine", "ray", "--out", str(out))
    assert code == 0, err
    assert stdout.strip().splitlines()[-1].startswith("trained=2 skipped=2")  # only seed 1 was trained
    pd.testing.assert_frame_equal(rows(out), expected)
    log = (out / "log.txt").read_text()
    assert log.count("== split0/lenet5-max-s1") == 1 and log.count("== split0/lenet5-s0") == 1


def test_a_cell_that_fails_twice_is_reported_and_the_others_are_written(ray_local, tmp_path):
    out = tmp_path / "study"
    (out / "runs" / "split0").mkdir(parents=True)
    (out / "runs" / "split0" / "lenet5-max-s0").write_text("a file where the cell's run folder should go")
    code, stdout, err = cli(*GRID, "--seeds", "0", "--engine", "ray", "--out", str(out))
    assert code == 1
    assert err.strip().startswith("failed twice: split0/lenet5-max-s0: ") and "rerun the same command" in err
    assert len(err.strip().splitlines()) == 1
    assert list(pd.read_csv(out / "results.csv")["variant"]) == ["lenet5"]  # the other cell's row is written
    assert stdout.strip().splitlines()[-1].startswith("trained=1 skipped=0")
