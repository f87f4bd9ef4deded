"""Evaluate a checkpoint on labelled photos (or videos) through the whole path.

photo -> MediaPipe -> crop (with the checkpoint's own crop settings) -> model. With several hands in
a photo, the largest is the subject. Photos without a hand are counted apart, not as errors.
A hand is answered as the demo would show it: its top class, or ``none`` (no gesture) when the
model's ``none`` class wins or the top probability is below the threshold; so a ``none/`` folder
scores how often hands making none of the gestures are answered ``none``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.engines import Engine
from pipeline.labels import NONE_LABEL
from pipeline.lenet.checkpoint import LoadedModel
from pipeline.lenet.model import predict_logits
from pipeline.preprocess.crops import CropSettings
from pipeline.preprocess.photo_folders import Task, detect_files, scan
from pipeline.training.calibration import answers
from pipeline.training.reports import confusion, per_class_table


@dataclass
class Evaluation:
    """Results of :func:`evaluate_folder`."""

    label_names: list[str]  # the model's labels, then ``none`` if the model has no such class
    true: np.ndarray  # label index per evaluated sample
    predicted: np.ndarray  # the answer shown (``none`` below the threshold)
    probabilities: np.ndarray  # (N, classes of the model)
    sources: list[str]
    no_hand: Counter = field(default_factory=Counter)  # per label
    unreadable: Counter = field(default_factory=Counter)
    skipped_labels: dict[str, int] = field(default_factory=dict)  # folder labels the model does not know
    missing: list[tuple[str, str]] = field(default_factory=list)  # (source, label) of photos without a hand
    threshold: float = 0.5

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
    missing: list[tuple[str, str]] = field(default_factory=list)  # (source, label) of each photo/frame without a hand


def subject_crops(tasks: list[Task], settings: CropSettings, engine: Engine | int = 1, hand_model: str | None = None,
                  num_hands: int = 2, stride: int = 5, progress: bool = True, desc: str = "hands") -> SubjectCrops:
    """Photos (or every ``stride``-th video frame) through MediaPipe and the crop stage; the largest hand
    of each is the subject. ``tasks`` come from :func:`pipeline.preprocess.photo_folders.scan`; ``engine`` is where
    detection runs (a number: that many local processes)."""
    from tqdm import tqdm

    crops, labels, sources, missing = [], [], [], []
    no_hand, unreadable = Counter(), Counter()
    for result in tqdm(detect_files(tasks, settings, engine, hand_model, num_hands, stride), total=len(tasks),
                       desc=desc, unit="file", disable=not progress):
        label = result.task.label
        if result.error:
            unreadable[label] += 1
        for frame in result.frames:
            source = f"{result.task.relative}" + (f"#{frame.index}" if frame.index else "")
            if not frame.hands:
                no_hand[label] += 1
                missing.append((source, label))
                continue
            subject = max(frame.hands, key=lambda found: found.hand.area())  # the subject: the largest hand
            crops.append(subject.crop.image)
            labels.append(label)
            sources.append(source)
    size = settings.size
    images = torch.from_numpy(np.stack(crops)).unsqueeze(1) if crops else torch.zeros((0, 1, size, size), dtype=torch.uint8)
    return SubjectCrops(images, labels, sources, no_hand, unreadable, missing)


def evaluate_folder(model: LoadedModel, folder: str | Path, engine: Engine | int = 1, hand_model: str | None = None,
                    num_hands: int = 2, stride: int = 5, threshold: float = 0.5, progress: bool = True,
                    label_map: dict[str, str] | None = None) -> Evaluation:
    """Run ``model`` on ``folder/LABEL/*`` (photos, or videos every ``stride``-th frame), with its own crop settings.

    Folders of labels the model does not know are skipped, except ``none``: hands that should get no gesture.
    ``label_map`` reads a folder as another label (``{"call": "none"}``).
    """
    settings = model.require_hand_crops()
    names = list(model.labels) + ([] if NONE_LABEL in model.labels else [NONE_LABEL])
    tasks = scan(folder, label_map)
    known = {name: i for i, name in enumerate(names)}
    skipped = Counter(t.label for t in tasks if t.label not in known)
    found = subject_crops([t for t in tasks if t.label in known], settings, engine, hand_model, num_hands, stride,
                          progress, desc="evaluate")
    probs = predict_logits(model.network, found.images).softmax(1).numpy()
    true = np.array([known[label] for label in found.labels], np.int64)
    shown = answers(probs, model.labels, threshold)
    shown = np.where(shown < 0, known[NONE_LABEL], shown)  # a model without a none class: no answer is "none"
    return Evaluation(names, true, shown, probs, found.sources, found.no_hand, found.unreadable, dict(skipped),
                      found.missing, threshold)
