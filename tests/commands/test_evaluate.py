"""``python -m pipeline.evaluate`` through the whole path on real photos."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, timeout=600)






def test_evaluate_runs_the_whole_path_on_real_photos(trained_run: Path, tmp_path: Path, fingers_dir: Path) -> None:
    folder = tmp_path / "photos"
    for label, source in (("one", "1"), ("five", "5"), ("rock", "5")):
        (folder / label).mkdir(parents=True)
        for photo in sorted((fingers_dir / source).glob("996_pic*.jpg"))[:3]:
            shutil.copy(photo, folder / label / photo.name)
    proc = run_cli("pipeline.evaluate", "--model", str(trained_run / "model.pt"), str(folder), "--quiet",
                   "--out", str(tmp_path / "eval"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert any("skipped 3 file(s) of label 'rock'" in line for line in lines)
    fields = dict(kv.split("=") for kv in lines[-1].split())
    assert set(fields) == {"accuracy", "n", "no_hand"}
    assert int(fields["n"]) + int(fields["no_hand"]) == 6
    assert 0 <= float(fields["accuracy"]) <= 1
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "eval" / "predictions.csv")) == int(fields["n"])
