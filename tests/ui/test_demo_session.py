"""The demo session: keys, Ctrl-C, and once, a real window under Xvfb driven by xdotool."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported
from helpers import wait_for, window_program  # noqa: E402
from pipeline.lenet.checkpoint import load_model  # noqa: E402
from pipeline.live.compute import (
    Explain,  # noqa: E402
    LivePipeline,  # noqa: E402
)
from pipeline.preprocess.sources import Frame  # noqa: E402
from pipeline.ui.demo_session import WINDOW_TITLE, Action, ViewState, action_for_key, handle_key, requested, run_session  # noqa: E402


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def video_path(videos_dir: Path, name: str) -> Path:
    path = videos_dir / name
    if not path.is_file():
        pytest.skip(f"real data missing: {path}")
    return path


def test_keys_toggle_what_is_shown_and_what_is_computed(shipped) -> None:
    layers = LivePipeline(shipped).key_layers
    assert layers == ["input", "conv1", "act1", "conv2", "act2"]
    state = ViewState("conv2")
    assert action_for_key(-1) is Action.NONE and action_for_key(ord("x")) is Action.NONE
    assert action_for_key(0x100000 | ord("q")) is Action.QUIT and action_for_key(27) is Action.QUIT
    assert handle_key(state, ord("c"), layers) is Action.CAM and not state.cam and requested(state).layer is None
    assert "off" in state.message
    handle_key(state, ord("C"), layers)
    assert state.cam and requested(state) == Explain("conv2")
    handle_key(state, ord("s"), layers)
    assert state.saliency and requested(state).saliency
    handle_key(state, ord("i"), layers)
    assert not state.inset and not requested(state).saliency  # no inset: no saliency to compute
    seen = [state.layer]
    for _ in range(2):
        handle_key(state, ord("n"), layers)
        seen.append(state.layer)
    assert seen == ["conv2", "act2", "input"] and "input" in state.message
    for key, name in (("l", "landmarks"), ("m", "mirror"), (" ", "paused")):
        before = getattr(state, name)
        handle_key(state, ord(key), layers)
        assert getattr(state, name) != before
    assert handle_key(state, ord("p"), layers) is Action.SCREENSHOT
    handle_key(state, ord("q"), layers)
    assert state.quit


def test_ctrl_c_ends_the_session_with_its_summary(shipped, open_palm) -> None:
    def frames_then_ctrl_c():
        for i in range(5):
            yield Frame(open_palm.image, i, i * 40, "photo"), open_palm.hands, 20.0
        raise KeyboardInterrupt

    summary, times, fps = run_session(frames_then_ctrl_c(), LivePipeline(shipped))
    assert summary.interrupted and summary.frames == summary.hand_frames == 5 and times.frames == 5
    assert summary.lines(times, fps)[0].startswith("frames=5 hand_frames=5 hand_share=1.000")


def screenshots(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []


def test_window_keys_toggle_the_cam_save_screenshots_and_quit(videos_dir, xvfb, tmp_path, detector, trained_run) -> None:
    video = video_path(videos_dir, "open_palm.mp4")
    shots = tmp_path / "shots"
    # Threshold 0 and a model without a none class: every hand shows its top class, so every frame has a
    # heatmap to turn off.
    command = ["pipeline.demo", "--source", str(video), "--threshold", "0", "--screenshots", str(shots),
               "--model", str(trained_run / "model.pt")]
    with window_program(command, xvfb) as (process, xdotool):
        window = xdotool("search", "--sync", "--name", f"^{WINDOW_TITLE}$").split()[0]
        # A first screenshot shows that the window takes keys (one sent while it opens can be lost).
        xdotool("key", "--window", window, "p")
        wait_for(lambda: len(screenshots(shots)) == 1, 20, "a screenshot", process)
        # Pause, so the next two show the same frame. Keys go half a second apart: OpenCV's Qt
        # backend keeps only the last key of those that arrive within one redraw.
        xdotool("key", "--delay", "500", "--window", window, "space", "p")
        wait_for(lambda: len(screenshots(shots)) == 2, 10, "the screenshot with Grad-CAM on", process)
        xdotool("key", "--delay", "500", "--window", window, "c", "p")
        wait_for(lambda: len(screenshots(shots)) == 3, 10, "the screenshot with Grad-CAM off", process)
        xdotool("key", "--window", window, "q")
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert re.search(r"frames=\d+ hand_frames=\d+", output), output

    _, with_cam, without = screenshots(shots)
    index = int(re.search(r"frame(\d+)", with_cam.name)[1])
    assert f"frame{index:06d}" in without.name, "the pause did not hold the frame"
    a, b = cv2.imread(str(with_cam)), cv2.imread(str(without))
    assert a.shape == b.shape == (360, 640, 3) and a.std() > 20 and b.std() > 20  # the video, not a blank canvas
    # The two differ on the hand, where the heatmap was: find the hand in that frame of the video.
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok
    (hand,) = detector.detect(frame)
    x0, y0, x1, y1 = hand.box()
    pad = 0.1 * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = int(x0 - pad), int(y0 - pad), int(np.ceil(x1 + pad)), int(np.ceil(y1 + pad))
    changed = np.abs(a.astype(int) - b.astype(int)).max(-1) > 30
    on_hand = changed[y0:y1, x0:x1].sum()
    assert on_hand > 500, f"only {on_hand} pixels of the hand changed when Grad-CAM was turned off"
    # Elsewhere only the text changed (stats at the top, message at the bottom): not the picture.
    changed[y0:y1, x0:x1] = False
    assert changed[70:-70].sum() < 50
