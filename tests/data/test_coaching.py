"""Coaching lines: what the recorded data lacks, and what is wrong with the hand in view (on a real photo)."""

from __future__ import annotations

import dataclasses

from pipeline.data.coaching import data_hints, hand_hints, label_groups


def rows(**per_label: list[tuple[str, int]]):
    """Samples per (label, group) of index rows: ``five=[("s1", 40)]`` is 40 rows of five in group s1."""
    return label_groups({"label": label, "group": group, "id": "0"} for label, parts in per_label.items()
                        for group, n in parts for _ in range(n))


def test_data_hints_name_small_classes_single_sessions_and_imbalance():
    labels = ["five", "fist", "none"]
    one_session = data_hints(labels, rows(five=[("s1", 40)], fist=[("s1", 12)]))
    assert one_session == [
        "fist: 12 samples; record at least 30",
        "none: no samples; record hands making none of the gestures, so the model can say none",
        "one session so far: validation is optimistic; record again elsewhere",
        "imbalance: five has 3x the samples of fist",
    ]
    # Two sessions, but fist only in one; balanced enough; none recorded.
    later = data_hints(labels, rows(five=[("s1", 40), ("s2", 30)], fist=[("s1", 35)], none=[("s2", 40)]))
    assert later == ["fist: one session only; record it again elsewhere, or it will not generalise",
                     "none: one session only; record it again elsewhere, or it will not generalise"]
    assert data_hints(labels, rows(five=[("s1", 40), ("s2", 30)], fist=[("s1", 35), ("s2", 5)],
                                   none=[("s1", 40), ("s2", 1)])) == []


def test_hand_hints_on_a_real_hand(open_palm):
    hand = open_palm.hands[0]
    width, height = open_palm.size
    assert hand_hints(hand, (width, height)) == []  # a photo filled by one hand
    # The same hand in a frame eight times as large covers an eighth of it: "come closer".
    x0, y0, x1, y1 = hand.box()
    share = max(x1 - x0, y1 - y0) / (8 * min(width, height))
    assert hand_hints(hand, (8 * width, 8 * height)) == [f"hand small ({share:.0%} of the frame): come closer"]
    unsure = dataclasses.replace(hand, score=0.55)
    assert hand_hints(unsure, (width, height)) == [
        "MediaPipe unsure of this hand (score 0.55): more light, the whole hand in view"]
