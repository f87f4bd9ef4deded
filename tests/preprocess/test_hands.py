"""The hand stage on real photos and videos, and the checks on the MediaPipe bundle."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pipeline.preprocess.hands as hands_module
from helpers import require
from pipeline.errors import UserError
from pipeline.preprocess.crops import crop_hand
from pipeline.preprocess.hands import HAND_MODEL_ENV, HAND_MODEL_SHA256, HandDetector, resolve_landmarker
from pipeline.preprocess.sources import VideoSource

TIPS = (4, 8, 12, 16, 20)


MCPS = (2, 5, 9, 13, 17)  # the thumb's MCP is landmark 2


PIPS = (3, 6, 10, 14, 18)  # the thumb's IP is landmark 3


def _check_hand(hand, width: int, height: int) -> None:
    assert hand.landmarks.shape == (21, 3) and hand.landmarks.dtype == np.float32
    assert hand.world.shape == (21, 3) and hand.world.dtype == np.float32
    xy = hand.landmarks[:, :2]
    assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= width).all(), xy[:, 0]
    assert (xy[:, 1] >= 0).all() and (xy[:, 1] <= height).all(), xy[:, 1]
    assert hand.handedness in {"Left", "Right"}
    assert 0.5 < hand.score <= 1.0


def _spread_fingers(hand) -> None:
    """An open palm: every fingertip is well beyond its base joint and its middle joint, seen from the wrist."""
    xy = hand.landmarks[:, :2].astype(np.float64)
    reach = np.linalg.norm(xy - xy[0], axis=1)
    for tip, mcp, pip in zip(TIPS, MCPS, PIPS):
        assert reach[tip] > 1.4 * reach[mcp], (tip, reach[tip], reach[mcp])
        assert reach[tip] > 1.1 * reach[pip], (tip, reach[tip], reach[pip])
    # The middle finger is the longest reach on an upright open palm, the thumb the shortest.
    assert reach[12] == reach[list(TIPS)].max()
    assert reach[4] == reach[list(TIPS)].min()


def _world_span(hand) -> float:
    w = hand.world.astype(np.float64)
    return float(np.linalg.norm(w[:, None] - w[None], axis=-1).max())


def test_open_palm_photo_gives_one_right_hand_with_spread_fingers(open_palm):
    (hand,) = open_palm.hands
    _check_hand(hand, *open_palm.size)
    assert hand.handedness == "Right"
    assert hand.score > 0.9
    _spread_fingers(hand)
    # The palm takes a plausible part of a 640x480 webcam photo.
    x0, y0, x1, y1 = hand.box()
    assert 100 < x1 - x0 < 400 and 150 < y1 - y0 < 400
    assert hand.area() == pytest.approx((x1 - x0) * (y1 - y0))


def test_two_palms_photo_gives_a_left_and_a_right_hand(two_palms):
    assert sorted(h.handedness for h in two_palms.hands) == ["Left", "Right"]
    for hand in two_palms.hands:
        _check_hand(hand, *two_palms.size)
        _spread_fingers(hand)
    # Unmirrored photo of a person facing the camera: their right hand is on the image's left.
    right = next(h for h in two_palms.hands if h.handedness == "Right")
    left = next(h for h in two_palms.hands if h.handedness == "Left")
    assert right.landmarks[:, 0].max() < left.landmarks[:, 0].min()


def test_world_landmarks_are_in_metres(two_palms, open_palm):
    for hand in [*two_palms.hands, *open_palm.hands]:
        assert 0.05 < _world_span(hand) < 0.3
        # Wrist to middle-finger base of an adult hand: 6 to 14 cm.
        assert 0.06 < float(np.linalg.norm(hand.world[9] - hand.world[0])) < 0.14
        # World landmarks are centred on the hand, not on the image.
        assert np.abs(hand.world.mean(0)).max() < 0.05


def test_video_mode_finds_and_crops_a_hand_in_nearly_every_frame(videos_dir):
    path = videos_dir / "open_palm.mp4"
    frames = with_hand = with_crop = 0
    last_ms = -1
    with VideoSource(path) as video, HandDetector(video=True) as detector:
        for frame in video:
            assert frame.timestamp_ms > last_ms
            last_ms = frame.timestamp_ms
            hands = detector.detect(frame.image, frame.timestamp_ms)
            frames += 1
            with_hand += bool(hands)
            crops = [crop_hand(frame.image, h) for h in hands]
            with_crop += any(c.image.shape == (28, 28) and c.image.max() > 0 for c in crops)
    assert frames == 202
    assert with_hand >= 0.95 * frames, f"hand in {with_hand}/{frames} frames"
    assert with_crop >= 0.95 * frames, f"crop in {with_crop}/{frames} frames"


def test_video_mode_accepts_repeated_and_earlier_timestamps(open_palm):
    with HandDetector(video=True) as detector:
        first = detector.detect(open_palm.image, 1000)
        again = detector.detect(open_palm.image, 1000)  # MediaPipe alone would refuse this
        back = detector.detect(open_palm.image, 400)
        assert detector._last_ms == 1002  # each moved 1 ms past the previous one
        with pytest.raises(ValueError):
            detector.detect(open_palm.image)
    for hands in (first, again, back):
        assert len(hands) == 1
    # The same picture three times: the tracked landmarks stay put (the tracker re-fits them from its
    # own last box, so they wander a few pixels on a ~250 px hand, but no more).
    for hands in (again, back):
        moved = np.linalg.norm(hands[0].landmarks[:, :2] - first[0].landmarks[:, :2], axis=1)
        assert moved.max() < 8 and moved.mean() < 4, moved


def test_detector_closes_twice_and_refuses_zero_hands():
    detector = HandDetector()
    detector.close()
    detector.close()
    with pytest.raises(UserError, match="--num-hands"):
        HandDetector(num_hands=0)


# Run in a child: without the fix this segfaults, and would take the whole test session down with it.
CTRL_C_DURING_DETECTION = """
import os, signal, sys, threading, time
from pipeline.preprocess.hands import HandDetector
from pipeline.preprocess.sources import read_image

