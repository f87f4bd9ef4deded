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
from torch import nn

from .crops import CropSettings
from .ingest import detect_files, scan
from .models import predict_logits
from .reports import confusion, per_class_table


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


def evaluate_folder(model: nn.Module, label_names: list[str], settings: CropSettings, folder: str | Path,
                    workers: int = 1, hand_model: str | None = None, num_hands: int = 2, stride: int = 5,
                    progress: bool = True) -> Evaluation:
    """Run ``model`` on ``folder/LABEL/*`` (photos, or videos every ``stride``-th frame)."""
    from tqdm import tqdm

    tasks = scan(folder)
    known = {name: i for i, name in enumerate(label_names)}
    skipped = Counter(t.label for t in tasks if t.label not in known)
    tasks = [t for t in tasks if t.label in known]
    crops, true, sources = [], [], []
    no_hand, unreadable = Counter(), Counter()
    bar = tqdm(total=len(tasks), desc="evaluate", unit="file", disable=not progress)
    for result in detect_files(tasks, settings, workers, hand_model, num_hands, stride):
        label = result.task.label
        if result.error:
            unreadable[label] += 1
        for frame, _ms, _size, found in result.frames:
            if not found:
                no_hand[label] += 1
                continue
            hand, crop = max(found, key=lambda hc: hc[0].area())  # the subject: the largest hand
            crops.append(crop.image)
            true.append(known[label])
            sources.append(f"{result.task.relative}" + (f"#{frame}" if frame else ""))
        bar.update()
    bar.close()
    if crops:
        images = torch.from_numpy(np.stack(crops)).unsqueeze(1)
        probs = predict_logits(model, images).softmax(1).numpy()
    else:
        probs = np.zeros((0, len(label_names)), np.float32)
    return Evaluation(list(label_names), np.array(true, np.int64), probs.argmax(1), probs, sources, no_hand,
                      unreadable, dict(skipped))
