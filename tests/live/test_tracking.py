"""Hands followed across frames: matching, smoothing, hysteresis, no gesture."""

from __future__ import annotations

import numpy as np

from pipeline.live.tracking import HandTracker


def box(cx: float, cy: float, side: float = 100) -> list[float]:
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


def onehot(k: int, n: int = 3, p: float = 0.9) -> np.ndarray:
    out = np.full(n, (1 - p) / (n - 1))
    out[k] = p
    return out


def test_two_hands_keep_their_ids_when_the_detection_order_swaps() -> None:
    tracker = HandTracker(3)
    a, b = tracker.update(np.array([box(100, 100), box(500, 100)]), np.stack([onehot(0), onehot(1)]))
    for step in range(10):  # both drift right by 20 px a frame; the detector lists them in turn
        left, right = box(100 + 20 * step, 100), box(500 + 20 * step, 100)
        order = [left, right] if step % 2 else [right, left]
        probs = np.stack([onehot(0), onehot(1)] if step % 2 else [onehot(1), onehot(0)])
        tracks = tracker.update(np.array(order), probs)
        ids = [t.id for t in tracks]
        assert ids == ([a.id, b.id] if step % 2 else [b.id, a.id])
    assert a.label == 0 and b.label == 1


def test_a_far_jump_is_a_new_hand_and_a_lost_hand_expires() -> None:
    tracker = HandTracker(3, max_missed=2)
    first = tracker.update(np.array([box(100, 100)]), onehot(0)[None])[0]
    moved = tracker.update(np.array([box(400, 400)]), onehot(0)[None])[0]
    assert moved.id != first.id
    for _ in range(3):
        tracker.update(np.zeros((0, 4)), np.zeros((0, 3)))
    assert tracker.tracks == []


def test_smoothing_with_hysteresis_does_not_flicker() -> None:
    tracker = HandTracker(3, alpha=0.5, threshold=0.4, hysteresis=0.1)
    labels = []
    # Class 0 for a while, then noise alternating 1/0 with near-equal scores, then a clear switch to 2.
    seq = [onehot(0)] * 5 + [np.array([0.45, 0.5, 0.05]), np.array([0.5, 0.45, 0.05])] * 4 + [onehot(2)] * 6
    for p in seq:
        labels.append(tracker.update(np.array([box(200, 200)]), p[None])[0].label)
    assert labels[:13] == [0] * 13  # the close 0/1 alternation never flips the label
    assert labels[-1] == 2
    switch = labels.index(2)
    assert all(label == 2 for label in labels[switch:])  # one clean switch, no back and forth


def test_low_confidence_or_none_class_shows_no_gesture() -> None:
    tracker = HandTracker(3, threshold=0.6, alpha=1.0)
    assert tracker.update(np.array([box(0, 0)]), np.array([[0.4, 0.35, 0.25]]))[0].label is None
    with_none = HandTracker(3, none_class=2, alpha=1.0)
    assert with_none.update(np.array([box(0, 0)]), onehot(2)[None])[0].label is None
    assert with_none.update(np.array([box(0, 0)]), onehot(1)[None])[0].label == 1
