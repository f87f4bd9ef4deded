"""A training run from dataset to ``runs/NAME/``: split, train (one seed or an ensemble), report.

Outputs: ``model.pt`` (checkpoint), ``metrics.csv`` (per epoch and member), ``curves.png``,
``confusion.png`` (test split), ``per_class.csv``, ``summary.json``. ``resume.pt`` holds the state
of an unfinished member, so ``--resume`` continues where a run stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pipeline.data.load import Dataset
from pipeline.data.spec import DataSpec
from pipeline.data.splits import split_by_group, split_by_named_groups
from pipeline.errors import UserError
from pipeline.files import atomic_write_text, check_writable, display_path
from pipeline.labels import NONE_LABEL
from pipeline.lenet.checkpoint import make_checkpoint, save_checkpoint
from pipeline.lenet.model import LeNet, build_model, count_macs, count_parameters
from pipeline.training.calibration import answers, fit_temperature, none_scores, plot_reliability, reliability
from pipeline.training.finger_poses import none_poses, pose_copies, style_poses
from pipeline.training.loop import EpochRecord, TrainConfig, accuracy, predict_logits, to_float, train_model
from pipeline.training.reports import confusion, per_class_table, plot_confusion, plot_curves


@dataclass
class Split:
    """Indices of the three splits and the groups in each."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def groups(self, data: Dataset) -> dict[str, list[str]]:
        return {name: sorted(set(data.groups[idx].tolist())) for name, idx in asdict(self).items()}


