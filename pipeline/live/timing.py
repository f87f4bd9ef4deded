"""Milliseconds per live stage and frames per second, for the screen and the demo's summary."""

from __future__ import annotations

from collections import deque

#: The stages the demo times, in the order a frame meets them.
STAGES = ("detect", "crop", "classify", "explain", "draw")


class StageTimes:
    """Milliseconds per stage and frames per second: over the last ``window`` frames and over the whole run."""

    def __init__(self, window: int = 30):
        self.recent: deque[dict[str, float]] = deque(maxlen=window)
        self.ticks: deque[float] = deque(maxlen=window + 1)
        self.totals = dict.fromkeys(STAGES, 0.0)
        self.frames = 0
        self.first: float | None = None
        self.last: float | None = None

    def add(self, ms: dict[str, float], now: float) -> None:
        """One frame's stage times, at time ``now`` (seconds, ``time.perf_counter()``) when it was shown."""
        self.recent.append(ms)
        self.ticks.append(now)
        for stage in STAGES:
            self.totals[stage] += ms.get(stage, 0.0)
        self.frames += 1
        self.first = now if self.first is None else self.first
        self.last = now

    def recent_ms(self) -> dict[str, float]:
        """Mean milliseconds per stage over the short window."""
        n = max(1, len(self.recent))
        return {s: sum(m.get(s, 0.0) for m in self.recent) / n for s in STAGES}

    def recent_fps(self) -> float:
        """Frames per second over the short window (0 until two frames were shown)."""
        if len(self.ticks) < 2 or self.ticks[-1] <= self.ticks[0]:
            return 0.0
        return (len(self.ticks) - 1) / (self.ticks[-1] - self.ticks[0])

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per stage over the whole run."""
        return {s: self.totals[s] / max(1, self.frames) for s in STAGES}

    def mean_fps(self, start: float | None = None) -> float:
        """Frames per second over the whole run, from ``start`` (default: the first frame) to the last frame."""
        start = self.first if start is None else start
        if self.last is None or start is None or self.last <= start:
            return 0.0
        frames = self.frames if start < self.first else self.frames - 1
        return frames / (self.last - start)
