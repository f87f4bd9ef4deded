"""The demo: the live path on real frames (batches, mirroring, where the heatmap lands), keys, the headless
CLI on each real video, bad inputs as one line, and once, a real window under Xvfb driven by xdotool."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported

from conftest import wait_for, window_program  # noqa: E402
from pipeline import demo  # noqa: E402
from pipeline.checkpoint import load_model  # noqa: E402
from pipeline.crops import crop_hand, warp_to_frame  # noqa: E402
from pipeline.errors import UserError, run_command  # noqa: E402
from pipeline.live import LivePipeline, StageTimes, mirror_hands  # noqa: E402
from pipeline.sources import Frame, VideoSource  # noqa: E402
from pipeline.viewer import WINDOW_TITLE, Action, ViewState, action_for_key, handle_key, run_session  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: The real videos (see ../shared/data/README.md): frames, (width, height), least share of frames with a hand.
VIDEOS = {
    "open_palm.mp4": (202, (640, 360), 0.95),
    "fist_then_thumbs_up.mp4": (195, (1280, 720), 0.8),  # the hand enters after about 1 s
    "typing.mp4": (96, (1920, 1080), 0.9),
}


@pytest.fixture(autouse=True)
def torch_settings():
    """The CLI tunes torch for the live path (1 thread, no oneDNN); give other tests theirs back."""
    threads, mkldnn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    yield
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = mkldnn


@pytest.fixture(scope="module")
def shipped():
    model, ckpt = load_model()
    return model, ckpt


def live_pipeline(shipped, **options) -> LivePipeline:
    model, ckpt = shipped
    return LivePipeline(model, ckpt["label_names"], ckpt["crop"], **options)


def video_path(videos_dir: Path, name: str) -> Path:
    path = videos_dir / name
    if not path.is_file():
        pytest.skip(f"real data missing: {path}")
    return path


def every_nth_frame(path: Path, step: int) -> list[Frame]:
    with VideoSource(path) as source:
        return [f for f in source if f.index % step == 0]


# ---------------------------------------------------------------------------------------------
# The live path on real frames


def test_a_frame_of_two_hands_equals_each_hand_alone(shipped, two_palms) -> None:
    both = live_pipeline(shipped, saliency=True)(two_palms.image, two_palms.hands)
    assert len(both.hands) == 2 and set(both.ms) == {"crop", "classify", "explain"}
    for k, hand in enumerate(two_palms.hands):
        alone = live_pipeline(shipped, saliency=True)(two_palms.image, [hand]).hands[0]
        assert np.array_equal(alone.crop.image, both.hands[k].crop.image)
        np.testing.assert_allclose(alone.probs, both.hands[k].probs, atol=1e-6)
        np.testing.assert_allclose(alone.cam, both.hands[k].cam, atol=1e-5)
        np.testing.assert_allclose(alone.saliency, both.hands[k].saliency, atol=1e-5)
        assert alone.cam.shape == (8, 8) and 0 <= alone.cam.min() and alone.cam.max() == pytest.approx(1.0)


def test_one_forward_classifies_and_explains_as_two_would(shipped, two_palms) -> None:
    """With Grad-CAM on, the Grad-CAM's forward classifies: same probabilities and maps as apart."""
    fused = live_pipeline(shipped)(two_palms.image, two_palms.hands)
    apart_live = live_pipeline(shipped, explain=False)
    apart = apart_live(two_palms.image, two_palms.hands)
    assert all(h.cam is None for h in apart.hands) and set(fused.ms) == set(apart.ms)
    apart_live.with_cam = True
    apart_live.explain(apart)  # the held-frame path: its own forward
    for a, b in zip(fused.hands, apart.hands):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)
        assert a.label == b.label
        np.testing.assert_allclose(a.cam, b.cam, atol=1e-6)


def test_two_hands_keep_their_tracks_when_the_detector_swaps_them(shipped, two_palms) -> None:
    live = live_pipeline(shipped)
    first = [h.track.id for h in live(two_palms.image, two_palms.hands).hands]
    swapped = [h.track.id for h in live(two_palms.image, two_palms.hands[::-1]).hands]
    assert swapped == first[::-1] and len(set(first)) == 2


