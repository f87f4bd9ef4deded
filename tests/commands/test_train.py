"""``python -m pipeline.train``: the last line, and bad inputs as one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, timeout=600)






def test_train_cli_prints_the_test_accuracy_last(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    proc = run_cli("pipeline.train", "--data", str(FINGERS), "--out", str(out), "--epochs", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("test_accuracy=") and 0 <= float(last.split("=")[1]) <= 1
    again = run_cli("pipeline.train", "--data", str(FINGERS), "--out", str(out), "--epochs", "2", "--quiet")
    assert again.returncode == 2 and again.stderr.startswith("error:") and "never overwritten" in again.stderr


def _error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


def test_bad_inputs_give_one_clear_line(tmp_path: Path, trained_run: Path) -> None:
    assert "no such" in _error_line(run_cli("pipeline.train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")))\
        or "not a dataset" in _error_line(run_cli("pipeline.train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")))
    # A dataset with one class only.
    one = tmp_path / "one"
    shutil.copytree(FINGERS, one, ignore=shutil.ignore_patterns(".cache"))
    index = pd.read_csv(one / "index.csv", dtype=str)
    index[index["label"] == "fist"].to_csv(one / "index.csv", index=False)
    assert "only one class" in _error_line(run_cli("pipeline.train", "--data", str(one), "--out", str(tmp_path / "o1"), "--quiet"))
    # An empty dataset.
    index.iloc[:0].to_csv(one / "index.csv", index=False)
    assert "empty" in _error_line(run_cli("pipeline.train", "--data", str(one), "--out", str(tmp_path / "o2"), "--quiet"))
    # A listed crop whose file is missing.
    gone = tmp_path / "gone"
    shutil.copytree(FINGERS, gone, ignore=shutil.ignore_patterns(".cache"))
    next((gone / "crops" / "two").glob("*.png")).unlink()
    assert "missing" in _error_line(run_cli("pipeline.train", "--data", str(gone), "--out", str(tmp_path / "o3"), "--quiet"))
    # Checkpoints: not one at all, and one whose weights do not fit its model.
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert "not a checkpoint" in _error_line(run_cli("pipeline.evaluate", "--model", str(junk), str(tmp_path)))
    ckpt = torch.load(trained_run / "model.pt", weights_only=True)
    ckpt["model_config"]["channels"] = [8, 16]
    torch.save(ckpt, tmp_path / "wrong.pt")
    assert "do not fit" in _error_line(run_cli("pipeline.evaluate", "--model", str(tmp_path / "wrong.pt"), str(tmp_path)))
    ckpt = torch.load(trained_run / "model.pt", weights_only=True)
    ckpt["crop_settings"]["warp_mode"] = "fancy"
    torch.save(ckpt, tmp_path / "newer.pt")
    assert "unknown crop setting" in _error_line(run_cli("pipeline.evaluate", "--model", str(tmp_path / "newer.pt"), str(tmp_path)))
