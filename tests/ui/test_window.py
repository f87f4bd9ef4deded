"""The window's real-time pacing."""

from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported
from pipeline.ui.collect_session import (  # noqa: E402
    Pacer,
)


def test_pacer_plays_in_real_time_and_re_anchors_when_late():
    pacer = Pacer(max_lag=0.25)
    assert pacer.delay_ms(0, 50.0) == 1  # the first frame anchors the clock
    assert pacer.delay_ms(40, 50.010) == 30  # frame 1 at 25 fps is due 40 ms after frame 0
    assert pacer.delay_ms(80, 50.100) == 1  # 20 ms late: no wait, and no re-anchoring
    assert pacer.delay_ms(120, 50.110) == 10  # still on the first clock: catches up
    assert pacer.delay_ms(160, 51.0) == 1  # 0.84 s late: re-anchored at frame 160 ...
    assert pacer.delay_ms(200, 51.0) == 40  # ... so the next frame is 40 ms later, not a burst
