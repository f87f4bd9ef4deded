"""Per-hand state across video frames: match hands by position, smooth their predictions.

Each hand on screen gets a :class:`Track` with its own exponential moving average of class
probabilities and a label that changes only with hysteresis, so labels do not flicker when two
classes are close. Below ``threshold`` (or when the model's ``none`` class wins) the label is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Track:
    """One hand followed across frames."""

    id: int
    centre: np.ndarray  # (2,) pixels
    size: float  # box diagonal in pixels
    probs: np.ndarray  # smoothed probabilities
    label: int | None = None  # the shown class, or None for "no gesture"
    missed: int = 0  # frames since it was last seen


@dataclass
class HandTracker:
    """Matches detections to tracks and smooths each track's probabilities.

    Args:
        num_classes: model outputs.
        alpha: weight of the newest frame in the moving average (1 = no smoothing).
        threshold: smoothed confidence below which no gesture is shown.
        hysteresis: a new class must beat the shown one by this much to take over.
        none_class: index of a ``none`` class, if the model has one.
        max_missed: frames a track survives without a match (brief detection drop-outs).
        max_jump: a match must lie within this many hand sizes of the track.
    """

    num_classes: int
    alpha: float = 0.35
    threshold: float = 0.5
    hysteresis: float = 0.1
    none_class: int | None = None
    max_missed: int = 5
    max_jump: float = 0.75
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 0

    def update(self, boxes: np.ndarray, probs: np.ndarray) -> list[Track]:
        """Feed one frame: ``boxes`` (N, 4) as x0, y0, x1, y1 and ``probs`` (N, C).

        Returns the track of each detection, in detection order.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        sizes = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        assigned = self._match(centres, sizes)
        out = []
        for i, track in enumerate(assigned):
            if track is None:
                track = Track(self._next_id, centres[i], sizes[i], probs[i].astype(np.float64).copy())
                self._next_id += 1
                self.tracks.append(track)
            else:
                track.probs = (1 - self.alpha) * track.probs + self.alpha * probs[i]
                track.centre, track.size = centres[i], sizes[i]
            track.missed = 0
            track.label = self._decide(track)
            out.append(track)
        seen = {id(t) for t in out}
        for track in self.tracks:
            if id(track) not in seen:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

    def _match(self, centres: np.ndarray, sizes: np.ndarray) -> list[Track | None]:
        """Greedy nearest matching, closest pairs first, each within ``max_jump`` hand sizes."""
        result: list[Track | None] = [None] * len(centres)
        if not self.tracks or not len(centres):
            return result
        old = np.stack([t.centre for t in self.tracks])
        dist = np.linalg.norm(centres[:, None] - old[None], axis=2)
        scale = np.maximum(sizes[:, None], np.array([t.size for t in self.tracks])[None])
        cost = dist / np.maximum(scale, 1e-6)
        taken: set[int] = set()
        for flat in np.argsort(cost, axis=None):
            i, j = divmod(int(flat), len(self.tracks))
            if cost[i, j] > self.max_jump:
                break
            if result[i] is None and j not in taken:
                result[i] = self.tracks[j]
                taken.add(j)
        return result

    def _decide(self, track: Track) -> int | None:
        best = int(track.probs.argmax())
        confidence = float(track.probs[best])
        if confidence < self.threshold or best == self.none_class:
            return None
        if track.label is None or track.label == best:
            return best
        # Keep the shown label unless the new one is clearly ahead.
        return best if confidence >= track.probs[track.label] + self.hysteresis else track.label
