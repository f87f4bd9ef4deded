"""``python -m pipeline.export``: the file, refusals, and a missing exporter as one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx", reason="ONNX export is optional: pip install 'handcam[export]'")
pytest.importorskip("onnxscript", reason="ONNX export is optional: pip install 'handcam[export]'")
pytest.importorskip("onnxruntime", reason="the export check needs onnxruntime: pip install 'handcam[export]'")
import pipeline.lenet.onnx_export as onnx_export  # noqa: E402
from pipeline.errors import UserError, run_command  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"






def test_cli_writes_the_file(bn_checkpoints, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    cmd = [sys.executable, "-m", "pipeline.export", "--model", str(bn_checkpoints["single"]), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith(f"wrote {out}") and "fist, one, two, three, four, five, none" in lines[0]
    assert float(lines[-1].split("=")[1]) < 1e-5
    assert done.stderr.strip() == ""  # the exporter's own logging stays quiet


def test_cli_refuses_to_overwrite_and_bad_input_is_one_line(bn_checkpoints, tmp_path: Path, capsys) -> None:
    from pipeline.export import main

    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep me")
    assert run_command(main, ["--model", str(bn_checkpoints["single"]), "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {out}: exists; pass --force to replace it, or another --out"]
    assert run_command(main, ["--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such model file" in err[0]


def test_missing_onnx_is_one_clear_line(monkeypatch, bn_checkpoints, tmp_path: Path, capsys) -> None:
    from pipeline.export import main

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(UserError, match=r"needs the 'onnx' package.*handcam\[export\]"):
        onnx_export.export_checkpoint(bn_checkpoints["single"], tmp_path / "x.onnx")
    assert run_command(main, ["--model", str(bn_checkpoints["single"]), "--out", str(tmp_path / "x.onnx")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: ONNX export needs the 'onnx' package, which is not installed; pip install \"handcam[export]\""]
    assert not (tmp_path / "x.onnx").exists()


def test_the_default_out_is_under_runs(tmp_path: Path, monkeypatch) -> None:
    """Without --out the file goes to runs/export/, not into the working folder."""
    import pipeline.export as export
    from helpers import run_main

    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(export, "--no-check")
    assert code == 0, err
    assert (tmp_path / "runs" / "export" / "fingers.onnx").stat().st_size > 10000 and not list(tmp_path.glob("*.onnx"))
