"""``python -m pipeline.explain``: figures, and bad input as one line."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2

import pipeline.explain as explain
from helpers import run_main
from pipeline.lenet.checkpoint import make_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"






def run_explain(*args: str) -> SimpleNamespace:
    """``explain`` in this process: its exit code, stdout and stderr."""
    code, out, err = run_main(explain, *args)
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_cli_writes_figures(sanity_models, fingers, tmp_path: Path) -> None:
    model = sanity_models["true"]
    ckpt = tmp_path / "model.pt"
    save_checkpoint(make_checkpoint([model], "lenet5", fingers.label_names, fingers.settings), ckpt)
    out = tmp_path / "figures"
    result = run_explain("--model", str(ckpt), "--data", str(FINGERS), "--out", str(out), "--per-class", "2",
                         "--mean-per-class", "12", "--smooth-samples", "4", "--quiet")
    assert result.returncode == 0, result.stderr
    names = {f"samples_{label}.png" for label in fingers.label_names} | {"class_means.png"}
    assert {p.name for p in out.iterdir()} == names
    for name in names:
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 200 and image.std() > 10
    assert result.stdout.strip().splitlines()[-1] == f"figures=7 samples=12 out={out}"


def test_cli_bad_input_gives_one_line(tmp_path: Path) -> None:
    result = run_explain("--model", str(tmp_path / "missing.pt"), "--data", str(FINGERS))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing.pt" in lines[0]
