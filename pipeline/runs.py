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

import numpy as np
import torch

from .checkpoint import make_checkpoint, save_checkpoint
from .data import Dataset, split_by_group, split_by_named_groups
from .errors import UserError
from .models import LeNet, build_model, count_macs, count_parameters
from .reports import confusion, per_class_table, plot_confusion, plot_curves
from .training import TrainConfig, accuracy, predict_logits, to_float, train_model


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
              log=print) -> RunResult:
    """Train ``members`` models (seeds ``config.seed``, ``+1``, ...) and write the run folder.

    With several members the checkpoint is an ensemble (mean log-probabilities). Selection uses
    validation only; the test split is predicted once, at the end.
    """
    import pandas as pd

    out = Path(out)
    check_trainable(data)
    if (out / "model.pt").exists() and not resume:
        raise UserError(f"{out}: a finished run is already there; choose another --out (runs are never overwritten)")
    if out.exists() and any(out.iterdir()) and not resume:
        raise UserError(f"{out}: folder exists and is not empty; pass --resume to continue that run, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    split = split or make_split(data, seed=config.seed)
    train_x, train_y = data.images[split.train], data.labels[split.train]
    val_x, val_y = data.images[split.val], data.labels[split.val]
    pixels = to_float(train_x)
    mean, std = float(pixels.mean()), float(pixels.std())
    log(f"data {_shown(data.root)}: {len(data)} samples, {len(data.label_names)} classes; "
        f"split by group: train {len(split.train)}, val {len(split.val)}, test {len(split.test)}")
    start = time.perf_counter()
    models: list[LeNet] = []
    rows: list[dict] = []
    epochs: list[int] = []
    for k in range(members):
        seed = config.seed + k
        member_file = out / f"member{k}.pt"
        torch.manual_seed(seed)  # the initial weights are part of what a seed fixes
        model = build_model(model_name, len(data.label_names), mean=mean, std=std)
        if member_file.exists():  # finished before an interruption
            saved = torch.load(member_file, weights_only=True)
            model.load_state_dict(saved["weights"])
            rows += saved["history"]
            epochs.append(saved["epochs"])
            models.append(model.eval())
            log(f"member {k}: already trained, loaded")
            continue
        state, start_epoch = None, 0
        resume_file = out / f"resume{k}.pt"
        if resume and resume_file.exists():
            saved = torch.load(resume_file, weights_only=True)
            model.load_state_dict(saved["weights"])
            state, start_epoch = saved["state"], saved["state"]["epoch"]
            log(f"member {k}: resuming after epoch {start_epoch}")

        def save_resume(record, train_state, model=model, resume_file=resume_file) -> None:
            tmp = resume_file.with_suffix(".tmp")
            torch.save({"weights": model.state_dict(), "state": train_state}, tmp)
            tmp.replace(resume_file)

        history, best = train_model(model, (train_x, train_y), (val_x, val_y), replace(config, seed=seed),
                                    progress=progress, on_epoch=save_resume, start_epoch=start_epoch, state=state)
        member_rows = [{"member": k, **asdict(r)} for r in history]
        torch.save({"weights": model.state_dict(), "history": member_rows, "epochs": best["epoch"]}, member_file)
        resume_file.unlink(missing_ok=True)
        rows += member_rows
        epochs.append(best["epoch"])
        models.append(model.eval())
        log(f"member {k} (seed {seed}): best val acc {best['val_acc']:.3f} at epoch {best['epoch']}")

    ckpt_data = {"path": _shown(data.root), "n": len(data), "split_groups": split.groups(data)}
    # The test split, touched once.
    member_logits = [predict_logits(m, data.images[split.test]) for m in models]
    test_y = data.labels[split.test]
    member_acc = [accuracy(lg, test_y) for lg in member_logits]
    mean_logp = torch.stack([lg.log_softmax(1) for lg in member_logits]).mean(0)
    test_acc = accuracy(mean_logp, test_y)
    val_logp = torch.stack([predict_logits(m, val_x).log_softmax(1) for m in models]).mean(0)
    val_acc = accuracy(val_logp, val_y)
    seconds = time.perf_counter() - start
    metrics = {"test_accuracy": test_acc, "val_accuracy": val_acc, "member_test_accuracy": member_acc,
               "epochs": epochs, "seconds": seconds}
    ckpt = make_checkpoint(models, model_name, data.label_names, data.settings, metrics,
                           {**config.to_dict(), "members": members}, ckpt_data)
    save_checkpoint(ckpt, out / "model.pt")
    for k in range(members):
        (out / f"member{k}.pt").unlink(missing_ok=True)

    table = pd.DataFrame(rows)
    table.to_csv(out / "metrics.csv", index=False)
    plot_curves(table[table["member"] == 0], out / "curves.png", f"{model_name} on {Path(data.root).name} (member 0)")
    matrix = confusion(test_y.numpy(), mean_logp.argmax(1).numpy(), len(data.label_names))
    plot_confusion(matrix, data.label_names, out / "confusion.png", f"test split, accuracy {test_acc:.3f}")
    report = per_class_table(matrix, data.label_names)
    report.to_csv(out / "per_class.csv", float_format="%.4f")
    params, macs = count_parameters(models[0]), count_macs(models[0])
    (out / "summary.json").write_text(json.dumps({**metrics, "model": model_name, "parameters": params,
                                                  "macs": macs, "data": ckpt_data}, indent=2) + "\n")
    log(report.to_string(float_format=lambda v: f"{v:.3f}"))
    log(f"model {model_name}: {params} parameters, {macs} multiply-adds; {members} member(s); {seconds:.0f} s")
    log(f"wrote {out}/model.pt, metrics.csv, curves.png, confusion.png, per_class.csv")
    log(f"val_accuracy={val_acc:.4f}")
    log(f"test_accuracy={test_acc:.4f}")
    return RunResult(out, test_acc, val_acc, member_acc, epochs, params, macs, seconds)


def _shown(path: Path) -> str:
    """A path relative to the working folder when it lies inside it (checkpoints travel)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)
