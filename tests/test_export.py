"""ONNX export: ONNX Runtime computes the PyTorch logits on the real crops of ``data/fingers``."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export is optional: pip install 'handcam[export]'")
pytest.importorskip("onnxscript", reason="ONNX export is optional: pip install 'handcam[export]'")
pytest.importorskip("onnxruntime", reason="the export check needs onnxruntime: pip install 'handcam[export]'")

from pipeline import onnx_export  # noqa: E402
from pipeline.checkpoint import load_model, read_checkpoint, save_checkpoint  # noqa: E402
from pipeline.crops import CropSettings  # noqa: E402
from pipeline.data import load_dataset  # noqa: E402
from pipeline.errors import UserError, run_command  # noqa: E402
from pipeline.models import predict_logits  # noqa: E402
from pipeline.runs import train_run  # noqa: E402
from pipeline.training import TrainConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FINGERS = REPO / "data" / "fingers"


@pytest.fixture(scope="module")
def fingers():
    return load_dataset(FINGERS)


@pytest.fixture(scope="module")
def checkpoints(fingers, tmp_path_factory) -> dict[str, Path]:
    """A two-member ensemble trained briefly (lenet5-bn: batch norm must export in eval mode), and its first member alone."""
    root = tmp_path_factory.mktemp("export")
    keep = np.flatnonzero(np.isin(fingers.groups, ["2", "996", "55", "5", "3_1528505750.77"]))
    train_run(fingers.subset(keep), "lenet5-bn", root / "run", replace(TrainConfig(), epochs=2), members=2,
              progress=False, log=lambda *_: None)
    ckpt = read_checkpoint(root / "run" / "model.pt")
    ckpt.pop("crop")
    single = root / "single.pt"
    save_checkpoint({**ckpt, "members": ckpt["members"][:1]}, single)
    return {"ensemble": root / "run" / "model.pt", "single": single}


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory) -> dict[str, tuple[Path, onnx_export.ExportResult]]:
    out = tmp_path_factory.mktemp("onnx")
    return {kind: (path, onnx_export.export_checkpoint(path, out / f"{kind}.onnx")) for kind, path in checkpoints.items()}


@pytest.mark.parametrize("kind", ["single", "ensemble"])
def test_onnx_runtime_gives_the_pytorch_logits_on_real_crops(exported, fingers, kind: str) -> None:
    ckpt_path, result = exported[kind]
    model, _ = load_model(ckpt_path)
    assert result.members == (2 if kind == "ensemble" else 1)
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-5
    expected = predict_logits(model, fingers.images).numpy()  # all 1,610 crops in one dynamic batch
    got = onnx_export.onnxruntime_logits(result.out, fingers.images)
    assert got.shape == expected.shape == (len(fingers), 6)
    assert np.abs(got - expected).max() < 1e-5
    one = onnx_export.onnxruntime_logits(result.out, fingers.images[5:6])  # batch of one
    assert np.abs(one - expected[5:6]).max() < 1e-5
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_metadata_round_trips(exported, fingers) -> None:
    import onnx

    ckpt_path, result = exported["ensemble"]
    ckpt = read_checkpoint(ckpt_path)
    meta = onnx_export.read_onnx_metadata(result.out)
    assert meta["label_names"] == ["fist", "one", "two", "three", "four", "five"] == result.labels
    assert CropSettings.from_dict(meta["crop_settings"]) == fingers.settings == ckpt["crop"]
    assert meta["model_name"] == "lenet5-bn" and meta["members"] == 2
    assert meta["model_config"] == ckpt["model_config"]
    assert meta["input"]["shape"] == ["batch", 1, 28, 28] and meta["input"]["scale"] == "uint8 / 255"
    assert meta["metrics"]["test_accuracy"] == pytest.approx(ckpt["metrics"]["test_accuracy"])
    graph = onnx.load(str(result.out)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]  # dynamic batch axis
    # A model of non-hand images (MNIST) has no crop settings: null, read back as None.
    assert json.loads(onnx_export.onnx_metadata({**ckpt, "crop_settings": None})["crop_settings"]) is None


def test_export_leaves_the_model_as_it_was(checkpoints, tmp_path: Path) -> None:
    model, ckpt = load_model(checkpoints["single"])
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    onnx_export.export_model(model, onnx_export.onnx_metadata(ckpt), tmp_path / "m.onnx")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # batch-norm statistics too


def test_cli_writes_the_file(checkpoints, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    cmd = [sys.executable, "-m", "pipeline.export", "--model", str(checkpoints["single"]), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith(f"wrote {out}") and "fist, one, two, three, four, five" in lines[0]
    assert float(lines[-1].split("=")[1]) < 1e-5
    assert done.stderr.strip() == ""  # the exporter's own logging stays quiet


def test_cli_refuses_to_overwrite_and_bad_input_is_one_line(checkpoints, tmp_path: Path, capsys) -> None:
    from pipeline.export import main

    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep me")
    assert run_command(main, ["--model", str(checkpoints["single"]), "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {out}: exists; pass --force to replace it, or another --out"]
    assert run_command(main, ["--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such model file" in err[0]


def test_missing_onnx_is_one_clear_line(monkeypatch, checkpoints, tmp_path: Path, capsys) -> None:
    from pipeline.export import main

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(UserError, match=r"needs the 'onnx' package.*handcam\[export\]"):
        onnx_export.export_checkpoint(checkpoints["single"], tmp_path / "x.onnx")
    assert run_command(main, ["--model", str(checkpoints["single"]), "--out", str(tmp_path / "x.onnx")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: ONNX export needs the 'onnx' package, which is not installed; pip install \"handcam[export]\""]
    assert not (tmp_path / "x.onnx").exists()
