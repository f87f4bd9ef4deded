"""The architecture study: results, summary, plots, resuming, recipe checks."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import pipeline.training.architecture_study as studies
from helpers import DATA, REPO, require
from pipeline.data.spec import DataSpec
from pipeline.errors import run_command
from pipeline.lenet.model import build_model, count_parameters
from pipeline.study import main

GRID = ["--data", str(REPO / "data" / "fingers"), "--variants", "lenet5", "lenet5-max", "--seeds", "0", "1", "--epochs", "2",
        "--limit", "700", "--quiet"]


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_command(main, list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    """2 variants x 2 seeds, 2 epochs, on 700 of the real finger crops, through the command."""
    out = tmp_path_factory.mktemp("study") / "fingers"
    code, stdout, stderr = cli(*GRID, "--out", str(out))
    assert code == 0, stderr
    return out, stdout


def test_grid_writes_results_summary_and_plots(study) -> None:
    out, stdout = study
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == studies.COLUMNS
    assert sorted(zip(table["variant"], table["seed"])) == [("lenet5", 0), ("lenet5", 1), ("lenet5-max", 0), ("lenet5-max", 1)]
    assert table["test_acc"].between(0, 1).all() and table["val_acc"].between(0, 1).all()
    assert (table["params"] == count_parameters(build_model("lenet5", 6))).all()  # both variants: 44,086
    assert (table["macs"] > 0).all() and table[["latency_b1_ms", "latency_b256_ms"]].notna().all().all()
    assert (table["epochs_run"] == 2).all() and table["best_epoch"].between(1, 2).all()
    for run in table["run"]:
        assert (out / run / "model.pt").is_file() and (out / run / "metrics.csv").is_file()
    summary = (out / "summary.md").read_text()
    assert "| lenet5 | 44,086 | 281,304 |" in summary and "| lenet5-max |" in summary
    assert "test groups" in summary and "--limit 700" in summary and "python -m pipeline.study --data " in summary
    for png in ("accuracy_vs_parameters.png", "accuracy_per_variant.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    lines = stdout.strip().splitlines()
    assert lines[-1].startswith("trained=4 skipped=0 best=lenet5")
    mean = table.groupby("variant")["test_acc"].mean()
    assert float(lines[-1].split("test_acc=")[1]) == pytest.approx(mean.max(), abs=1e-4)


def test_second_run_trains_nothing(study, monkeypatch) -> None:
    out, _ = study
    before = (out / "results.csv").read_bytes()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(studies, "train_run", no_training)
    code, stdout, stderr = cli(*GRID, "--out", str(out))
    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1].startswith("trained=0 skipped=4")
    assert (out / "results.csv").read_bytes() == before


def test_a_finished_run_without_its_row_is_measured_not_retrained(study, monkeypatch, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(study[0], out)
    table = pd.read_csv(out / "results.csv")
    table.iloc[:-1].to_csv(out / "results.csv", index=False)  # stopped after training, before writing its row
    (out / table["run"].iloc[-1] / "summary.json").unlink()  # and before the run's own report
    monkeypatch.setattr(studies, "train_run", lambda *a, **k: pytest.fail("retrained a finished run"))
    code, stdout, stderr = cli(*GRID, "--out", str(out))
    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1].startswith("trained=1 skipped=3")
    again = pd.read_csv(out / "results.csv")
    assert again["test_acc"].iloc[-1] == pytest.approx(table["test_acc"].iloc[-1])


def test_the_grid_can_grow_but_the_recipe_cannot_change(study, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "grow"
    shutil.copytree(study[0], out)
    code, stdout, stderr = cli(*GRID[:-1], "--variants", "lenet5", "lenet5-max", "lenet5-tanh", "--seeds", "0",
                               "--quiet", "--out", str(out))
    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1].startswith("trained=1 skipped=2")
    assert len(pd.read_csv(out / "results.csv")) == 5
    code, _, err = cli(*GRID, "--epochs", "3", "--out", str(out))
    assert code == 2 and err.strip().splitlines() == [
        f"error: {out} holds a study with another recipe (differs in train); rerun with the same settings, or pass another --out"]


def test_mnist_summary_names_the_split_and_the_subset(tmp_path: Path) -> None:
    require(DATA / "mnist", "MNIST idx files")
    config = studies.default_config(DataSpec("mnist", (str(DATA / "mnist"),)), quick=True)
    config = studies.StudyConfig(config.data, ("lenet5",), (0,), replace(config.train, epochs=3), 1500)
    result = studies.run_study(config, tmp_path / "m", progress=False, log=lambda *_: None)
    assert result.trained == 1 and 0.6 < result.results["test_acc"].iloc[0] <= 1  # 3 epochs on 1,500 digits: far above 0.1
    summary = (tmp_path / "m" / "summary.md").read_text()
    assert "MNIST's official split" in summary and "--limit 1500" in summary
