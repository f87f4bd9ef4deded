"""The architecture study: a small grid on real data, resuming, and the Sign-MNIST copy groups."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipeline.studies as studies
from pipeline.duplicates import check_leak, copy_groups, copy_similarity, random_split_like
from pipeline.errors import run_command
from pipeline.models import build_model, count_parameters
from pipeline.study import main

from conftest import DATA, require

GRID = ["--dataset", "fingers", "--variants", "lenet5", "lenet5-max", "--seeds", "0", "1", "--epochs", "2",
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
    assert (table["macs"] > 0).all() and (table["latency_b1_ms"] > 0).all()
    assert (table["latency_b256_ms"] > table["latency_b1_ms"]).all()
    assert (table["epochs_run"] == 2).all() and table["best_epoch"].between(1, 2).all()
    for run in table["run"]:
        assert (out / run / "model.pt").is_file() and (out / run / "metrics.csv").is_file()
    summary = (out / "summary.md").read_text()
    assert "| lenet5 | 44,086 | 281,304 |" in summary and "| lenet5-max |" in summary
    assert "test sessions" in summary and "--limit 700" in summary and "python -m pipeline.study --dataset fingers" in summary
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


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar"], "--dataset cifar: unknown; choose one of fingers, mnist, signmnist"),
    (["--dataset", "fingers", "--variants", "lenet7"], "unknown variant(s) lenet7"),
    (["--dataset", "fingers", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["--dataset", "mnist", "--path", "/nonexistent/mnist"], "/nonexistent/mnist: no such folder"),
    (["--dataset", "fingers", "--limit", "3"], "--limit 3 is too small"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    code, _, err = cli(*args, "--out", str(tmp_path / "s"), "--quiet")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "s" / "results.csv").exists()


def test_mnist_summary_compares_with_1998_and_names_the_retoned_copy(tmp_path: Path) -> None:
    require(DATA / "mnist", "MNIST idx files")
    config = studies.default_config("mnist", quick=True)
    config = studies.StudyConfig(config.dataset, config.path, ("lenet5",), (0,), replace(config.train, epochs=3), 1500)
    result = studies.run_study(config, tmp_path / "m", progress=False, log=lambda *_: None)
    assert result.trained == 1 and 0.6 < result.results["test_acc"].iloc[0] <= 1  # 3 epochs on 1,500 digits: far above 0.1
    summary = (tmp_path / "m" / "summary.md").read_text()
    assert "re-toned copy" in summary and "--limit 1500" in summary


# ---------------------------------------------------------------------------------------------
# Near-copies


def test_copy_similarity_sees_through_shifts_that_plain_correlation_misses() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)
    shifted = np.roll(base, (2, -3), axis=(1, 2))  # a copy cropped 2 px lower and 3 px to the left
    other = rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)
    plain = np.corrcoef(base.ravel().astype(float), shifted.ravel().astype(float))[0, 1]
    sim = copy_similarity(np.concatenate([shifted, other]), base)
    assert plain < 0.1  # noise images: no correlation without the shift
    assert sim[0, 0] == pytest.approx(1.0, abs=1e-5)  # the central windows line up exactly
    assert sim[1, 0] < 0.35  # another image stays unrelated at its best shift and zoom
    groups = copy_groups(np.concatenate([base, shifted, other]))
    assert groups[0] == groups[1] != groups[2]


@pytest.fixture(scope="module")
def signmnist():
    from pipeline.datasets import load_signmnist

    return load_signmnist(require(DATA / "signmnist" / "sign_mnist_test.csv.gz", "Sign-MNIST test CSV"))


def test_signmnist_group_split_holds_no_near_copies(signmnist) -> None:
    """The plain-correlation grouping leaked shifted copies (about a quarter of test items had one in
    train); the copy groups leave none above 0.95, while a random split gives every test item one."""
    from pipeline.data import split_by_group
    from pipeline.datasets import near_duplicate_groups

    images, labels = signmnist.images[:, 0].numpy(), signmnist.labels.numpy()
    assert 150 < len(set(signmnist.groups.tolist())) < 304  # fewer, larger groups than the plain grouping's 304
    train, val, test = split_by_group(signmnist.groups, labels, seed=0)
    grouped = check_leak(images, labels, train, test, "grouped", sample=80)
    assert grouped.over_095 == 0 and grouped.nearest_max < 0.95
    assert grouped.nearest_max < grouped.other_class_max + 0.05  # no closer than images of another letter
    plain = near_duplicate_groups(images).astype(str)
    p_train, _, p_test = split_by_group(plain, labels, seed=0)
    assert check_leak(images, labels, p_train, p_test, "plain", sample=80).over_095 > 0.1
    r_train, _, r_test = random_split_like(len(labels), len(val), len(test))
    assert check_leak(images, labels, r_train, r_test, "random", sample=80).over_095 > 0.95