def test_a_mirrored_view_gives_the_same_crops(shipped, two_palms) -> None:
    width = two_palms.image.shape[1]
    flipped = mirror_hands(two_palms.hands, width)
    assert [h.handedness for h in flipped] == [("Right" if h.is_left else "Left") for h in two_palms.hands]
    image = cv2.flip(two_palms.image, 1)
    settings = shipped[1]["crop"]
    for hand, mirrored in zip(two_palms.hands, flipped):
        a, b = crop_hand(two_palms.image, hand, settings), crop_hand(image, mirrored, settings)
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1


def test_the_heatmap_lies_on_the_hand(shipped, videos_dir, detector) -> None:
    """Frames of each real video: the Grad-CAM, warped back to the frame, has its mass in the hand's box."""
    checked = 0
    for name in VIDEOS:
        live = live_pipeline(shipped)
        for frame in every_nth_frame(video_path(videos_dir, name), 15):
            result = live(frame.image, detector.detect(frame.image))
            height, width = frame.image.shape[:2]
            for item in result.hands:
                if item.label is None:
                    continue  # no gesture: no heatmap is drawn
                heat = warp_to_frame(item.cam, item.cam_affine, item.cam.shape[0], (width, height))
                x0, y0, x1, y1 = item.hand.box()
                pad = 0.1 * max(x1 - x0, y1 - y0)  # landmarks sit inside the fingers' outline
                x0, y0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
                x1, y1 = int(np.ceil(x1 + pad)), int(np.ceil(y1 + pad))
                inside = heat[y0:y1, x0:x1].sum() / heat.sum()
                assert inside >= 0.7, f"{name} frame {frame.index}: {inside:.2f} of the heatmap in the hand's box"
                checked += 1
    assert checked >= 20


# ---------------------------------------------------------------------------------------------
# Keys and stage times


def test_keys_toggle_what_is_shown_and_what_is_computed(shipped) -> None:
    live = live_pipeline(shipped)
    state = ViewState()
    assert action_for_key(-1) is Action.NONE and action_for_key(ord("x")) is Action.NONE
    assert action_for_key(0x100000 | ord("q")) is Action.QUIT and action_for_key(27) is Action.QUIT
    assert handle_key(state, ord("c"), live) is Action.CAM and not state.cam and not live.with_cam
    assert "off" in state.message
    handle_key(state, ord("C"), live)
    assert state.cam and live.with_cam
    handle_key(state, ord("s"), live)
    assert state.saliency and live.with_saliency
    handle_key(state, ord("i"), live)
    assert not state.inset and not live.with_saliency  # no inset: no saliency to compute
    layers = [live.layer]
    for _ in range(2):
        handle_key(state, ord("n"), live)
        layers.append(live.layer)
    assert layers == ["conv2", "conv1", "conv2"] and "conv2" in state.message
    for key, name in (("l", "landmarks"), ("m", "mirror"), (" ", "paused")):
        before = getattr(state, name)
        handle_key(state, ord(key), live)
        assert getattr(state, name) != before
    assert handle_key(state, ord("p"), live) is Action.SCREENSHOT
    handle_key(state, ord("q"), live)
    assert state.quit


def test_stage_times_average_a_short_window() -> None:
    times = StageTimes(window=2)
    for k, now in enumerate([10.0, 10.1, 10.2, 10.3]):
        times.add({"detect": 10.0 * (k + 1), "draw": 1.0}, now)
    assert times.recent_ms()["detect"] == pytest.approx(35.0) and times.recent_ms()["crop"] == 0.0
    assert times.mean_ms()["detect"] == pytest.approx(25.0) and times.mean_ms()["draw"] == pytest.approx(1.0)
    assert times.recent_fps() == pytest.approx(10.0) and times.mean_fps() == pytest.approx(10.0)
    assert times.mean_fps(start=9.9) == pytest.approx(10.0)


def test_ctrl_c_ends_the_session_with_its_summary(shipped, open_palm) -> None:
    def frames_then_ctrl_c():
        for i in range(5):
            yield Frame(open_palm.image, i, i * 40, "photo"), open_palm.hands, 20.0
        raise KeyboardInterrupt

    summary, times, fps = run_session(frames_then_ctrl_c(), live_pipeline(shipped))
    assert summary.interrupted and summary.frames == summary.hand_frames == 5 and times.frames == 5
    assert summary.lines(times, fps)[0].startswith("frames=5 hand_frames=5 hand_share=1.000")


# ---------------------------------------------------------------------------------------------
# The CLI, headless, on each real video


