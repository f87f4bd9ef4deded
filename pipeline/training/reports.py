"""Reports: per-class table, confusion matrix and learning curves (train, evaluate), and rows of explanation maps (explain)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.files import save_figure


def confusion(labels: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts; rows are true labels, columns predictions."""
    return np.bincount(np.asarray(labels) * n + np.asarray(predicted), minlength=n * n).reshape(n, n)


def per_class_table(matrix: np.ndarray, names: Sequence[str]) -> "pd.DataFrame":  # noqa: F821
    """Precision, recall, F1 and support per class, from a confusion matrix."""
    import pandas as pd

    tp = np.diag(matrix).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / matrix.sum(0))
        recall = np.nan_to_num(tp / matrix.sum(1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return pd.DataFrame({"class": list(names), "precision": precision, "recall": recall, "f1": f1,
                         "support": matrix.sum(1)}).set_index("class")


def plot_confusion(matrix: np.ndarray, names: Sequence[str], path: str | Path, title: str = "") -> None:
    """Seaborn heat map of a confusion matrix, with row-normalised colours and raw counts."""
    import seaborn as sns
    from matplotlib.figure import Figure

    share = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    size = 1.2 + 0.55 * len(names)
    fig = Figure(figsize=(size + 1.5, size))  # no pyplot: leaves the caller's backend alone
    ax = fig.subplots()
    sns.heatmap(share, annot=matrix, fmt="d", cmap="Blues", vmin=0, vmax=1, xticklabels=names, yticklabels=names,
                cbar_kws={"label": "share of the true class"}, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, 110)


def plot_curves(metrics: "pd.DataFrame", path: str | Path, title: str = "") -> None:  # noqa: F821
    """Loss and accuracy per epoch, train vs validation."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2)
    for ax, key in ((left, "loss"), (right, "acc")):
        for split in ("train", "val"):
            ax.plot(metrics["epoch"], metrics[f"{split}_{key}"], label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "acc" else "cross-entropy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, 110)
