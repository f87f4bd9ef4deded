"""Calibration: temperature scaling fitted on validation (Guo et al. 2017), and how well probabilities mean
what they say (reliability diagram, expected calibration error).

C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern Neural Networks", ICML 2017.
A temperature T divides the logits: the predicted class is unchanged, only the confidence moves, so
that ``--threshold 0.8`` keeps the answers that are right about 80 % of the time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.files import save_figure


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 200) -> float:
    """The temperature (> 0) that minimises the negative log-likelihood of ``labels`` under ``logits / T``.

    Optimised over log T with L-BFGS, so T stays positive; 1.0 when there is nothing to fit on.
    """
    if len(labels) == 0:
        return 1.0
    logits, labels = logits.detach().double(), labels.detach()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per confidence bin: mean confidence, accuracy and count of the top answers; and the expected calibration
    error (the count-weighted mean gap between confidence and accuracy)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(which, confidence, bins) / count
        accuracy = np.bincount(which, correct.astype(float), bins) / count
    ece = float(np.nansum(np.abs(mean_conf - accuracy) * count) / max(len(labels), 1))
    return mean_conf, accuracy, count, ece


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "",
                     bins: int = 10) -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per ``{name: (probs, labels)}``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="gray", lw=1, ls="--", label="perfectly calibrated")
    for name, (probs, labels) in curves.items():
        conf, acc, count, ece = reliability(probs, labels, bins)
        keep = count > 0
        ax.plot(conf[keep], acc[keep], marker="o", label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("confidence of the top answer")
    ax.set_ylabel("share of those answers that are right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, 110)


def answers(probs: np.ndarray, labels: list[str], threshold: float) -> np.ndarray:
    """What the demo would show for each row of probabilities: the top class, or "no gesture" (-1, or the
    index of a ``none`` class when the model has one) when the top probability is below ``threshold``."""
    from pipeline.labels import NONE_LABEL

    probs = np.asarray(probs)
    top = probs.argmax(1)
    quiet = labels.index(NONE_LABEL) if NONE_LABEL in labels else -1
    return np.where(probs.max(1) >= threshold, top, quiet)


def none_scores(answered: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Precision and recall of answering ``none`` (below the threshold, or the none class), and the false-positive
    rate on negatives: the share of true ``none`` hands answered with a gesture. Empty when there is no ``none``."""
    from pipeline.labels import NONE_LABEL

    if NONE_LABEL not in labels:
        return {}
    k = labels.index(NONE_LABEL)
    said, true = answered == k, np.asarray(truth) == k
    nan = float("nan")
    return {"none_precision": float((said & true).sum() / said.sum()) if said.any() else nan,
            "none_recall": float((said & true).sum() / true.sum()) if true.any() else nan,
            "false_positive_rate": float((~said & true).sum() / true.sum()) if true.any() else nan}
