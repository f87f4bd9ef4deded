"""Checkpoints: a plain dict that ``torch.load(path, weights_only=True)`` reads, and :func:`load_model`.

Keys: ``format``, ``package_version``, ``model_name``, ``model_config``, ``members`` (one state
dict per ensemble member; one for a single model), ``label_names``, ``crop_settings``, ``input``,
``metrics``, ``train_config``, ``data``. The crop settings travel with the weights, so evaluate
and demo always feed a model the crops it was trained on.

Every command loads a model the same way: :func:`load_model` returns a :class:`LoadedModel`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from pipeline import __version__
from pipeline.errors import UserError
from pipeline.files import write_failed
from pipeline.lenet.model import LeNet, LeNetConfig
from pipeline.preprocess.crops import CropSettings
from pipeline.resources import GESTURE_MODEL, asset

FORMAT = 1
#: The key of the crop settings, in checkpoints and in ``dataset.json`` alike.
CROP_KEY = "crop_settings"
#: The gesture model that evaluate, explain, export and the demo use when none is given (shipped in the package).
DEFAULT_MODEL = asset(GESTURE_MODEL)


class Ensemble(nn.Module):
    """Averages the log-probabilities of several models of one architecture (seeds).

    ``layer(name)`` is not defined: explain an ensemble through its ``members``.
    """

    def __init__(self, members: Sequence[LeNet]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = members[0].config
        self.register_buffer("temperature", torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Mean log-probability: a proper logit for argmax/softmax, and a sum of the members' scores.
        return torch.stack([m(x).log_softmax(1) for m in self.members]).mean(0) / self.temperature


def explained_module(model: nn.Module) -> nn.Module:
    """The network whose layers Grad-CAM hooks: the model, or an ensemble's first member."""
    return model.members[0] if isinstance(model, Ensemble) else model


def make_checkpoint(models: Sequence[LeNet], model_name: str, label_names: Sequence[str], crop: CropSettings | None,
                    metrics: dict | None = None, train_config: dict | None = None, data: dict | None = None,
                    temperature: float = 1.0) -> dict:
    """Build the checkpoint dict for one model or an ensemble of same-architecture models.

    ``crop`` is None for models of images that are not hand crops (MNIST, Sign-MNIST). The members
    are saved uncalibrated; ``temperature`` (fitted on validation) divides the whole model's logits.
    """
    return {
        "format": FORMAT,
        "package_version": __version__,
        "model_name": model_name,
        "model_config": models[0].config.to_dict(),
        "members": [{k: v.detach().cpu() for k, v in m.state_dict().items() if k != "temperature"} for m in models],
        "temperature": float(temperature),
        "label_names": list(label_names),
        CROP_KEY: crop.to_dict() if crop else None,
        "input": {"scale": "uint8 / 255", "mean": models[0].config.mean, "std": models[0].config.std},
        "metrics": metrics or {},
        "train_config": train_config or {},
        "data": data or {},
    }


