"""MediaPipe in its own process: the inline results, in order; errors as one line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.preprocess.detector_process import DetectorDied, DetectorProcess, detect_each
from pipeline.preprocess.hands import HAND_MODEL_ENV, HandDetector
from pipeline.preprocess.sources import Frame, VideoSource


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(HAND_MODEL_ENV, raising=False)


def _same_hands(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.handedness == y.handedness
        np.testing.assert_allclose(x.landmarks, y.landmarks, atol=1e-3)
        np.testing.assert_allclose(x.world, y.world, atol=1e-5)


def _shm_names() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("psm_*")} if Path("/dev/shm").is_dir() else set()


def test_detector_process_gives_the_inline_results_in_order(videos_dir):
    path = videos_dir / "open_palm.mp4"
    if not path.is_file():
        pytest.skip(f"real data missing: {path}")
    with VideoSource(path) as video:
        frames = [f for f in video if f.index < 60]
    with HandDetector(video=True) as detector:
        inline = list(detect_each(frames, detector))
    before = _shm_names()
    with DetectorProcess(frames, video=True) as process:
        out = list(process)
    assert [f.index for f, _, _ in out] == list(range(60))
    assert sum(bool(h) for _, h, _ in out) >= 57
    for (_, mine, ms), (_, theirs, _) in zip(out, inline):
        assert ms > 0
        _same_hands(mine, theirs)
    assert not process._process.is_alive() and _shm_names() <= before  # nothing left behind


@pytest.mark.parametrize("spin", [True, False])
def test_detector_process_takes_photos_of_any_size(open_palm, two_palms, detector, spin):
    """IMAGE mode on frames that grow and shrink: the shared memory follows their size (polling or sleeping)."""
    small = open_palm.image[::2, ::2].copy()
    images = [small, two_palms.image, open_palm.image, small]
    frames = [Frame(image, i, 0, "photo") for i, image in enumerate(images)]
    with DetectorProcess(frames, video=False, spin=spin) as process:
        out = list(process)
    for (frame, hands, _), image in zip(out, images):
        assert frame.image is image
        _same_hands(hands, detector.detect(image))
    assert [len(h) for _, h, _ in out] == [1, 2, 1, 1]


def test_detector_process_raises_when_the_process_dies_or_the_source_fails(open_palm):
    def photos(n):
        for i in range(n):
            yield Frame(open_palm.image, i, i * 40, "photo")

    with DetectorProcess(photos(100), video=True) as process:
        with pytest.raises(RuntimeError, match="hand detector process stopped"):
            for frame, _, _ in process:
                if frame.index == 2:
                    process._process.kill()

    def failing():
        yield Frame(open_palm.image, 0, 0, "photo")
        raise UserError("the camera stopped")

    with DetectorProcess(failing(), video=True) as process:
        with pytest.raises(UserError, match="camera stopped"):
            list(process)
    assert not process._process.is_alive()


def test_a_detector_gone_before_a_frame_is_sent_is_the_same_one_line_error(open_palm):
    """The detector killed while the demo draws: the next frame's send finds the pipe closed (it raised a
    BrokenPipeError, and the demo printed a traceback), and gives the error a wait for its answer gives."""
    frames = (Frame(open_palm.image, i, i * 40, "photo") for i in range(100))
    with DetectorProcess(frames, video=True) as process:
        with pytest.raises(DetectorDied, match=r"hand detector process stopped \(exit code -9\)"):
            for frame, _, _ in process:
                if frame.index == 2:
                    process._process.kill()
                    process._process.join()  # gone before the next frame is sent


def test_detector_process_reports_a_model_mediapipe_cannot_load(tmp_path, no_env):
    fake = tmp_path / "fake.task"
    with zipfile.ZipFile(fake, "w") as bundle:  # passes the bundle check, but holds no real models
        bundle.writestr("hand_detector.tflite", b"not a model")
        bundle.writestr("hand_landmarks_detector.tflite", b"not a model")
    with pytest.raises(UserError) as info:
        DetectorProcess([], fake)
    assert str(fake) in str(info.value) and "could not load" in str(info.value)
    assert "\n" not in str(info.value)
