"""Sources: a video file played again and again stands in for a camera; a phone photo is read as it is shown."""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image

from helpers import require
from pipeline.preprocess.sources import looped, open_source, read_image


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


def test_a_photo_turned_by_its_exif_tag_is_read_and_its_hand_found_as_it_is_shown(images_dir, detector, tmp_path):
    # Phones store a turned photo's pixels as the sensor took them, with an orientation tag: 6 means "turn a
    # quarter clockwise to show". Read without the tag, the hand would be on its side, and the wrong size.
    photo = read_image(require(images_dir / "thumb_up.jpg", "images/thumb_up.jpg"))
    sensor = np.ascontiguousarray(np.rot90(photo[:, :, ::-1], 1))  # what the sensor stored: the shown photo a quarter anticlockwise
    tagged = Image.fromarray(sensor)
    exif = tagged.getexif()
    exif[0x0112] = 6
    tagged.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = read_image(tmp_path / "phone.jpg")
    assert shown.shape == photo.shape
    assert np.abs(shown.astype(int) - photo.astype(int)).mean() < 3  # the same picture, up to one more JPEG encoding
    (hand,), (again,) = detector.detect(photo), detector.detect(shown)
    palm = np.linalg.norm(hand.landmarks[9, :2] - hand.landmarks[0, :2])
    assert np.abs(again.landmarks[:, :2] - hand.landmarks[:, :2]).max() < 0.1 * palm
