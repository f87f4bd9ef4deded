"""Drawing on frames: insets."""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported
from pipeline.draw.annotations import paste_inset  # noqa: E402


def test_paste_inset_clips_to_a_small_frame():
    image = np.zeros((50, 60, 3), np.uint8)
    box = paste_inset(image, np.full((28, 28), 200, np.uint8), "bottom-left", zoom=4, border=None)
    assert box == (8, 0, 60, 42)
    assert (image[0:42, 8:60] == 200).all() and (image[42:, :] == 0).all() and (image[:, :8] == 0).all()
