"""Confidence intervals that respect how the data were recorded: crops nest in sessions.

Crops of one session (one person, one sitting) are not independent: a resample of crops alone
makes intervals far too narrow. :func:`hierarchical_bootstrap` resamples sessions, then crops
within each drawn session (the two-stage bootstrap of Davison & Hinkley 1997, §2.4), and gives a
percentile interval for the mean. Pass per-crop *differences* of two methods on the same crops to
get a paired interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean and its percentile bootstrap interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def excludes(self, value: float) -> bool:
        """True when ``value`` lies outside the interval (the difference is "significant" at its level)."""
        return not (self.low <= value <= self.high)


def hierarchical_bootstrap(values: np.ndarray, groups: np.ndarray, draws: int = 1000, level: float = 0.95,
                           seed: int = 0) -> Interval:
    """Mean of ``values`` (N,) with an interval from resampling ``groups`` (N,), then items within each.

    NaN values are left out. With one group only, it resamples the items (there is nothing else).
    """
    values, groups = np.asarray(values, np.float64), np.asarray(groups)
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    if not len(values):
        return Interval(float("nan"), float("nan"), float("nan"))
    _, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # items grouped: group g holds order[start[g]:start[g] + size[g]]
    size = np.bincount(inverse)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    rng = np.random.default_rng(seed)
    means = np.empty(draws)
    for d in range(draws):
        picked = rng.integers(0, len(size), len(size))
        # Within each drawn group, its own items with replacement; the mean is over all drawn items.
        owner = np.repeat(picked, size[picked])
        idx = order[start[owner] + (rng.random(len(owner)) * size[owner]).astype(np.int64)]
        means[d] = values[idx].mean()
    alpha = (1 - level) / 2
    return Interval(float(values.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))
