"""Splits by group, never by frame."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.splits import split_by_group, split_by_named_groups
from pipeline.errors import UserError


def _synthetic(seed: int = 0):
    """14 groups of 5 to 60 samples; each group holds one or two of four classes."""
    rng = np.random.default_rng(seed)
    groups, labels = [], []
    for g in range(14):
        size = int(rng.integers(5, 60))
        classes = [g % 4] if g % 3 else [g % 4, (g + 1) % 4]
        groups += [f"g{g:02d}"] * size
        labels += [classes[k % len(classes)] for k in range(size)]
    order = rng.permutation(len(groups))
    return np.array(groups)[order], np.array(labels)[order]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_by_group_is_a_clean_deterministic_partition(seed):
    groups, labels = _synthetic(seed)
    n = len(groups)
    train, val, test = split_by_group(groups, labels, val=0.2, test=0.2, seed=seed)
    both = np.concatenate([train, val, test])
    assert len(both) == n and np.array_equal(np.sort(both), np.arange(n))
    sets = [set(groups[s].tolist()) for s in (train, val, test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    for part in (val, test):
        assert set(labels[part].tolist()) == {0, 1, 2, 3}
        assert 0.08 < len(part) / n < 0.35
    assert len(train) > n / 2
    again = split_by_group(groups, labels, val=0.2, test=0.2, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    other = split_by_group(groups, labels, val=0.2, test=0.2, seed=seed + 100)
    assert any(not np.array_equal(a, b) for a, b in zip((train, val, test), other))


def test_split_by_group_on_real_fingers_sessions(fingers_dir):
    from pipeline.preprocess.photo_folders import session_of

    paths = [p for label in "012345" for p in sorted((fingers_dir / label).glob("*.jpg"))]
    groups = np.array([session_of(p) for p in paths])
    labels = np.array([int(p.parent.name) for p in paths])
    assert len(paths) == 1523
    train, val, test = split_by_group(groups, labels, seed=0)
    for part in (val, test):
        assert set(labels[part].tolist()) == set(range(6))
        assert 0.05 < len(part) / len(paths) < 0.3
    assert not set(groups[train]) & set(groups[val]) and not set(groups[val]) & set(groups[test])


def test_split_by_group_needs_three_groups():
    with pytest.raises(UserError, match="2 group"):
        split_by_group(["a", "a", "b"], [0, 1, 0])


def test_split_by_named_groups():
    groups = np.array(["a", "b", "c", "a", "d", "b", "c"])
    train, val, test = split_by_named_groups(groups, ["b"], ["c", "d"])
    assert train.tolist() == [0, 3] and val.tolist() == [1, 5] and test.tolist() == [2, 4, 6]
    train, val, test = split_by_named_groups(groups, [], ["a"])
    assert train.tolist() == [1, 2, 4, 5, 6] and val.tolist() == [] and test.tolist() == [0, 3]
    with pytest.raises(UserError, match="unknown group.*zz"):
        split_by_named_groups(groups, ["zz"], [])
    with pytest.raises(UserError, match="both"):
        split_by_named_groups(groups, ["a"], ["a", "b"])


def test_split_by_blocks_deals_runs_of_consecutive_samples_in_turn():
    from pipeline.data.splits import split_by_blocks

    labels = np.array([0] * 140 + [1] * 20 + [2] * 2)
    order = np.concatenate([np.arange(140)[::-1], np.arange(200, 220), [7, 8]])  # class 0 saved in reverse
    train, val, test = split_by_blocks(labels, order)
    assert sorted([*train, *val, *test]) == list(range(len(labels)))  # every sample once
    part = np.zeros(len(labels), int)
    part[val], part[test] = 1, 2
    # Class 0: 140 samples in 14 blocks of 10, in saving order; blocks 5 and 12 validate, 6 and 13 test.
    first = np.argsort(order[:140])
    assert part[first].reshape(14, 10).tolist() == [[{5: 1, 6: 2, 12: 1, 13: 2}.get(k, 0)] * 10 for k in range(14)]
    # Class 1: 20 samples in blocks of one, dealt in turn to the end (the 20th is the 6th of its cycle).
    assert part[140:160].tolist() == [{5: 1, 6: 2}.get(k % 7, 0) for k in range(20)]
    assert part[160:].tolist() == [0, 0]  # two samples only train
    # A class of 5: too few blocks for a cycle; its last two samples validate and test.
    small = split_by_blocks(np.zeros(5, int), np.arange(5))
    assert [p.tolist() for p in small] == [[0, 1, 2], [3], [4]]
