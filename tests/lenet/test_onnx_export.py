"""ONNX export: ONNX Runtime's logits equal PyTorch's on real crops; metadata round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export is optional: pip install 'handcam[export]'")
pytest.importorskip("onnxscript", reason="ONNX export is optional: pip install 'handcam[export]'")
pytest.importorskip("onnxruntime", reason="the export check needs onnxruntime: pip install 'handcam[export]'")
import pipeline.lenet.onnx_export as onnx_export  # noqa: E402
from pipeline.lenet.checkpoint import load_model, read_checkpoint  # noqa: E402
from pipeline.lenet.model import predict_logits  # noqa: E402
from pipeline.preprocess.crops import CropSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"






@pytest.fixture(scope="module")
def exported(bn_checkpoints, tmp_path_factory) -> dict[str, tuple[Path, onnx_export.ExportResult]]:
    out = tmp_path_factory.mktemp("onnx")
    return {kind: (path, onnx_export.export_checkpoint(path, out / f"{kind}.onnx")) for kind, path in bn_checkpoints.items()}


@pytest.mark.parametrize("kind", ["single", "ensemble"])
def test_onnx_runtime_gives_the_pytorch_logits_on_real_crops(exported, fingers, kind: str) -> None:
    ckpt_path, result = exported[kind]
    model = load_model(ckpt_path).network
    assert result.members == (2 if kind == "ensemble" else 1)
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-5
    expected = predict_logits(model, fingers.images).numpy()  # all 1,609 crops in one dynamic batch
    got = onnx_export.onnxruntime_logits(result.out, fingers.images)
    assert got.shape == expected.shape == (len(fingers), 7)
    assert np.abs(got - expected).max() < 1e-5
    one = onnx_export.onnxruntime_logits(result.out, fingers.images[5:6])  # batch of one
    assert np.abs(one - expected[5:6]).max() < 1e-5
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_metadata_round_trips(exported, fingers) -> None:
    import onnx

    ckpt_path, result = exported["ensemble"]
    ckpt = read_checkpoint(ckpt_path)
    meta = onnx_export.read_onnx_metadata(result.out)
    assert meta["label_names"] == ["fist", "one", "two", "three", "four", "five", "none"] == result.labels
    assert CropSettings.from_dict(meta["crop_settings"]) == fingers.settings == load_model(ckpt_path).crop_settings
    assert meta["model_name"] == "lenet5-bn" and meta["members"] == 2
    assert meta["model_config"] == ckpt["model_config"]
    assert meta["input"]["shape"] == ["batch", 1, 28, 28] and meta["input"]["scale"] == "uint8 / 255"
    assert meta["metrics"]["test_accuracy"] == pytest.approx(ckpt["metrics"]["test_accuracy"])
    graph = onnx.load(str(result.out)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]  # dynamic batch axis
    # A model of non-hand images (MNIST) has no crop settings: null, read back as None.
    assert json.loads(onnx_export.onnx_metadata({**ckpt, "crop_settings": None})["crop_settings"]) is None


def test_export_leaves_the_model_as_it_was(bn_checkpoints, tmp_path: Path) -> None:
    loaded = load_model(bn_checkpoints["single"])
    model, ckpt = loaded.network, loaded.checkpoint
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    onnx_export.export_model(model, onnx_export.onnx_metadata(ckpt), tmp_path / "m.onnx")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # batch-norm statistics too