def make_split(data: Dataset, val_groups: list[str] | None = None, test_groups: list[str] | None = None,
               seed: int = 0) -> Split:
    """Split by group: named groups if given, MNIST's own train/test, else :func:`split_by_group`."""
    check_trainable(data)
    if test_groups or val_groups:
        parts = split_by_named_groups(data.groups, val_groups or [], test_groups or [])
    elif set(data.groups.tolist()) == {"train", "test"}:
        # MNIST: the official test set; validation is a seeded 10 % of the training digits.
        train = np.flatnonzero(data.groups == "train")
        rng = np.random.default_rng(seed)
        val = np.sort(rng.choice(train, size=len(train) // 10, replace=False))
        parts = (np.setdiff1d(train, val), val, np.flatnonzero(data.groups == "test"))
    else:
        parts = split_by_group(data.groups, data.labels.numpy(), seed=seed)
    split = Split(*parts)
    for name, idx in asdict(split).items():
        if len(idx) == 0:
            raise UserError(f"the {name} split is empty; record more sessions or name other groups")
    if len(np.unique(data.labels[torch.from_numpy(split.train)].numpy())) < 2:
        raise UserError("the training split holds only one class; a classifier needs at least two")
    return split


def check_trainable(data: Dataset) -> None:
    """Refuse an empty dataset or one with a single class, with one clear line."""
    if len(data) == 0:
        raise UserError(f"{data.root}: dataset is empty; collect some samples first")
    present = np.unique(data.labels.numpy())
    if len(present) < 2:
        raise UserError(f"{data.root}: only one class ({data.label_names[present[0]]}); record at least two gestures")


@dataclass
class RunResult:
    """What a run measured."""

    out: Path
    test_accuracy: float
    val_accuracy: float
    member_test_accuracy: list[float]
    epochs: list[int]
    parameters: int
    macs: int
    seconds: float


def train_run(data: Dataset, model_name: str, out: str | Path, config: TrainConfig = TrainConfig(),
              members: int = 1, split: Split | None = None, resume: bool = False, progress: bool = True,
              log: Callable[[str], None] = print, data_spec: DataSpec | None = None, force: bool = False,
              model_overrides: dict | None = None,
              on_epoch: Callable[[int, EpochRecord], None] | None = None) -> RunResult:
    """Train ``members`` models (seeds ``config.seed``, ``+1``, ...) and write the run folder.

    With several members the checkpoint is an ensemble (mean log-probabilities). Selection uses
    validation only; the test split is predicted once, at the end. ``run.json`` records what the
    run is (data, labels, crop settings, model, recipe, split); ``resume`` continues an interrupted
    run only if all of that agrees, and a finished run is replaced only with ``force``.
    ``model_overrides`` change the named variant's :class:`~pipeline.lenet.model.LeNetConfig` (for
    example ``{"zero_background": True}``); they are part of the recipe. ``on_epoch(member, record)`` is
    called after every epoch (the studio shows it).
    """
    out = Path(out)
    check_trainable(data)
    split = split or make_split(data, seed=config.seed)
    recipe = run_recipe(data, model_name, config, members, split, data_spec)
    if model_overrides:
        recipe["model_overrides"] = dict(model_overrides)
    prepare_folder(out, recipe, resume, force)
    names = sorted(set(data.index["dataset"])) if "dataset" in data.index else [display_path(data.root)]
    groups = split.groups(data)
    log(f"data {', '.join(names)}: {len(data)} samples, {len(data.label_names)} classes; split by group: "
        + ", ".join(f"{part} {len(getattr(split, part))} samples ({len(groups[part])} groups)" for part in ("train", "val", "test")))
    start = time.perf_counter()
    mean, std = input_normalisation(data.images[split.train])
    trained = [train_member(data, split, model_name, config, k, mean, std, out, resume, progress, log, model_overrides,
                            on_epoch) for k in range(members)]
    models = [m.model for m in trained]
    val = predict_split(models, data, split.val)
    temperature = fit_temperature(val.log_probs, val.labels)  # on validation: the test split stays untouched
    test = predict_split(models, data, split.test, temperature)  # the test split, touched once
    seconds = time.perf_counter() - start
    metrics = {"test_accuracy": test.accuracy, "val_accuracy": val.accuracy,
               "member_test_accuracy": test.member_accuracy, "epochs": [m.best_epoch for m in trained],
               "seconds": seconds, "temperature": temperature, **calibration_metrics(data, val, test, temperature)}
    names = sorted(set(data.index["dataset"])) if "dataset" in data.index else [display_path(data.root)]
    about = {"path": ", ".join(data_spec.describe(absolute=False)["paths"]) if data_spec else display_path(data.root),
             "datasets": names, "n": len(data), "split_groups": split.groups(data),
             **({"spec": data_spec.describe(absolute=False)} if data_spec else {})}
    checkpoint = make_checkpoint(models, model_name, data.label_names, data.settings, metrics,
                                 {**config.to_dict(), "members": members}, about, temperature)
    save_checkpoint(checkpoint, out / "model.pt")
    for k in range(members):
        (out / f"member{k}.pt").unlink(missing_ok=True)
    report = write_reports(out, data, model_name, [row for m in trained for row in m.history], test, temperature)
    params, macs = count_parameters(models[0]), count_macs(models[0])
    atomic_write_text(out / "summary.json", json.dumps({**metrics, "model": model_name, "parameters": params,
                                                        "macs": macs, "data": about}, indent=2) + "\n")
    log(report.to_string(float_format=lambda v: f"{v:.3f}"))
    log(f"model {model_name}: {params} parameters, {macs} multiply-adds; {members} member(s); {seconds:.0f} s")
    log(f"calibration: temperature {temperature:.2f} (fitted on validation); test ECE {metrics['test_ece_raw']:.3f} -> "
        f"{metrics['test_ece']:.3f}" + (f"; negatives answered with a gesture at p >= {THRESHOLD:g}: "
                                         f"{metrics['false_positive_rate']:.3f}" if "false_positive_rate" in metrics else ""))
    log(f"wrote {out}/model.pt, metrics.csv, curves.png, confusion.png, reliability.png, per_class.csv")
    log(f"val_accuracy={val.accuracy:.4f}")
    log(f"test_accuracy={test.accuracy:.4f}")
    return RunResult(out, test.accuracy, val.accuracy, test.member_accuracy, metrics["epochs"], params, macs, seconds)


#: What a run folder holds (what ``force`` replaces): the run's own files, nothing else of the folder.
RUN_FILES = ("model.pt", "run.json", "metrics.csv", "curves.png", "confusion.png", "reliability.png", "per_class.csv",
             "summary.json")


def run_recipe(data: Dataset, model_name: str, config: TrainConfig, members: int, split: Split,
               data_spec: DataSpec | None) -> dict:
    """What makes a run the run it is; a resume must agree with it in every entry."""
    return {"model": model_name, "members": members, "labels": list(data.label_names),
            "crop_settings": data.settings.to_dict() if data.settings else None,
            "data": data_spec.describe() if data_spec else {"root": str(Path(data.root).resolve()), "n": len(data)},
            "train": config.to_dict(), "split_groups": split.groups(data)}


def check_run_folder(out: Path, resume: bool, force: bool = False) -> None:
    """The checks of a run folder that need no data, so that a command can make them before it loads any: a
    file is refused, a finished run unless ``force``, and a folder that is not empty unless it holds a run to
    ``resume`` (or ``force``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a folder; choose another --out")
    if (out / "model.pt").exists() and not force:
        raise UserError(f"{out}: a finished run is already there; choose another --out, or pass --force to replace it "
                        "(runs are never overwritten otherwise)")
    record = (out / "run.json").is_file()
    if not force and not (resume and record) and out.exists() and any(out.iterdir()):
        if record:
            raise UserError(f"{out}: holds an unfinished run; pass --resume to continue it, or choose another --out")
        raise UserError(f"{out}: folder exists, is not empty and holds no run{' to resume' if resume else ''}; "
                        "choose another --out, or empty it")


def prepare_folder(out: Path, recipe: dict, resume: bool, force: bool = False) -> None:
    """Create the run folder and write ``run.json``, or check a resumed one against it (one line on any mismatch).

    What :func:`check_run_folder` refuses is refused; with ``force`` a finished run's files are removed first.
    """
    check_run_folder(out, resume, force)
    record = out / "run.json"
    if force:
        for name in (*RUN_FILES, *(p.name for p in out.glob("member*.pt")), *(p.name for p in out.glob("resume*.pt"))):
            (out / name).unlink(missing_ok=True)
    elif resume and record.is_file():
        saved = json.loads(record.read_text())
        differ = sorted(k for k in recipe if saved.get(k) != recipe[k])
        if differ:
            raise UserError(f"{out} holds a run with another {', '.join(differ)}; resume it with the command that "
                            "started it, or train this one in another --out")
    check_writable(out, "--out")
    if not record.is_file():
        atomic_write_text(record, json.dumps(recipe, indent=2) + "\n")


def input_normalisation(images: torch.Tensor) -> tuple[float, float]:
    """Mean and sd of the training pixels in [0, 1]: the model's built-in input normalisation."""
    pixels = to_float(images)
    return float(pixels.mean()), float(pixels.std())


@dataclass
class Member:
    """One trained member of a run: the model (best validation epoch), its epoch rows, that epoch."""

    model: LeNet
    history: list[dict]
    best_epoch: int


def train_member(data: Dataset, split: Split, model_name: str, config: TrainConfig, k: int, mean: float, std: float,
                 out: Path, resume: bool, progress: bool, log: Callable[[str], None],
                 overrides: dict | None = None, on_epoch: Callable[[int, EpochRecord], None] | None = None) -> Member:
    """Train member ``k`` (seed ``config.seed + k``), continuing from ``resume{k}.pt`` or loading ``member{k}.pt``.

    ``resume{k}.pt`` is written after every epoch; ``member{k}.pt`` once the member is done, so an
    interrupted ensemble does not train its finished members again.
    """
    seed = config.seed + k
    member_file, resume_file = out / f"member{k}.pt", out / f"resume{k}.pt"
    torch.manual_seed(seed)  # the initial weights are part of what a seed fixes
    model = build_model(model_name, len(data.label_names), **{"mean": mean, "std": std, **(overrides or {})})
    if member_file.exists():  # finished before an interruption
        saved = torch.load(member_file, weights_only=True)
        model.load_state_dict(saved["weights"])
        log(f"member {k}: already trained, loaded")
        return Member(model.eval(), saved["history"], saved["epochs"])
    state, start_epoch = None, 0
    if resume and resume_file.exists():
        saved = torch.load(resume_file, weights_only=True)
        model.load_state_dict(saved["weights"])
        state, start_epoch = saved["state"], saved["state"]["epoch"]
        log(f"member {k}: resuming after epoch {start_epoch}")

    def save_resume(record, train_state) -> None:
        save_checkpoint({"weights": model.state_dict(), "state": train_state}, resume_file)
        log(f"member {k} epoch {record.epoch}/{config.epochs}: train loss {record.train_loss:.3f} acc {record.train_acc:.3f}, "
            f"val loss {record.val_loss:.3f} acc {record.val_acc:.3f}")
        if on_epoch is not None:
            on_epoch(k, record)

    train, val = split_tensors(data, split.train), split_tensors(data, split.val)
    copies = pose_copies(data, split.train, config.augment, seed)  # drawn again per member: each its own poses
    if copies is not None:
        train = (torch.cat([train[0], copies]), train[1].repeat(1 + config.augment.pose_copies))
    crops = len(train[0])  # the drawn hands' shares are of the training crops and their copies
    nones = none_poses(data, split.train, round(config.augment.none_poses * crops), seed, config.augment.none_circles,
                       config.augment.none_tilt_deg)
    if nones is not None:
        none = torch.full((len(nones),), data.label_names.index(NONE_LABEL), dtype=train[1].dtype)
        train = (torch.cat([train[0], nones]), torch.cat([train[1], none]))
    styles = style_poses(data, split.train, round(config.augment.style_poses * crops), seed, config.augment.none_tilt_deg)
    if styles is not None:
        train = (torch.cat([train[0], styles[0]]), torch.cat([train[1], styles[1].to(train[1].dtype)]))
    history, best = train_model(model, train, val, replace(config, seed=seed), progress=progress,
                                on_epoch=save_resume, start_epoch=start_epoch, state=state)
    rows = [{"member": k, **asdict(r)} for r in history]
    save_checkpoint({"weights": model.state_dict(), "history": rows, "epochs": best["epoch"]}, member_file)
    resume_file.unlink(missing_ok=True)
    log(f"member {k} (seed {seed}): best val acc {best['val_acc']:.3f} at epoch {best['epoch']}")
    return Member(model.eval(), rows, best["epoch"])


def split_tensors(data: Dataset, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` of one split."""
    return data.images[indices], data.labels[indices]


@dataclass
class Predictions:
    """A run's members on one split: the mean log-probabilities, the true labels, and the accuracies."""

    log_probs: torch.Tensor
    labels: torch.Tensor
    accuracy: float
    member_accuracy: list[float]


def predict_split(models: list[LeNet], data: Dataset, indices: np.ndarray, temperature: float = 1.0) -> Predictions:
    """Every member on one split; an ensemble's answer is its members' mean log-probability, divided by the
    run's ``temperature`` (a division does not change the top class, only the confidence)."""
    images, labels = split_tensors(data, indices)
    member_logits = [predict_logits(m, images) for m in models]
    mean_logp = torch.stack([lg.log_softmax(1) for lg in member_logits]).mean(0) / temperature
    return Predictions(mean_logp, labels, accuracy(mean_logp, labels), [accuracy(lg, labels) for lg in member_logits])


#: The confidence the demo needs to show a gesture (``--threshold``'s default): what the none figures assume.
THRESHOLD = 0.5


def calibration_metrics(data: Dataset, val: Predictions, test: Predictions, temperature: float) -> dict[str, float]:
    """Expected calibration error on test before and after the temperature, and the ``none`` scores at the
    demo's default threshold."""
    raw = (test.log_probs * temperature).softmax(1).numpy()
    calibrated = test.log_probs.softmax(1).numpy()
    truth = test.labels.numpy()
    shown = answers(calibrated, data.label_names, THRESHOLD)
    return {"test_ece_raw": reliability(raw, truth)[3], "test_ece": reliability(calibrated, truth)[3],
            **none_scores(shown, truth, data.label_names)}


def write_reports(out: Path, data: Dataset, model_name: str, rows: list[dict], test: Predictions,
                  temperature: float = 1.0) -> "pd.DataFrame":  # noqa: F821
    """``metrics.csv``, ``curves.png``, ``confusion.png``, ``reliability.png`` and ``per_class.csv``; returns the
    per-class table."""
    import pandas as pd

    table = pd.DataFrame(rows)
    atomic_write_text(out / "metrics.csv", table.to_csv(index=False))
    plot_curves(table[table["member"] == 0], out / "curves.png", f"{model_name} on {Path(data.root).name} (member 0)")
    matrix = confusion(test.labels.numpy(), test.log_probs.argmax(1).numpy(), len(data.label_names))
    truth = test.labels.numpy()
    plot_reliability({"as trained": ((test.log_probs * temperature).softmax(1).numpy(), truth),
                      f"temperature {temperature:.2f}": (test.log_probs.softmax(1).numpy(), truth)},
                     out / "reliability.png", f"test split, {len(truth)} crops (temperature fitted on validation)")
    plot_confusion(matrix, data.label_names, out / "confusion.png", f"test split, accuracy {test.accuracy:.3f}")
    report = per_class_table(matrix, data.label_names)
    atomic_write_text(out / "per_class.csv", report.to_csv(float_format="%.4f"))
    return report
