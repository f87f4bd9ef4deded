"""Sources: a video file played again and again stands in for a camera."""

from __future__ import annotations

import itertools

import numpy as np

from helpers import require
from pipeline.preprocess.sources import looped, open_source


def test_a_looped_video_repeats_its_frames_with_rising_timestamps(videos_dir):
    path = require(videos_dir / "typing.mp4", "videos/typing.mp4")
    with open_source(path) as src:
        once = [(f.index, f.timestamp_ms, f.image.copy()) for f in src]
    with open_source(path) as src:
        frames = list(itertools.islice(looped(src), 2 * len(once) + 3))
    n = len(once)
    stamps = [f.timestamp_ms for f in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))  # MediaPipe's video mode needs that
    assert stamps[n] == stamps[n - 1] + 40  # 25 fps: the replay starts one frame after the last
    for k, f in enumerate(frames):  # each replay: the file's own frames, numbers and pixels, as its own source
        index, _, image = once[k % n]
        assert f.index == index and np.array_equal(f.image, image)
        assert f.source == (str(path) if k < n else f"{path} (replay {k // n})")