image = read_image(sys.argv[1])
with HandDetector(video=True) as detector:
    landmarker = detector._landmarker
    entered, returned = threading.Event(), []
    real = landmarker.detect_for_video

    def spy(*args, **kwargs):
        entered.set()
        result = real(*args, **kwargs)
        returned.append(len(result.hand_landmarks))
        return result

    def ctrl_c_while_queued():  # on MediaPipe's one thread, so the detection waits behind it
        entered.wait(10)
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)

    landmarker.detect_for_video = spy
    landmarker._lib._executor.submit(ctrl_c_while_queued)
    try:
        detector.detect(image, 0)
        print("no KeyboardInterrupt")
    except KeyboardInterrupt:
        print("KeyboardInterrupt after", returned, "hands", flush=True)
    print("handler restored", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    print("then", len(detector.detect(image, 40)), "hand")
"""


def test_a_ctrl_c_during_detection_waits_for_the_native_call(open_palm):
    """MediaPipe works on a thread of its own while this one waits; a Ctrl-C that broke the wait let Python
    free the result and the image the native call was still using: a segfault instead of exit code 130."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", CTRL_C_DURING_DETECTION, str(open_palm.path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "GLOG_minloglevel": "2"})
    assert proc.returncode == 0, proc.stderr[-1500:]
    # The native call ran to its end (it found the hand) before KeyboardInterrupt was raised, and the graph still works.
    assert proc.stdout.splitlines() == ["KeyboardInterrupt after [1] hands", "handler restored True", "then 1 hand"]


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(HAND_MODEL_ENV, raising=False)


@pytest.fixture
def shipped_model() -> Path:
    path = hands_module.DEFAULT_LANDMARKER
    if not path.is_file():
        pytest.skip(f"shipped hand model missing: {path}")
    return path


