"""``python -m pipeline.study``: bad input as one line, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline.study as study
from helpers import REPO, error_line, run_main

FINGERS = str(REPO / "data" / "fingers")


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/data"], "error: /nonexistent/data: no such folder (--data)"),
    (["--data", FINGERS, "--variants", "lenet7"], "error: unknown variant(s) lenet7"),
    (["--data", FINGERS, "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["--mnist", "/nonexistent/mnist"], "error: /nonexistent/mnist: no such folder (--mnist)"),
    (["--data", FINGERS, "--limit", "3"], "argument --limit: must be at least 10, got 3"),
    (["--data", FINGERS, "--mnist", "/x"], "error: give one kind of data"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    code, out, err = run_main(study, *args, "--out", str(tmp_path / "s"), "--quiet")
    assert code == 2 and message in error_line(err) and out == ""
    assert not (tmp_path / "s").exists()
