"""Splits of a dataset: always by group (recording session or person), never by frame."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from pipeline.errors import UserError


def split_by_group(groups: Sequence[str], labels: Sequence[int], val: float = 0.15, test: float = 0.15,
                   seed: int = 0, tries: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split sample indices into train / validation / test so that no group spans two splits.

    Groups are dealt in random orders (``tries`` of them, from ``seed``); the deal whose
    validation and test shares come closest to ``val`` and ``test`` while holding every class
    wins. Deterministic for a given seed.
    """
    groups = np.asarray(groups)
    labels = np.asarray(labels)
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < 3:
        raise UserError(f"only {len(names)} group(s); a split by group needs at least 3 (record more sessions)")
    n = len(groups)
    sizes = np.bincount(inverse, minlength=len(names))
    classes = [set(labels[inverse == g].tolist()) for g in range(len(names))]
    all_classes = set(labels.tolist())
    rng = np.random.default_rng(seed)
    best, best_score = None, np.inf
    for _ in range(tries):
        order = rng.permutation(len(names))
        part = np.zeros(len(names), np.int64)  # 0 train, 1 val, 2 test
        filled = [0, 0, 0]
        for g in order:
            for split, share in ((2, test), (1, val)):
                if filled[split] + sizes[g] / 2 <= share * n:
                    part[g] = split
                    break
            filled[part[g]] += sizes[g]
        score = abs(filled[1] / n - val) + abs(filled[2] / n - test)
        for split, share in ((1, val), (2, test)):
            if share > 0:
                covered = set().union(*[classes[g] for g in np.flatnonzero(part == split)]) if (part == split).any() else set()
                score += len(all_classes - covered) / max(len(all_classes), 1)
        if filled[0] == 0:
            score += 10
        if score < best_score:
            best, best_score = part, score
    where = best[inverse]
    return tuple(np.flatnonzero(where == s) for s in range(3))  # type: ignore[return-value]


def split_by_named_groups(groups: Sequence[str], val_groups: Iterable[str], test_groups: Iterable[str]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split by explicit group names; every other group is training data."""
    groups = np.asarray(groups)
    val_groups, test_groups = set(val_groups), set(test_groups)
    unknown = (val_groups | test_groups) - set(groups.tolist())
    if unknown:
        raise UserError(f"unknown group(s) {', '.join(sorted(unknown))}; the dataset has {', '.join(sorted(set(groups.tolist())))}")
    if val_groups & test_groups:
        raise UserError(f"group(s) {', '.join(sorted(val_groups & test_groups))} named for both validation and test")
    in_val = np.isin(groups, list(val_groups))
    in_test = np.isin(groups, list(test_groups))
    return np.flatnonzero(~in_val & ~in_test), np.flatnonzero(in_val), np.flatnonzero(in_test)




def split_by_blocks(labels: Sequence[int], order: Sequence[int], cycle: int = 7, most: int = 10
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split one recording session in time: each class's samples, in ``order`` (e.g. the sample id), are cut into
    blocks of consecutive samples, dealt in turn: of every ``cycle`` blocks, the last but one validates, the
    last tests and the others train.

    For a session too few to split by group (:func:`split_by_group` needs three). Blocks keep near-identical
    neighbouring frames on one side, which a split by frame would not (only where two blocks meet can
    neighbours fall on both sides); dealing them in turn, rather than holding out the end of the
    recording, means samples recorded later (what the model got wrong) mostly train. A class gets
    ``2 * cycle`` blocks where it can, of at most ``most`` samples; one of fewer than 3 samples only trains.
    The scores stay optimistic: the same person, room and light are on every side.
    """
    labels, order = np.asarray(labels), np.asarray(order)
    parts: list[list[int]] = [[], [], []]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        members = members[np.argsort(order[members], kind="stable")]
        n = len(members)
        if n < 3:
            parts[0].extend(members.tolist())
            continue
        size = int(np.clip(n // (2 * cycle), 1, most))
        blocks = [members[k:k + size] for k in range(0, n, size)]
        if len(blocks) < cycle:  # a small class: its last two blocks validate and test
            turn = [0] * (len(blocks) - 2) + [1, 2]
        else:
            turn = [{cycle - 2: 1, cycle - 1: 2}.get(k % cycle, 0) for k in range(len(blocks))]
        for block, part in zip(blocks, turn):
            parts[part].extend(block.tolist())
    return tuple(np.sort(np.array(p, np.int64)) for p in parts)  # type: ignore[return-value]
