"""The architecture study: results, summary, plots, resuming, recipe checks, splits, paired statistics."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import pipeline.training.architecture_study as studies
from helpers import DATA, REPO, require
from pipeline.data.load import read_meta
from pipeline.data.spec import DataSpec, changed_fill
from pipeline.errors import run_command
from pipeline.lenet.checkpoint import load_model
from pipeline.lenet.model import build_model, count_parameters
from pipeline.study import main

GRID = ["--data", str(REPO / "data" / "fingers"), "--variants", "lenet5", "lenet5-max", "--seeds", "0", "1",
        "--splits", "0", "1", "--epochs", "2", "--limit", "700", "--quiet"]
CELLS = sorted((v, k, s) for v in ("lenet5", "lenet5-max") for k in (0, 1) for s in (0, 1))


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_command(main, list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    """2 variants x 2 splits x 2 seeds, 2 epochs, on 700 of the real finger crops, through the command."""
    out = tmp_path_factory.mktemp("study") / "fingers"
    code, stdout, stderr = cli(*GRID, "--out", str(out))
    assert code == 0, stderr
    return out, stdout


def test_grid_writes_results_summary_and_plots(study) -> None:
    out, stdout = study
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == studies.COLUMNS
    assert sorted(zip(table["variant"], table["split"], table["seed"])) == CELLS
    assert table["test_acc"].between(0, 1).all() and table["val_acc"].between(0, 1).all()
    # data/fingers' seven labels (its OK-like signs are none): both variants 44,171 parameters
    assert (table["params"] == count_parameters(build_model("lenet5", 7))).all()
    assert (table["macs"] > 0).all() and table[["latency_b1_ms", "latency_b256_ms"]].notna().all().all()
    assert (table["epochs_run"] == 2).all() and table["best_epoch"].between(1, 2).all()
    for run in table["run"]:
        assert (out / run / "model.pt").is_file() and (out / run / "metrics.csv").is_file()
    assert set(table["run"]) == {f"runs/split{k}/{v}-s{s}" for v, k, s in CELLS}
    summary = (out / "summary.md").read_text()
    assert "| lenet5 | 44,171 | 281,388 |" in summary and "| lenet5-max |" in summary
    assert "split 0: train" in summary and "split 1: train" in summary and "test groups" not in summary
    assert "--limit 700" in summary and "python -m pipeline.study --data " in summary
    # The two splits hold different test groups (they are different deals of the groups).
    notes = summary.split("split 0: ")[1]
    assert notes.split("; split 1: ")[0].split("groups: ")[-1] != notes.split("; split 1: ")[1].split("groups: ")[-1]
    for png in ("accuracy_vs_parameters.png", "accuracy_per_variant.png", "paired_differences.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # The paired row: lenet5-max minus lenet5 over the 4 shared cells, as results.csv says.
    wide = table.pivot_table(index=["split", "seed"], columns="variant", values="test_acc")
    diff = (wide["lenet5-max"] - wide["lenet5"]).to_numpy()
    row = next(line for line in summary.splitlines() if line.startswith("| lenet5-max | ") and "/" in line)
    assert f"{100 * diff.mean():+.1f} [" in row
    assert f"| {(diff > 1e-9).sum()} / {(diff < -1e-9).sum()} / {(abs(diff) <= 1e-9).sum()} |" in row
    lines = stdout.strip().splitlines()
    assert any(line.startswith("| variant | test acc % [95% CI]") for line in lines)
    assert lines[-1].startswith("trained=8 skipped=0 best=lenet5")
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
    assert stdout.strip().splitlines()[-1].startswith("trained=0 skipped=8")
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
    assert stdout.strip().splitlines()[-1].startswith("trained=1 skipped=7")
    again = pd.read_csv(out / "results.csv")
    assert again["test_acc"].iloc[-1] == pytest.approx(table["test_acc"].iloc[-1])


def test_the_grid_can_grow_but_the_recipe_cannot_change(study, tmp_path: Path) -> None:
    out = tmp_path / "grow"
    shutil.copytree(study[0], out)
    code, stdout, stderr = cli(*GRID[:-1], "--variants", "lenet5", "lenet5-max", "lenet5-tanh", "--seeds", "0",
                               "--splits", "1", "2", "--quiet", "--out", str(out))
    assert code == 0, stderr
    # lenet5 and lenet5-max with seed 0 on split 1 are done; lenet5-tanh on split 1, and all three on split 2, are new.
    assert stdout.strip().splitlines()[-1].startswith("trained=4 skipped=2")
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 12 and sorted(set(table["split"])) == [0, 1, 2]
    code, _, err = cli(*GRID, "--epochs", "3", "--out", str(out))
    assert code == 2 and err.strip().splitlines() == [
        f"error: {out} holds a study with another recipe (differs in train); rerun with the same settings, or pass another --out"]


def test_a_study_of_depth_crops_trains_on_them_and_records_the_fill(study, tmp_path: Path, monkeypatch) -> None:
    """--fill draws the crops again for every cell, as train --fill does; the recipe holds it, so a rerun without it
    is refused, and a study made before the option (no fill in its recipe) reads as without one."""
    gestures = REPO / "data" / "gestures"
    args = ["--data", str(gestures), "--variants", "lenet5", "--seeds", "0", "--splits", "0", "--epochs", "1", "--quiet"]
    out = tmp_path / "depth"
    code, stdout, stderr = cli(*args, "--fill", "depth", "--out", str(out))
    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1].startswith("trained=1 skipped=0")
    assert json.loads((out / "study.json").read_text())["recipe"]["fill"] == "depth"
    run = pd.read_csv(out / "results.csv")["run"].iloc[0]
    assert load_model(out / run / "model.pt").crop_settings.fill == "depth" != read_meta(gestures).settings.fill
    assert "drawn again with `--fill depth`" in (out / "summary.md").read_text()
    monkeypatch.setattr(studies, "load_study_data", lambda *a: pytest.fail("loaded the data before checking the recipe"))
    code, _, err = cli(*args, "--out", str(out))
    assert code == 2 and err.strip().splitlines() == [
        f"error: {out} holds a study with another recipe (differs in fill); rerun with the same settings, or pass another --out"]
    assert "fill" not in json.loads((study[0] / "study.json").read_text())["recipe"]
    # The folders' own fill is no change: the study run without --fill.
    spec = DataSpec("hands", (str(gestures),))
    assert (changed_fill(spec, "image"), changed_fill(spec, "depth"), changed_fill(spec, None)) == (None, "depth", None)


def test_mnist_summary_names_the_split_and_the_subset(tmp_path: Path) -> None:
    require(DATA / "mnist", "MNIST idx files")
    config = studies.default_config(DataSpec("mnist", (str(DATA / "mnist"),)), quick=True)
    config = studies.StudyConfig(config.data, ("lenet5",), (0,), replace(config.train, epochs=3), 1500)
    assert config.splits == (0,)  # MNIST: its official test set
    result = studies.run_study(config, tmp_path / "m", progress=False, log=lambda *_: None)
    assert result.trained == 1 and 0.6 < result.results["test_acc"].iloc[0] <= 1  # 3 epochs on 1,500 digits: far above 0.1
    summary = (tmp_path / "m" / "summary.md").read_text()
    assert "MNIST's official split" in summary and "--limit 1500" in summary


def test_an_old_study_without_splits_is_read_as_its_one_split_and_continues(study, monkeypatch, tmp_path: Path) -> None:
    """results.csv from before the split column: its rows are of the split its study.json named (split_seed)."""
    out = tmp_path / "old"
    shutil.copytree(study[0], out)
    table = pd.read_csv(out / "results.csv")
    old = table[table["split"] == 1].drop(columns=["split", "train_load_avg"])  # two columns younger than the table
    old.to_csv(out / "results.csv", index=False)
    meta = json.loads((out / "study.json").read_text())
    meta["recipe"]["split_seed"] = 1  # what an old study recorded
    (out / "study.json").write_text(json.dumps(meta))
    read = studies.read_results(out)
    assert list(read.columns) == studies.COLUMNS and (read["split"] == 1).all() and len(read) == 4
    assert read["train_load_avg"].equals(read["load_avg"])
    monkeypatch.setattr(studies, "train_run", lambda *a, **k: pytest.fail("retrained a cell of the old split"))
    code, stdout, stderr = cli(*GRID[:-1], "--splits", "1", "--quiet", "--out", str(out))
    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1].startswith("trained=0 skipped=4")
    (out / "study.json").unlink()
    assert (studies.read_results(out)["split"] == 0).all()  # no record: split 0, the old default


def test_the_landmark_mlp_is_a_row_on_the_same_cells(tmp_path: Path) -> None:
    out = tmp_path / "mlp"
    code, stdout, stderr = cli(*GRID[:3], "lenet5", "landmark-mlp", "--seeds", "0", "--splits", "0", "--epochs", "2",
                               "--limit", "700", "--quiet", "--out", str(out))
    assert code == 0, stderr
    table = pd.read_csv(out / "results.csv").set_index("variant")
    mlp = table.loc["landmark-mlp"]
    assert mlp["params"] == 42 * 20 + 20 + 20 * 10 + 10 + 10 * 7 + 7 and mlp["macs"] == 42 * 20 + 20 * 10 + 10 * 7
    assert 0.5 < mlp["test_acc"] <= 1 and mlp["latency_b1_ms"] > 0 and (out / mlp["run"] / "mlp.pt").is_file()
    model = studies.load_cell_model(out / mlp["run"])  # what --remeasure times
    assert model(torch.zeros(2, 42)).shape == (2, 7)
    assert "| landmark-mlp | 1,147 | 1,110 |" in (out / "summary.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--splits", "0", "0"], "error: each split may be named only once"),
    (["--seeds", "1", "1"], "error: each seed may be named only once"),
])
def test_a_grid_names_each_split_and_seed_once(args: list[str], message: str, tmp_path: Path) -> None:
    code, _, err = cli(*GRID[:5], *args, "--quiet", "--out", str(tmp_path / "s"))
    assert code == 2 and err.strip() == message


# ---------------------------------------------------------------------------------------------
# Paired statistics, against values counted by hand (and scipy's, where it is installed)


def test_wilcoxon_exact_p_values_are_the_counted_ones() -> None:
    # n = 5, all positive: W- = 0, and only 1 of the 2^5 sign patterns is as extreme each way: p = 2/32.
    r = studies.wilcoxon_signed_rank([1, 2, 3, 4, 5])
    assert (r.statistic, r.p, r.n, r.method) == (0, 2 / 32, 5, "exact")
    # Ranks of |d|: 0.4->1, 0.5->2, 0.8->3, 1.2->4, 1.7->5, 2.3->6, 2.9->7, 3.1->8; negatives hold ranks 1 and 4: W- = 5.
    # Subsets of 1..8 summing to <= 5: {}, 1, 2, 3, 4, 5, 1+2, 1+3, 1+4, 2+3: 10 of 256, so p = 2 * 10/256.
    r = studies.wilcoxon_signed_rank([0.5, -1.2, 2.3, 3.1, -0.4, 1.7, 2.9, 0.8])
    assert r.statistic == 5 and r.p == pytest.approx(20 / 256, abs=1e-15)
    assert studies.wilcoxon_signed_rank([0, 0, 0]).p == 1.0  # nothing to test: no difference at all


def test_wilcoxon_normal_approximation_with_ties_and_zeros() -> None:
    d = [1, 1, 2, -1, 3, 0, 0, 2, -2, 4]  # zeros dropped (n = 8); |d| ties: three 1s, three 2s
    r = studies.wilcoxon_signed_rank(d)
    # Ranks: 1s -> 2, 2s -> 5, 3 -> 7, 4 -> 8; W- = 2 + 5 = 7; var = 8*9*17/24 - (24 + 24)/48 = 50.
    assert r.method == "normal" and r.statistic == 7
    assert r.p == pytest.approx(math.erfc(abs(7 - 18) / math.sqrt(50) / math.sqrt(2)), rel=1e-12)
    assert r.p == pytest.approx(0.11979493042591832, rel=1e-9)  # scipy.stats.wilcoxon(d, method="approx")


def test_wilcoxon_equals_scipy_on_random_differences() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy is not installed: the hand-counted tests above stand")
    rng = np.random.default_rng(1)
    for d in (rng.normal(0.3, 1, 20), np.round(rng.normal(0.5, 1, 15) * 4) / 242, rng.normal(0, 1, 60)):
        ours = studies.wilcoxon_signed_rank(d)
        theirs = stats.wilcoxon(d, zero_method="wilcox", method="exact" if ours.method == "exact" else "approx")
        assert ours.statistic == theirs.statistic and ours.p == pytest.approx(theirs.pvalue, rel=1e-9)


def test_holm_adjusts_step_down() -> None:
    # Sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> kept monotone: 0.06.
    assert studies.holm([0.01, 0.04, 0.03, 0.005, float("nan")]) == pytest.approx([0.03, 0.06, 0.06, 0.02, np.nan],
                                                                                    nan_ok=True)


def test_cluster_bootstrap_resamples_splits_not_cells() -> None:
    """Two splits, one at 0 and one at 1 with every seed: the interval spans both, as a split resample must."""
    mean, low, high = studies.cluster_bootstrap([[0, 0, 0], [1, 1, 1]])
    assert (mean, low, high) == (0.5, 0.0, 1.0)  # split means 0, 0.5, 1 with chances 1/4, 1/2, 1/4
    # Treated as 6 independent cells the interval would be narrower (a mean of 6 draws of 0/1: about 0.1-0.9).
    assert studies.cluster_bootstrap([0, 0, 0, 1, 1, 1])[1:] != (0.0, 1.0)
    assert studies.cluster_bootstrap(np.full((5, 3), 0.93)) == pytest.approx((0.93, 0.93, 0.93))
    mean, low, high = studies.cluster_bootstrap([[0.9, np.nan], [0.8, 0.7]])  # a missing cell is left out
    assert mean == pytest.approx(0.8) and low >= 0.7 and high <= 0.9


def test_compare_variants_pairs_cells() -> None:
    rng = np.random.default_rng(0)
    cells = [(k, s) for k in range(5) for s in range(3)]
    base = {c: 0.9 + 0.02 * rng.standard_normal() for c in cells}
    rows = [{"variant": "lenet5", "split": k, "seed": s, "test_acc": base[k, s]} for k, s in cells]
    rows += [{"variant": "lenet5-bn", "split": k, "seed": s, "test_acc": base[k, s] + 0.01} for k, s in cells]
    rows += [{"variant": "lenet5-max", "split": k, "seed": s, "test_acc": base[k, s] + (0.01 if s else -0.01)}
             for k, s in cells if (k, s) != (4, 2)]
    table = pd.DataFrame(rows).assign(val_acc=1.0, best_epoch=1, epochs_run=1, params=1, macs=1, latency_b1_ms=1.0,
                                      latency_b256_ms=1.0, train_s=1.0)
    c = studies.compare_variants(table)
    assert list(c.index) == ["lenet5", "lenet5-max", "lenet5-bn"]  # registry order
    bn = c.loc["lenet5-bn"]
    # The same +1 point on every cell: the interval is that point, and 15 of 15 tied ranks give z = -60/sqrt(240).
    assert (bn.paired, bn.better, bn.worse, bn.tied) == (15, 15, 0, 0)
    assert (bn.diff_mean, bn.diff_low, bn.diff_high) == pytest.approx((0.01, 0.01, 0.01))
    assert bn.wilcoxon_p == pytest.approx(math.erfc(60 / math.sqrt(240) / math.sqrt(2)), rel=1e-9)
    mx = c.loc["lenet5-max"]  # 14 cells: seed 0 lower by 1 point (5 cells), seeds 1-2 higher (9)
    assert (mx.paired, mx.better, mx.worse) == (14, 9, 5) and mx.diff_mean == pytest.approx(0.01 * 4 / 14)
    assert mx.diff_low < 0 < mx.diff_high and mx.wilcoxon_p > 0.05
    assert c.loc["lenet5", "acc_mean"] == pytest.approx(np.mean(list(base.values())))
    assert c["holm_p"].to_numpy()[1:] == pytest.approx(studies.holm(c["wilcoxon_p"].to_numpy()[1:]))