def test_corrupted_shipped_model_names_file_and_expected_hash(tmp_path, monkeypatch, no_env, shipped_model):
    damaged = tmp_path / "hand_landmarker.task"
    data = bytearray(shipped_model.read_bytes())
    for i in (1000, len(data) // 2, len(data) - 10):
        data[i] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(hands_module, "DEFAULT_LANDMARKER", damaged.resolve())
    for attempt in (resolve_landmarker, HandDetector):
        with pytest.raises(UserError) as info:
            attempt()
        message = str(info.value)
        assert str(damaged) in message
        assert HAND_MODEL_SHA256 in message
        assert "\n" not in message


def test_intact_copy_as_shipped_model_passes_the_hash(tmp_path, monkeypatch, no_env, shipped_model):
    copy = tmp_path / "hand_landmarker.task"
    shutil.copyfile(shipped_model, copy)
    monkeypatch.setattr(hands_module, "DEFAULT_LANDMARKER", copy.resolve())
    assert resolve_landmarker() == copy.resolve()


def test_truncated_shipped_model_is_refused(tmp_path, monkeypatch, no_env, shipped_model):
    # What a Git-LFS placeholder or a cut download looks like.
    stub = tmp_path / "hand_landmarker.task"
    stub.write_bytes(shipped_model.read_bytes()[:1000])
    monkeypatch.setattr(hands_module, "DEFAULT_LANDMARKER", stub.resolve())
    with pytest.raises(UserError, match=HAND_MODEL_SHA256):
        resolve_landmarker()


def test_non_bundle_hand_model_is_refused(tmp_path, no_env):
    text = tmp_path / "notes.task"
    text.write_text("not a model\n")
    other_zip = tmp_path / "other.task"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("hand_detector.tflite", b"x")  # the landmark model is missing
    for bad in (text, other_zip):
        with pytest.raises(UserError) as info:
            HandDetector(bad)
        assert str(bad) in str(info.value)
        assert "hand_landmarks_detector.tflite" in str(info.value)


def test_user_bundle_under_another_name_is_accepted_without_hash(tmp_path, no_env, shipped_model, open_palm):
    mine = tmp_path / "newer_release.task"
    shutil.copyfile(shipped_model, mine)
    assert resolve_landmarker(mine) == mine
    with HandDetector(mine) as detector:
        assert len(detector.detect(open_palm.image)) == 1


def test_env_var_is_honoured_and_the_argument_wins(tmp_path, monkeypatch, shipped_model):
    missing = tmp_path / "nowhere" / "hand.task"
    monkeypatch.setenv(HAND_MODEL_ENV, str(missing))
    with pytest.raises(UserError) as info:
        resolve_landmarker()
    assert str(missing) in str(info.value)
    assert HAND_MODEL_ENV in str(info.value)
    with pytest.raises(UserError, match="nowhere"):
        HandDetector()
    # An explicit path (--hand-model) beats the variable.
    assert resolve_landmarker(shipped_model) == shipped_model
    # And the variable beats the shipped model: a good bundle there is used.
    mine = tmp_path / "env.task"
    shutil.copyfile(shipped_model, mine)
    monkeypatch.setenv(HAND_MODEL_ENV, str(mine))
    assert resolve_landmarker() == mine


def test_a_detector_left_open_is_closed_quietly_at_exit(shipped_model):
    """MediaPipe's own finaliser, run during interpreter teardown, prints a traceback; ours closes first."""
    import subprocess
    import sys

    code = "from pipeline.preprocess.hands import HandDetector\nd = HandDetector(video=True)\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "GLOG_minloglevel": "2"})
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-1500:]


def test_a_close_up_photo_is_found_inside_a_border_in_its_own_pixels(data_dir, detector, monkeypatch):
    """A hand that fills a 100x100 photo: MediaPipe finds none; framed in black it finds the four, and the
    landmarks come back in the photo's pixels (equal to the framed photo's, less the border)."""
    import cv2

    photo = data_dir / "hands_many" / "sign_digits" / "four" / "digit4_IMG_1264.JPG"
    image = cv2.imread(str(require(photo, "a sign_digits close-up")))
    monkeypatch.setattr(hands_module, "PHOTO_BORDER", 0.0)
    assert detector.detect(image) == []
    monkeypatch.setattr(hands_module, "PHOTO_BORDER", 0.5)
    (hand,) = detector.detect(image)
    _check_hand(hand, image.shape[1], image.shape[0])
    framed = cv2.copyMakeBorder(image, 50, 50, 50, 50, cv2.BORDER_CONSTANT, value=0)
    monkeypatch.setattr(hands_module, "PHOTO_BORDER", 0.0)
    (same,) = detector.detect(framed)
    np.testing.assert_allclose(hand.landmarks, same.landmarks - np.array([50, 50, 0], np.float32), atol=1e-4)
    # Four fingers up, the thumb folded: four tips beyond their middle joints, seen from the wrist.
    xy = hand.landmarks[:, :2].astype(np.float64)
    reach = np.linalg.norm(xy - xy[0], axis=1)
    assert all(reach[tip] > 1.1 * reach[pip] for tip, pip in zip(TIPS[1:], PIPS[1:]))


def test_a_large_close_up_is_shrunk_before_it_is_framed_and_answered_in_its_own_pixels(data_dir, detector, monkeypatch):
    """The same close-up at 3,000 px: framed at most PHOTO_FRAMED_SIDE wide (not 6,000), and its landmarks are the
    100 px photo's times 30, to within 1 % of the side."""
    import cv2

    photo = data_dir / "hands_many" / "sign_digits" / "four" / "digit4_IMG_1264.JPG"
    image = cv2.imread(str(require(photo, "a sign_digits close-up")))
    (small,) = detector.detect(image)
    framed_sides = []
    real = detector._detect
    monkeypatch.setattr(detector, "_detect", lambda img, ms: framed_sides.append(img.shape[:2]) or real(img, ms))
    big = cv2.resize(image, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    (hand,) = detector.detect(big)
    assert framed_sides[0] == (3000, 3000) and max(framed_sides[-1]) <= hands_module.PHOTO_FRAMED_SIDE
    _check_hand(hand, 3000, 3000)
    np.testing.assert_allclose(hand.landmarks[:, :2], small.landmarks[:, :2] * 30, atol=30)
