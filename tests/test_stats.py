"""The two-stage bootstrap: intervals that widen when crops of one session move together."""

from __future__ import annotations

import numpy as np

from pipeline.stats import Interval, hierarchical_bootstrap


def test_clustered_data_get_a_wider_interval_than_independent_data() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 30)
    independent = rng.normal(0, 1, len(groups))
    # The same spread, but most of it shared by a session's crops.
    clustered = rng.normal(0, 0.95, 20)[groups] + rng.normal(0, 0.3, len(groups))
    a, b = hierarchical_bootstrap(independent, groups, 500), hierarchical_bootstrap(clustered, groups, 500)
    assert a.low < a.mean < a.high and b.low < b.mean < b.high
    width_a, width_b = a.high - a.low, b.high - b.low
    # Independent: about 2 * 1.96 / sqrt(600) = 0.16; clustered: about 2 * 1.96 * 0.95 / sqrt(20) = 0.83.
    assert 0.1 < width_a < 0.25 and 0.55 < width_b < 1.1, (width_a, width_b)
    assert b.excludes(b.mean + 1.0) and not b.excludes(b.mean)


def test_intervals_are_seeded_and_skip_nan() -> None:
    values = np.array([1.0, 2.0, np.nan, 3.0, 4.0])
    groups = np.array(["a", "a", "b", "b", "c"])
    first, again = hierarchical_bootstrap(values, groups, 200, seed=1), hierarchical_bootstrap(values, groups, 200, seed=1)
    assert first == again and first.mean == 2.5
    one = hierarchical_bootstrap(np.arange(10.0), np.zeros(10), 300)
    assert one.low < 4.5 < one.high  # one group: the items are resampled
    empty = hierarchical_bootstrap(np.array([np.nan]), np.array(["a"]))
    assert np.isnan(empty.mean)
    assert str(Interval(0.5, 0.4, 0.6)) == "0.500 [0.400, 0.600]"
