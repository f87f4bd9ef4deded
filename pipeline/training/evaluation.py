"""Evaluate a checkpoint on labelled photos (or videos) through the whole path.

photo -> MediaPipe -> crop (with the checkpoint's own crop settings) -> model. With several hands in
a photo, the largest is the subject. Photos without a hand are counted apart, not as errors.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.lenet.checkpoint import LoadedModel
from pipeline.lenet.model import predict_logits
from pipeline.preprocess.crops import CropSettings
from pipeline.preprocess.photo_folders import Task, detect_files, scan
from pipeline.training.reports import confusion, per_class_table


@dataclass
class Evaluation:
    """Results of :func:`evaluate_folder`."""

    label_names: list[str]
    true: np.ndarray  # label index per evaluated sample
    predicted: np.ndarray
    probabilities: np.ndarray
    sources: list[str]
    no_hand: Counter = field(default_factory=Counter)  # per label
    unreadable: Counter = field(default_factory=Counter)
    skipped_labels: dict[str, int] = field(default_factory=dict)  # folder labels the model does not know

    @property
    def accuracy(self) -> float:
        return float((self.true == self.predicted).mean()) if len(self.true) else float("nan")

    def matrix(self) -> np.ndarray:
        return confusion(self.true, self.predicted, len(self.label_names))

    def table(self) -> "pd.DataFrame":  # noqa: F821
        table = per_class_table(self.matrix(), self.label_names)
        table["no_hand"] = [self.no_hand.get(n, 0) for n in self.label_names]
        return table


@dataclass
class SubjectCrops:
    """The subject's crop of each photo (or video frame) under ``DIR/LABEL/``: see :func:`subject_crops`."""

    images: torch.Tensor  # (N, 1, S, S) uint8
    labels: list[str]  # the folder label of each crop
    sources: list[str]  # file (and ``#frame`` for a video frame) relative to the folder
    no_hand: Counter = field(default_factory=Counter)  # per label: photos/frames where no hand was found
    unreadable: Counter = field(default_factory=Counter)  # per label: files that could not be read


def subject_crops(tasks: list[Task], settings: CropSettings, workers: int = 1, hand_model: str | None = None,
                  num_hands: int = 2, stride: int = 5, progress: bool = True, desc: str = "hands") -> SubjectCrops:
    """Photos (or every ``stride``-th video frame) through MediaPipe and the crop stage; the largest hand
    of each is the subject. ``tasks`` come from :func:`pipeline.preprocess.photo_folders.scan`."""
    from tqdm import tqdm

    crops, labels, sources = [], [], []
    no_hand, unreadable = Counter(), Counter()
    for result in tqdm(detect_files(tasks, settings, workers, hand_model, num_hands, stride), total=len(tasks),
                       desc=desc, unit="file", disable=not progress):
        label = result.task.label
        if result.error:
            unreadable[label] += 1
        for frame, _ms, _size, found in result.frames:
            if not found:
                no_hand[label] += 1
                continue
            _hand, crop = max(found, key=lambda hc: hc[0].area())  # the subject: the largest hand
            crops.append(crop.image)
            labels.append(label)
            sources.append(f"{result.task.relative}" + (f"#{frame}" if frame else ""))
    size = settings.size
    images = torch.from_numpy(np.stack(crops)).unsqueeze(1) if crops else torch.zeros((0, 1, size, size), torch.uint8)
    return SubjectCrops(images, labels, sources, no_hand, unreadable)


def evaluate_folder(model: LoadedModel, folder: str | Path, workers: int = 1, hand_model: str | None = None,
                    num_hands: int = 2, stride: int = 5, progress: bool = True) -> Evaluation:
    """Run ``model`` on ``folder/LABEL/*`` (photos, or videos every ``stride``-th frame), with its own crop settings."""
    settings, label_names = model.require_hand_crops(), model.labels
    tasks = scan(folder)
    known = {name: i for i, name in enumerate(label_names)}
    skipped = Counter(t.label for t in tasks if t.label not in known)
    found = subject_crops([t for t in tasks if t.label in known], settings, workers, hand_model, num_hands, stride,
                          progress, desc="evaluate")
    if len(found.images):
        probs = predict_logits(model.network, found.images).softmax(1).numpy()
    else:
        probs = np.zeros((0, len(label_names)), np.float32)
    true = np.array([known[label] for label in found.labels], np.int64)
    return Evaluation(list(label_names), true, probs.argmax(1), probs, found.sources, found.no_hand,
                      found.unreadable, dict(skipped))
