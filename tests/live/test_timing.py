"""Stage times and frame rates."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported
from pipeline.live.timing import StageTimes


def test_stage_times_average_a_short_window() -> None:
    times = StageTimes(window=2)
    for k, now in enumerate([10.0, 10.1, 10.2, 10.3]):
        times.add({"detect": 10.0 * (k + 1), "draw": 1.0}, now)
    assert times.recent_ms()["detect"] == pytest.approx(35.0) and times.recent_ms()["crop"] == 0.0
    assert times.mean_ms()["detect"] == pytest.approx(25.0) and times.mean_ms()["draw"] == pytest.approx(1.0)
    assert times.recent_fps() == pytest.approx(10.0) and times.mean_fps() == pytest.approx(10.0)
    assert times.mean_fps(start=9.9) == pytest.approx(10.0)
