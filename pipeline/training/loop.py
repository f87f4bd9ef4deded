"""The training loop: tensors in memory, batched augmentation, early stopping on validation.

Reads like pytorch/examples' MNIST script: shuffle, augment, step; evaluate; keep the best.
Selection uses the validation split only; the caller touches the test split once, at the end.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.lenet.model import accuracy, predict_logits, to_float
from pipeline.training.augment import NO_AUGMENT, AugmentConfig, augment


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    patience: int = 15  # epochs without a better validation score before stopping
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochRecord:
    """One row of ``metrics.csv``."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float


def pick_device() -> torch.device:
    """CUDA or Apple MPS when present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch and numpy; return the generator that drives shuffling and augmentation."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def train_model(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    config: TrainConfig = TrainConfig(),
    progress: bool = False,
    on_epoch=None,
    start_epoch: int = 0,
    state: dict | None = None,
) -> tuple[list[EpochRecord], dict]:
    """Train ``model`` in place on uint8 ``(images, labels)``; keep the weights best on validation.

    Returns the per-epoch records and the best state (``model`` is left holding it). ``state`` and
    ``start_epoch`` continue an interrupted run (see the checkpoint's ``resume`` entry);
    ``on_epoch(record, resume_state)`` is called after each epoch, e.g. to save a resumable state.
    """
    from tqdm import tqdm

    device = pick_device()
    model.to(device)
    gen = seed_everything(config.seed)
    x_train, y_train = to_float(train[0]), train[1]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    history: list[EpochRecord] = []
    best = {"val_acc": -1.0, "val_loss": float("inf"), "weights": copy.deepcopy(model.state_dict()), "epoch": 0}
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        best = state["best"]
        history = [EpochRecord(**r) for r in state["history"]]
    stale = len(history) - best["epoch"] if history else 0
    n = len(y_train)
    for epoch in range(start_epoch + 1, config.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        total_loss, correct = 0.0, 0
        bar = tqdm(range(0, n, config.batch_size), desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                   disable=not progress, leave=False)
        for start in bar:
            idx = order[start:start + config.batch_size]
            x = augment(x_train[idx], config.augment, gen).to(device)
            y = y_train[idx].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        scheduler.step()
        val_logits = predict_logits(model, val[0])
        val_loss = float(F.cross_entropy(val_logits, val[1])) if len(val[1]) else float("nan")
        record = EpochRecord(epoch, total_loss / n, correct / n, val_loss, accuracy(val_logits, val[1]),
                             optimizer.param_groups[0]["lr"])
        history.append(record)
        # Best = highest validation accuracy, ties broken by lower validation loss; without a
        # validation split, the last epoch.
        if not len(val[1]) or (record.val_acc, -record.val_loss) > (best["val_acc"], -best["val_loss"]):
            best = {"val_acc": record.val_acc, "val_loss": record.val_loss,
                    "weights": copy.deepcopy(model.state_dict()), "epoch": epoch}
            stale = 0
        else:
            stale += 1
        if on_epoch:
            on_epoch(record, {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                              "generator": gen.get_state(), "best": best,
                              "history": [asdict(r) for r in history], "epoch": epoch})
        if stale >= config.patience:
            break
    model.load_state_dict(best["weights"])
    return history, best


__all__ = ["NO_AUGMENT", "AugmentConfig", "EpochRecord", "TrainConfig", "accuracy", "pick_device",
           "predict_logits", "seed_everything", "to_float", "train_model"]
