"""``python -m pipeline.study``: bad input as one line, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline.study as study
from helpers import DATA, REPO, error_line, require, run_main

FINGERS = str(REPO / "data" / "fingers")


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/data"], "error: /nonexistent/data: no such folder (--data)"),
    (["--data", FINGERS, "--variants", "lenet7"], "error: unknown variant(s) lenet7"),
    (["--data", FINGERS, "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["--mnist", "/nonexistent/mnist"], "error: /nonexistent/mnist: no such folder (--mnist)"),
    (["--data", FINGERS, "--limit", "3"], "argument --limit: must be at least 10, got 3"),
    (["--data", FINGERS, "--mnist", "/x"], "error: give one kind of data"),
    (["--data", FINGERS, "--splits", "2", "2"], "error: each split may be named only once"),
    (["--data", FINGERS, "--variants", "lenet5", "lenet5"], "error: each variant may be named only once"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    code, out, err = run_main(study, *args, "--out", str(tmp_path / "s"), "--quiet")
    assert code == 2 and message in error_line(err) and out == ""
    assert not (tmp_path / "s").exists()


def test_the_landmark_mlp_needs_hand_data(tmp_path: Path) -> None:
    require(DATA / "mnist", "MNIST idx files")
    code, out, err = run_main(study, "--mnist", str(DATA / "mnist"), "--variants", "landmark-mlp",
                              "--out", str(tmp_path / "s"), "--quiet")
    assert code == 2 and out == "" and not (tmp_path / "s").exists()
    assert error_line(err).startswith("error: unknown variant(s) landmark-mlp (landmark-mlp needs hand data, with landmarks)")


def test_fill_is_for_hand_crops(tmp_path: Path) -> None:
    require(DATA / "mnist", "MNIST idx files")
    code, out, err = run_main(study, "--mnist", str(DATA / "mnist"), "--fill", "depth", "--out", str(tmp_path / "s"), "--quiet")
    assert code == 2 and out == "" and not (tmp_path / "s").exists()
    assert error_line(err) == "error: --fill is for hand crops made by collect, not for mnist; leave it out"
