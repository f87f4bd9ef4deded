"""A landmark MLP baseline: the popular MediaPipe-gesture recipe, on the same data and splits as the CNN.

The recipe is the one of Kazuhito00/hand-gesture-recognition-using-mediapipe (``pre_process_landmark``
and its keypoint classifier): the 21 2D landmarks in frame pixels are made relative to the wrist,
flattened to 42 numbers (x0, y0, x1, y1, ...), divided by their largest absolute value, and fed to
``Dropout(0.2) -> Linear(42, 20) -> ReLU -> Dropout(0.4) -> Linear(20, 10) -> ReLU -> Linear(10, C)``.
It sees no pixels at all, so it tells how much of a task the hand's pose alone solves.

The popular recipe does not turn the hand upright, so a hand pointing sideways (a photo taken from above,
or turned) gives other features than the same hand upright. ``upright=True`` turns each hand's landmarks
as its crop is turned (:func:`pipeline.preprocess.crops.upright_turn`) before they are scaled, and with
``mirror="crops"`` the MLP sees each hand in the crop's own frame: the fair baseline for the CNN, next
to the popular one.

Training uses the CNN's :class:`~pipeline.training.loop.TrainConfig` and selection rule (AdamW, cosine
schedule, label smoothing, best validation accuracy with ties by lower loss, early stopping), seeded
the same way. There is no augmentation: image augmentation means nothing to landmarks, and the
popular recipe adds none (``config.augment`` is ignored).

:func:`~pipeline.training.loop.train_model` is not reused directly: it turns its inputs into floats
with ``/ 255`` and passes every batch through the image ``augment``, which needs (B, 1, S, S)
batches and zeroes negative values even with every augmentation off, so 42 signed features could
only go through it encoded as a fake image. A short loop with the same rule reads better.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.data.load import Dataset, landmarks_of
from pipeline.data.store import LANDMARK_COLUMNS
from pipeline.errors import UserError
from pipeline.files import atomic_path
from pipeline.preprocess.crops import looks_left, upright_turn
from pipeline.training.loop import EpochRecord, TrainConfig, accuracy, pick_device, predict_logits, seed_everything

if TYPE_CHECKING:  # run.py pulls in the report plotting; only its Split type is needed here
    from pipeline.training.run import Split

#: Which hands have their x flipped before the features are made. ``"none"`` is the popular recipe;
#: ``"crops"`` takes the decision the dataset's crops were made with (the index's ``mirrored``), so the
#: MLP sees hands exactly as mirrored as the CNN does; ``"chirality"`` and ``"handedness"`` apply that
#: crop rule (:func:`pipeline.preprocess.crops.mirrors`) to the stored landmarks.
MLP_MIRRORS = ("none", "crops", "chirality", "handedness")

#: Defaults for the MLP: the popular recipe's batch size (128), many cheap epochs, a patient stop. Picked
#: on validation accuracy (data/fingers and data/homes, seeds 0-2): the CNN's defaults (60 epochs) and the
#: recipe's own (lr 1e-3, patience 20) underfit this heavily dropped-out 1.1k-parameter net, or stop on
#: the noise of a 100-250 sample validation split (homes: 0.32-0.39 validation accuracy against 0.69).
LANDMARK_CONFIG = TrainConfig(epochs=500, batch_size=128, lr=3e-3, patience=100)


def landmark_features(landmarks: np.ndarray, mirror: np.ndarray | None = None, upright: bool = False) -> np.ndarray:
    """(N, 21, 2 or 3) frame-pixel landmarks -> (N, 42) float32 features: the popular recipe, or upright.

    Per sample: x and y relative to the wrist (landmark 0), flattened as x0, y0, x1, y1, ..., then
    divided by the largest absolute value (a sample whose values are all 0 stays 0). So the features
    do not change when the hand moves or is scaled uniformly in the frame; z is ignored.

    ``upright`` first turns each hand as a crop made with ``rotate`` (every shipped dataset's setting) is
    turned, wrist -> middle-finger base pointing up (not in the popular recipe), so the features do not
    change when the hand turns in the frame either; it turns them whatever the dataset's crops did.
    ``mirror`` (N,) bool then flips x of the marked samples (the popular recipe itself does not mirror);
    after the wrist is subtracted that only negates their x features.
    """
    marks = np.asarray(landmarks, np.float64)
    if marks.ndim != 3 or marks.shape[1] != 21 or marks.shape[2] not in (2, 3):
        raise ValueError(f"expected (N, 21, 2 or 3) landmarks, got shape {marks.shape}")
    xy = marks[:, :, :2] - marks[:, :1, :2]
    if upright:
        turns = np.stack([upright_turn(m) for m in marks]) if len(marks) else np.zeros((0, 2, 2))
        xy = np.einsum("nij,nkj->nki", turns, xy)  # each sample's points @ its R.T
    if mirror is not None:
        flip = np.asarray(mirror, bool)
        if flip.shape != (len(marks),):
            raise ValueError(f"mirror must be ({len(marks)},) bools, got shape {flip.shape}")
        xy[flip, :, 0] *= -1
    flat = xy.reshape(len(marks), 42)
    scale = np.abs(flat).max(1, keepdims=True)
    return (flat / np.where(scale > 0, scale, 1.0)).astype(np.float32)


def mirror_flags(data: Dataset, rule: str = "none") -> np.ndarray:
    """(N,) bool: the samples whose landmarks ``rule`` (one of :data:`MLP_MIRRORS`) mirrors."""
    if rule not in MLP_MIRRORS:
        raise UserError(f"unknown landmark mirror rule {rule!r}; choose one of {', '.join(MLP_MIRRORS)}")
    if rule == "none":
        return np.zeros(len(data), bool)
    if rule == "crops":
        return data.index["mirrored"].to_numpy().astype(bool)
    if rule == "handedness":
        return (data.index["handedness"] == "Left").to_numpy()
    return np.array([looks_left(m) for m in landmarks_of(data.index)], bool)


def dataset_features(data: Dataset, mirror: str = "none", upright: bool = False) -> torch.Tensor:
    """(N, 42) float32 features of every sample in ``data`` (see :func:`landmark_features`)."""
    if not set(LANDMARK_COLUMNS) <= set(data.index.columns):
        raise UserError(f"{data.root}: no hand landmarks (an imported image dataset?); the landmark MLP needs them")
    return torch.from_numpy(landmark_features(landmarks_of(data.index), mirror_flags(data, mirror), upright))


class LandmarkMLP(nn.Module):
    """The popular keypoint classifier: 42 features -> 20 -> 10 -> ``num_classes`` logits.

    ``mirror`` and ``upright`` record how its features were made, so prediction makes them the same way.
    """

    def __init__(self, num_classes: int, mirror: str = "none", upright: bool = False) -> None:
        super().__init__()
        self.num_classes, self.mirror, self.upright = num_classes, mirror, upright
        self.net = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(42, 20), nn.ReLU(),
            nn.Dropout(0.4), nn.Linear(20, 10), nn.ReLU(),
            nn.Linear(10, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 42) float features -> (B, num_classes) logits."""
        return self.net(x)

    def save(self, path: str | Path) -> None:
        """Write the weights and how the features are made (``mirror``, ``upright``) to ``path``, atomically."""
        with atomic_path(path) as tmp:
            torch.save({"state_dict": self.state_dict(), "num_classes": self.num_classes, "mirror": self.mirror,
                        "upright": self.upright}, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "LandmarkMLP":
        """A model written by :meth:`save`, in eval mode (a file from before ``upright`` was saved: not upright)."""
        saved = torch.load(path, weights_only=True)
        model = cls(saved["num_classes"], saved["mirror"], saved.get("upright", False))
        model.load_state_dict(saved["state_dict"])
        return model.eval()


def train_landmark_mlp(data: Dataset, split: Split, config: TrainConfig = LANDMARK_CONFIG, mirror: str = "none",
                       *, upright: bool = False, progress: bool = False) -> tuple[LandmarkMLP, list[EpochRecord]]:
    """Train a :class:`LandmarkMLP` on ``split.train``, keeping the epoch best on ``split.val``.

    Same rule as :func:`~pipeline.training.loop.train_model`: AdamW and a cosine schedule over
    ``config.epochs``, cross-entropy with ``config.label_smoothing``, best validation accuracy (ties by
    lower validation loss; without a validation split, the last epoch), stop after ``config.patience``
    epochs without a better one. Seeded by ``config.seed`` (weights, dropout, shuffling), so two runs
    give the same model. ``split.test`` is not touched. ``mirror`` and ``upright`` are as in
    :func:`landmark_features`. Returns the model (in eval mode) and the per-epoch records.
    """
    device = pick_device()
    with _one_cpu_thread(device):
        return _train(data, split, config, mirror, upright, progress, device)


@contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """On the CPU, train with one intra-op thread, then restore the setting.

    Batches of 128 x 42 gain nothing from more threads, and on a busy 2-core machine two threads made
    training ten times slower (83 s instead of 8 s on data/fingers); the numbers are the same either way.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train(data: Dataset, split: Split, config: TrainConfig, mirror: str, upright: bool, progress: bool,
           device: torch.device) -> tuple[LandmarkMLP, list[EpochRecord]]:
    from tqdm import tqdm

    features = dataset_features(data, mirror, upright)
    x_train, y_train = features[split.train].to(device), data.labels[split.train].to(device)
    x_val, y_val = features[split.val], data.labels[split.val]
    gen = seed_everything(config.seed)  # before the model: its initial weights are part of what a seed fixes
    model = LandmarkMLP(len(data.label_names), mirror, upright).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    history: list[EpochRecord] = []
    best_key, best_weights, stale = (-1.0, -float("inf")), copy.deepcopy(model.state_dict()), 0
    n = len(y_train)
    for epoch in tqdm(range(1, config.epochs + 1), desc="landmark MLP", unit="epoch", disable=not progress):
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        total_loss, correct = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            logits = model(x_train[idx])
            loss = F.cross_entropy(logits, y_train[idx], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y_train[idx]).sum())
        scheduler.step()
        val_logits = predict_logits(model, x_val)
        val_loss = float(F.cross_entropy(val_logits, y_val)) if len(y_val) else float("nan")
        record = EpochRecord(epoch, total_loss / n, correct / n, val_loss, accuracy(val_logits, y_val),
                             optimizer.param_groups[0]["lr"])
        history.append(record)
        if not len(y_val) or (record.val_acc, -record.val_loss) > best_key:
            best_key, best_weights, stale = (record.val_acc, -record.val_loss), copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    model.load_state_dict(best_weights)
    return model.eval(), history


def predict_landmark_mlp(model: LandmarkMLP, data: Dataset, indices: np.ndarray | None = None) -> torch.Tensor:
    """(len(indices), C) logits of ``model`` on ``data``'s samples at ``indices`` (all when None), on the CPU.

    The features are made as the model's were in training (``model.mirror``, ``model.upright``).
    """
    features = dataset_features(data, model.mirror, model.upright)
    return predict_logits(model, features if indices is None else features[np.asarray(indices, np.int64)])


def evaluate_landmark_mlp(data: Dataset, split: Split, config: TrainConfig = LANDMARK_CONFIG,
                          mirror: str = "none") -> dict:
    """Train on ``split`` and measure once on its test split: a row for a comparison table with the CNN.

    Keys: ``test_accuracy``, ``val_accuracy``, ``majority`` (the test share of the most common training
    class), ``best_epoch``, ``epochs`` (run), ``parameters``, ``seconds`` (training and prediction), and
    ``model`` (the trained :class:`LandmarkMLP`).
    """
    start = time.perf_counter()
    model, history = train_landmark_mlp(data, split, config, mirror)
    test_logits = predict_landmark_mlp(model, data, split.test)
    seconds = time.perf_counter() - start
    test_labels, train_labels = data.labels[split.test], data.labels[split.train]
    best = max(history, key=lambda r: (r.val_acc, -r.val_loss)) if len(split.val) else history[-1]
    majority_class = int(torch.bincount(train_labels).argmax())
    return {"test_accuracy": accuracy(test_logits, test_labels), "val_accuracy": best.val_acc,
            "majority": float((test_labels == majority_class).float().mean()), "best_epoch": best.epoch,
            "epochs": len(history), "parameters": sum(p.numel() for p in model.parameters()), "seconds": seconds,
            "model": model}
