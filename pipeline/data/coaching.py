"""Coaching while recording: what the data so far, and the hand in view, need (shown by the studio).

Plain functions from index rows, or one detected hand, to short lines for the screen. The thresholds
are rules of thumb for a LeNet-5 on 28x28 crops, not measured limits: a few dozen crops per class
from more than one session is what a first model that works live needs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable, Mapping, Sequence

from pipeline.labels import NONE_LABEL
from pipeline.preprocess.hands import Hand

#: Fewer samples than this in a class: say so.
MIN_SAMPLES = 30
#: The largest class this many times the smallest: say so.
IMBALANCE = 3.0
#: A hand whose box is smaller than this share of the frame's shorter side: "come closer".
MIN_HAND_SHARE = 0.15
#: MediaPipe's handedness score below this: the hand is hard to see.
MIN_SCORE = 0.8


def label_groups(rows: Iterable[dict]) -> Counter:
    """Samples per ``(label, group)`` of index rows: what :func:`data_hints` reads, kept up to date cheaply."""
    return Counter((row["label"], row["group"]) for row in rows)


def data_hints(labels: Sequence[str], per_group: Mapping[tuple[str, str], int], min_samples: int = MIN_SAMPLES,
               imbalance: float = IMBALANCE) -> list[str]:
    """Lines about the recorded data: classes with too few samples, recorded in one session only, and imbalance.

    ``per_group``: samples per ``(label, group)`` (:func:`label_groups`); ``labels``: the session's labels, in key order.
    """
    counts: Counter = Counter()
    groups: dict[str, set[str]] = defaultdict(set)
    for (label, group), n in per_group.items():
        if n > 0:
            counts[label] += n
            groups[label].add(group)
    hints = []
    for label in labels:
        n = counts[label]
        if n == 0 and label == NONE_LABEL:
            hints.append(f"{NONE_LABEL}: no samples; record hands making none of the gestures, so the model can say none")
        elif n < min_samples:
            hints.append(f"{label}: {n} samples; record at least {min_samples}")
    recorded = [label for label in labels if counts[label]]
    single = [label for label in recorded if len(groups[label]) == 1]
    if recorded and len(single) == len(recorded) and len(set().union(*(groups[la] for la in recorded))) == 1:
        hints.append("one session so far: validation is optimistic; record again elsewhere")
    else:
        hints.extend(f"{label}: one session only; record it again elsewhere, or it will not generalise" for label in single)
    if len(recorded) >= 2:
        big = max(recorded, key=lambda la: counts[la])
        small = min(recorded, key=lambda la: counts[la])
        if counts[big] >= imbalance * counts[small]:
            hints.append(f"imbalance: {big} has {counts[big] / counts[small]:.0f}x the samples of {small}")
    return hints


def hand_hints(hand: Hand, frame_size: tuple[int, int], min_share: float = MIN_HAND_SHARE,
               min_score: float = MIN_SCORE) -> list[str]:
    """Lines about one detected hand: too small in the frame, or MediaPipe unsure of it. ``frame_size``: (width, height)."""
    x0, y0, x1, y1 = hand.box()
    share = max(x1 - x0, y1 - y0) / max(1, min(frame_size))
    hints = []
    if share < min_share:
        hints.append(f"hand small ({share:.0%} of the frame): come closer")
    if hand.score < min_score:
        hints.append(f"MediaPipe unsure of this hand (score {hand.score:.2f}): more light, the whole hand in view")
    return hints


__all__ = ["IMBALANCE", "MIN_HAND_SHARE", "MIN_SAMPLES", "MIN_SCORE", "data_hints", "hand_hints", "label_groups"]