def summary_of(out: str) -> dict[str, float]:
    values = {}
    for line in out.splitlines():
        for key, value in re.findall(r"(\w+)=([-\d.]+)", line):
            values[("ms_" if line.startswith("ms ") else "label_" if line.startswith("labels ") else "") + key] = float(value)
    return values


@pytest.mark.parametrize("name", list(VIDEOS))
def test_headless_run_writes_the_video_and_a_sane_summary(name, videos_dir, tmp_path, capsys) -> None:
    frames_in_file, size, least_hand_share = VIDEOS[name]
    out = tmp_path / "annotated.mp4"
    code = run_command(demo.main, ["--source", str(video_path(videos_dir, name)), "--headless", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    s = summary_of(text)
    assert s["frames"] == frames_in_file and s["hand_frames"] <= frames_in_file
    assert s["hand_share"] == pytest.approx(s["hand_frames"] / frames_in_file, abs=1e-3)
    assert s["hand_share"] >= least_hand_share, text
    assert 1 < s["fps"] < 1000
    assert all(s[f"ms_{k}"] > 0 for k in ("detect", "crop", "classify", "explain", "draw")), text
    assert s["ms_detect"] > s["ms_classify"]  # MediaPipe is the floor; a 28x28 LeNet costs little beside it
    labels = {k[6:]: v for k, v in s.items() if k.startswith("label_")}
    assert set(labels) <= {"fist", "one", "two", "three", "four", "five", "none"} and labels, text
    # A frame counts once per label shown in it: the shares add up to at least the frames with a hand.
    assert sum(labels.values()) >= s["hand_share"] - 1e-3
    capture = cv2.VideoCapture(str(out))
    try:
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames_in_file
        assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == size
        ok, first = capture.read()
    finally:
        capture.release()
    assert ok and first.std() > 10


def test_max_frames_stops_early(videos_dir, tmp_path, capsys) -> None:
    source = video_path(videos_dir, "open_palm.mp4")
    assert run_command(demo.main, ["--source", str(source), "--headless", "--max-frames", "12"]) == 0
    assert summary_of(capsys.readouterr().out)["frames"] == 12


# ---------------------------------------------------------------------------------------------
# Bad inputs: one line, exit code 2


def one_line_error(argv: list[str], capfd) -> str:
    code = run_command(demo.main, argv)
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def unknown_crop_model(tmp_path: Path) -> Path:
    ckpt = torch.load(REPO / "models" / "fingers.pt", weights_only=True)
    ckpt["crop_settings"] = {**ckpt["crop_settings"], "warp_mode": "fisheye"}
    path = tmp_path / "future.pt"
    torch.save(ckpt, path)
    return path


def test_bad_inputs_give_one_line(videos_dir, tmp_path, capfd, monkeypatch) -> None:
    video = str(video_path(videos_dir, "open_palm.mp4"))
    assert "no such model file" in one_line_error(["--model", str(tmp_path / "none.pt"), "--headless"], capfd)
    assert "unknown crop setting(s) warp_mode" in one_line_error(
        ["--model", str(unknown_crop_model(tmp_path)), "--source", video, "--headless"], capfd)
    assert "camera 9 could not be opened" in one_line_error(["--source", "9", "--headless"], capfd)
    assert "no layer 'conv9'" in one_line_error(["--source", video, "--layer", "conv9", "--headless"], capfd)
    assert "no spatial map" in one_line_error(["--source", video, "--layer", "fc1", "--headless"], capfd)
    assert "--threshold" in one_line_error(["--source", video, "--threshold", "1.5", "--headless"], capfd)
    assert "--out must end in" in one_line_error(["--source", video, "--out", str(tmp_path / "a.txt"), "--headless"], capfd)
    assert "no such file" in one_line_error(["--source", str(tmp_path / "missing.mp4"), "--headless"], capfd)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert "--headless" in one_line_error(["--source", video], capfd)  # a window needs a screen


# ---------------------------------------------------------------------------------------------
# A real window under Xvfb, driven by xdotool


def screenshots(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []


def test_window_keys_toggle_the_cam_save_screenshots_and_quit(videos_dir, xvfb, tmp_path, detector) -> None:
    video = video_path(videos_dir, "open_palm.mp4")
    shots = tmp_path / "shots"
    # Threshold 0: every hand shows its top class, so every frame has a heatmap to turn off.
    command = ["pipeline.demo", "--source", str(video), "--threshold", "0", "--screenshots", str(shots)]
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
