"""ONNX export of a checkpoint: the model (or ensemble) with its labels and crop settings inside.

The exported graph is what :func:`pipeline.lenet.model.predict_logits` computes: input ``image``, a float32
``(batch, 1, S, S)`` tensor of crops scaled to [0, 1] (uint8 / 255; the normalisation is part of the
graph), output ``logits`` of shape ``(batch, classes)``. For an ensemble the output is the members'
mean log-probability, which argmax and softmax treat as logits. The batch axis is dynamic.

Everything a consumer needs to feed the model the crops it was trained on is stored as ONNX
``metadata_props`` (strings; JSON where structured): ``label_names``, ``crop_settings`` (``null``
for a model of non-hand images such as MNIST), ``model_name``, ``model_config``, ``members``,
``input``, ``output``, ``package_version``, ``metrics``. :func:`read_onnx_metadata` parses them back.

``onnx`` and ``onnxscript`` (the exporter of PyTorch >= 2.9) are optional: ``pip install "handcam[export]"``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline import __version__
from pipeline.errors import UserError
from pipeline.files import check_writable
from pipeline.lenet.checkpoint import Ensemble, load_model

INPUT, OUTPUT = "image", "logits"
#: Metadata keys whose values are JSON (the others are plain strings).
JSON_KEYS = ("label_names", "crop_settings", "model_config", "members", "input", "metrics")
INSTALL_HINT = 'pip install "handcam[export]"'


def require_onnx() -> None:
    """Raise a one-line :class:`UserError` naming the missing package if the exporter cannot run."""
    for package in ("onnx", "onnxscript"):
        try:
            __import__(package)
        except ImportError:
            raise UserError(f"ONNX export needs the '{package}' package, which is not installed; {INSTALL_HINT}") from None


def onnx_metadata(ckpt: dict) -> dict[str, str]:
    """The ``metadata_props`` written for a checkpoint (all values are strings)."""
    members = len(ckpt["members"])
    size = ckpt["model_config"].get("in_size", 28)
    return {
        "label_names": json.dumps(list(ckpt["label_names"])),
        "crop_settings": json.dumps(ckpt.get("crop_settings")),
        "model_name": str(ckpt.get("model_name", "")),
        "model_config": json.dumps(ckpt["model_config"]),
        "members": json.dumps(members),
        "input": json.dumps({"name": INPUT, "shape": ["batch", 1, size, size], "dtype": "float32",
                             "scale": "uint8 / 255", "range": [0.0, 1.0]}),
        "output": (f"{OUTPUT}: mean log-probability of {members} members (use as logits)" if members > 1
                   else f"{OUTPUT}: logits, one per label"),
        "package_version": str(ckpt.get("package_version", __version__)),
        "metrics": json.dumps({k: v for k, v in ckpt.get("metrics", {}).items()
                               if k in ("test_accuracy", "val_accuracy")}),
    }


def read_onnx_metadata(path: str | Path) -> dict:
    """The metadata of an exported file, JSON values parsed (``crop_settings`` is a dict or None)."""
    require_onnx()
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    return {k: json.loads(v) if k in JSON_KEYS else v for k, v in props.items()}


@dataclass
class ExportResult:
    """What :func:`export_checkpoint` wrote and, when ONNX Runtime is installed, how closely it matches."""

    out: Path
    bytes: int
    members: int
    labels: list[str]
    max_abs_diff: float | None  # ONNX Runtime vs PyTorch on a random batch; None without onnxruntime
    size: int = 28  # the input's side in pixels


def export_model(model: nn.Module, metadata: dict[str, str], out: str | Path, opset: int | None = None) -> Path:
    """Export ``model`` (a LeNet or an :class:`Ensemble`, in eval mode) to ``out``, atomically."""
    require_onnx()
    import onnx

    out = Path(out)
    size = model.config.in_size
    was_training = model.training
    model.eval()
    example = torch.rand(2, 1, size, size)
    batch = torch.export.Dim("batch", min=1)
    # The exporter logs its steps and warns about optional torchvision ops: keep the command quiet.
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [log.level for log in quiet]
    try:
        for log in quiet:
            log.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (example,), None, dynamo=True, input_names=[INPUT],
                                        output_names=[OUTPUT], dynamic_shapes=({0: batch},),
                                        opset_version=opset, verbose=False, report=False)
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)
        model.train(was_training)
    proto = program.model_proto
    proto.doc_string = f"handcam {metadata.get('model_name', '')}: hand-gesture classifier; see metadata_props"
    proto.producer_name = "handcam"
    proto.producer_version = __version__
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    os.replace(tmp, out)
    return out


def onnxruntime_logits(path: str | Path, images: torch.Tensor) -> np.ndarray:
    """Logits from ONNX Runtime (CPU) for uint8 or float images, as :func:`predict_logits` takes them."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"checking the export needs 'onnxruntime', which is not installed; {INSTALL_HINT}") from None
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: x.numpy()})[0]


def export_checkpoint(model_path: str | Path | None, out: str | Path, overwrite: bool = False,
                      opset: int | None = None, check: bool = True) -> ExportResult:
    """Export a checkpoint file (one model or an ensemble) to ONNX with its metadata.

    With ``check`` and ONNX Runtime installed, a random batch is run through both and the largest
    absolute logit difference is returned.
    """
    require_onnx()
    out = Path(out)
    if out.suffix.lower() != ".onnx":  # first: --force cannot mend this one
        raise UserError(f"{out}: the output should end in .onnx")
    if out.exists() and not overwrite:
        raise UserError(f"{out}: exists; pass --force to replace it, or another --out")
    check_writable(out.parent, "--out")
    loaded = load_model(model_path)
    model, ckpt = loaded.network, loaded.checkpoint
    export_model(model, onnx_metadata(ckpt), out, opset)
    diff = None
    if check:
        try:
            import onnxruntime  # noqa: F401  (only: is it installed?)
        except ImportError:
            pass
        else:
            size = model.config.in_size
            x = torch.rand(7, 1, size, size, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                expected = model(x).numpy()
            diff = float(np.abs(onnxruntime_logits(out, x) - expected).max())
    members = len(model.members) if isinstance(model, Ensemble) else 1
    return ExportResult(out, out.stat().st_size, members, list(ckpt["label_names"]), diff, model.config.in_size)