def save_checkpoint(checkpoint: dict, path: str | Path) -> None:
    """Write atomically: a crash or a full disk mid-save never leaves a half checkpoint, or its temporary file.

    A failed write is one :class:`UserError` naming the file (torch reports a full disk from C++).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(checkpoint, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        tmp.unlink(missing_ok=True)
        raise UserError(write_failed(path, e)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_checkpoint(path: str | Path | None = None) -> dict:
    """Load a checkpoint dict (default: the shipped gesture model), with one clear line for each problem."""
    path = Path(path) if path else DEFAULT_MODEL
    if not path.is_file():
        raise UserError(f"{path}: no such model file; train one with 'python -m pipeline.train' or pass --model PATH")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a non-checkpoint file
        raise UserError(f"{path}: not a checkpoint of this package ({type(e).__name__}); pass a .pt file written by pipeline.train") from None
    if not isinstance(ckpt, dict) or "members" not in ckpt or "model_config" not in ckpt:
        raise UserError(f"{path}: not a checkpoint of this package (no model_config/members); pass a .pt file written by pipeline.train")
    if ckpt.get("format", 0) > FORMAT:
        raise UserError(f"{path}: checkpoint format {ckpt['format']} is newer than this package knows ({FORMAT}); upgrade it")
    return ckpt


def build_from_checkpoint(ckpt: dict, where: str = "checkpoint") -> nn.Module:
    """The model (or :class:`Ensemble`) a checkpoint describes, with its weights, in eval mode."""
    config = LeNetConfig.from_dict(ckpt["model_config"])
    if config.num_classes != len(ckpt["label_names"]):
        raise UserError(f"{where}: {config.num_classes} outputs but {len(ckpt['label_names'])} label names; the file is inconsistent")
    members = []
    for state in ckpt["members"]:
        model = LeNet(config)
        state = {**state, "temperature": torch.tensor(1.0)}  # members are stored uncalibrated
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise UserError(f"{where}: weights do not fit model {ckpt.get('model_name')!r} ({first})") from None
        members.append(model.eval())
    model = members[0] if len(members) == 1 else Ensemble(members)
    model.temperature.fill_(float(ckpt.get("temperature", 1.0)))
    return model.eval()


@dataclass
class LoadedModel:
    """A gesture model as every command uses it.

    Attributes:
        network: the LeNet (or :class:`Ensemble`), in eval mode.
        labels: the class names, in output order.
        crop_settings: the crop settings it was trained on; None for a model of other images (MNIST).
        path: the file it came from.
        checkpoint: the whole checkpoint dict (model name, metrics, data, training recipe, ...).
    """

    network: nn.Module
    labels: list[str]
    crop_settings: CropSettings | None
    path: Path
    checkpoint: dict

    @property
    def explained(self) -> LeNet:
        """The network whose layers Grad-CAM hooks (an ensemble's first member)."""
        return explained_module(self.network)

    @property
    def name(self) -> str:
        return str(self.checkpoint.get("model_name", ""))

    @property
    def short_name(self) -> str:
        """What output folders are named after: ``shipped-STEM`` for a model the package ships (so that it never
        shares a folder with a user's ``runs/fingers``), the run folder for a ``runs/NAME/model.pt``, else the
        file's stem."""
        if self.path.resolve().parent == asset(GESTURE_MODEL).resolve().parent:
            return f"shipped-{self.path.stem}"
        return self.path.parent.name if self.path.name == "model.pt" and self.path.parent.name else self.path.stem

    def require_hand_crops(self) -> CropSettings:
        """The crop settings; a model not trained on hand crops is refused with one line."""
        if self.crop_settings is None:
            trained_on = self.checkpoint.get("data", {}).get("path", "other images")
            raise UserError(f"{self.path}: this model was trained on {trained_on}, not on hand crops; "
                            "pass a model trained on a dataset from pipeline.collect")
        return self.crop_settings

    def data_paths(self, base: str | Path = ".") -> list[Path]:
        """The datasets the model was trained on, as its checkpoint records them; a relative path is taken
        from ``base`` (the folder the run was made in: for the shipped model, the repository root)."""
        data = self.checkpoint.get("data", {})
        paths = data.get("spec", {}).get("paths") or [p.strip() for p in str(data.get("path", "")).split(",") if p.strip()]
        return [Path(p) if Path(p).is_absolute() else Path(base) / p for p in paths]

    def split_groups(self) -> dict[str, list[str]]:
        """The groups of its train, val and test splits (empty when the checkpoint does not record them)."""
        return self.checkpoint.get("data", {}).get("split_groups", {})

    def check_fits(self, images: torch.Tensor, hand_crops: bool, where: str | Path) -> None:
        """Refuse, with one line, images the model was not trained on: hand crops for a model of digits, digits
        for a model of hands, or another image size."""
        if hand_crops:
            self.require_hand_crops()
        elif self.crop_settings is not None:
            raise UserError(f"{self.path}: this model was trained on hand crops, not on the images of {where}; "
                            "pass a model trained on them")
        size = self.explained.config.in_size
        if images.shape[-1] != size:
            raise UserError(f"{where}: images of {images.shape[-1]} px, but {self.path} takes {size} px; "
                            "pass a model trained on this data")


def load_model(path: str | Path | None = None) -> LoadedModel:
    """Read a checkpoint (default: the shipped gesture model) and build its model."""
    path = Path(path) if path else DEFAULT_MODEL
    ckpt = read_checkpoint(path)
    saved = ckpt.get(CROP_KEY)
    crop = CropSettings.from_dict(saved, f"{path}: crop settings") if saved else None
    return LoadedModel(build_from_checkpoint(ckpt, str(path)), list(ckpt["label_names"]), crop, path, ckpt)
