"""The recording session: keys, countdown, stride, undo, headless recording, Ctrl-C, and once a real window under Xvfb."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported
from helpers import screenshot, wait_for, window_program  # noqa: E402
from pipeline import collect  # noqa: E402
from pipeline.data.store import DatasetWriter, Sample  # noqa: E402
from pipeline.draw.annotations import paste_inset  # noqa: E402
from pipeline.errors import UserError  # noqa: E402
from pipeline.preprocess.crops import CropSettings, crop_hand  # noqa: E402
from pipeline.ui.collect_session import (  # noqa: E402
    ESC,
    WINDOW_TITLE,
    Action,
    RecorderState,
    action_for_key,
    handle_key,
    inset_zoom,
    record_live,
    render,
)

REPO = Path(__file__).resolve().parents[2]


SHARED = Path(__file__).resolve().parents[3] / "shared"


VIDEO = SHARED / "data" / "videos" / "open_palm.mp4"


VIDEO_FRAMES = 202  # 640x360, 25 fps, a hand in every frame (see ../shared/data/README.md)


@pytest.fixture(scope="module")
def video() -> Path:
    if not VIDEO.is_file():
        pytest.skip(f"real data missing: {VIDEO} (the tests expect the shared data folder at {SHARED})")
    return VIDEO


def key(char: str) -> int:
    return ord(char)


class FakeWriter:
    """Stands in for DatasetWriter.undo(): pops the samples it was given, and counts the calls."""

    def __init__(self, samples: list[Sample]):
        self.samples = list(samples)
        self.calls = 0

    def undo(self) -> Sample | None:
        self.calls += 1
        return self.samples.pop() if self.samples else None


def read_index(root: Path) -> list[dict]:
    with open(root / "index.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.png")) if folder.is_dir() else []


def test_keys_map_to_actions():
    assert action_for_key(-1) == (Action.NONE, -1)
    assert action_for_key(key("1")) == (Action.LABEL, 0)
    assert action_for_key(key("9")) == (Action.LABEL, 8)
    assert action_for_key(key("0")) == (Action.LABEL, 9)
    assert action_for_key(key("[")) == (Action.PREVIOUS, -1)
    assert action_for_key(key("]")) == (Action.NEXT, -1)
    assert action_for_key(key(" ")) == (Action.TOGGLE, -1)
    assert action_for_key(key("u")) == (Action.UNDO, -1)
    assert action_for_key(key("q")) == (Action.QUIT, -1)
    assert action_for_key(ESC) == (Action.QUIT, -1)
    assert action_for_key(key("x")) == (Action.NONE, -1)
    assert action_for_key(0x100000 | key("q")) == (Action.QUIT, -1)  # modifier bits above the character


def test_label_keys_reach_past_ten_labels():
    labels = [f"g{i}" for i in range(12)]
    state = RecorderState(labels)
    writer = FakeWriter([])
    for expected in range(1, 12):
        handle_key(state, key("]"), 0.0, writer)
        assert state.current == expected
    assert state.label == "g11"  # the 12th label: no key of its own, reached with ]
    handle_key(state, key("]"), 0.0, writer)
    assert state.current == 0  # wraps around
    handle_key(state, key("["), 0.0, writer)
    assert state.current == 11
    handle_key(state, key("0"), 0.0, writer)
    assert state.label == "g9"
    handle_key(state, key("5"), 0.0, writer)
    assert state.label == "g4"
    handle_key(state, key("["), 0.0, writer)
    assert state.label == "g3"


def test_digit_past_the_labels_changes_nothing():
    state = RecorderState(["a", "b", "c"])
    handle_key(state, key("2"), 0.0, FakeWriter([]))
    handle_key(state, key("7"), 0.0, FakeWriter([]))
    assert state.label == "b"
    assert "no label 7" in state.message and "3" in state.message


def test_space_counts_down_then_records_every_stride_th_frame():
    state = RecorderState(["a", "b"], countdown=3.0, stride=2)
    writer = FakeWriter([])
    assert not state.take_frame(100.0)  # not recording
    assert handle_key(state, key(" "), 100.0, writer) is Action.TOGGLE
    assert state.recording and state.seconds_left(101.0) == pytest.approx(2.0)
    assert [state.take_frame(t) for t in (100.5, 101.0, 102.9)] == [False] * 3  # countdown
    assert [state.take_frame(103.0 + 0.04 * i) for i in range(5)] == [True, False, True, False, True]
    handle_key(state, key(" "), 104.0, writer)
    assert not state.recording and not state.take_frame(104.1)
    assert state.seconds_left(104.1) == 0.0
    assert state.message == "stopped; 'a' has 0"
    # Stopped before its countdown ended: the message says nothing was saved.
    handle_key(state, key(" "), 110.0, writer)
    handle_key(state, key(" "), 112.0, writer)
    assert state.message == "stopped before the countdown ended: nothing saved; 'a' has 0"


def test_switching_label_while_recording_restarts_the_countdown():
    state = RecorderState(["a", "b"], countdown=2.0, stride=1)
    writer = FakeWriter([])
    handle_key(state, key(" "), 10.0, writer)
    assert state.take_frame(12.0)
    handle_key(state, key("2"), 13.0, writer)  # time to change the gesture before saving as 'b'
    assert state.label == "b" and state.recording
    assert not state.take_frame(14.9)
    assert state.take_frame(15.0)


def test_switching_label_while_stopped_does_not_start():
    state = RecorderState(["a", "b"], countdown=0.0)
    handle_key(state, key("]"), 1.0, FakeWriter([]))
    assert state.label == "b" and not state.recording and not state.take_frame(1.0)


def test_undo_calls_the_writer_and_updates_counts():
    state = RecorderState(["a", "b"], counts={"a": 5, "b": 2})
    writer = FakeWriter([Sample("000006", "a", "g", "cam", 3), Sample("000007", "b", "g", "cam", 4)])
    assert handle_key(state, key("u"), 0.0, writer) is Action.UNDO
    assert writer.calls == 1 and state.counts == {"a": 5, "b": 1} and "000007" in state.message
    handle_key(state, key("u"), 0.0, writer)
    assert writer.calls == 2 and state.counts == {"a": 4, "b": 1}
    handle_key(state, key("u"), 0.0, writer)
    assert writer.calls == 3 and state.counts == {"a": 4, "b": 1} and "nothing to undo" in state.message


def test_quit_and_unknown_keys():
    state = RecorderState(["a"])
    assert handle_key(state, -1, 0.0, FakeWriter([])) is Action.NONE and not state.quit
    assert handle_key(state, key("z"), 0.0, FakeWriter([])) is Action.NONE and not state.quit
    handle_key(state, key("q"), 0.0, FakeWriter([]))
    assert state.quit
    state = RecorderState(["a"])
    handle_key(state, ESC, 0.0, FakeWriter([]))
    assert state.quit


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="--label"):
        RecorderState([])
    with pytest.raises(UserError, match="--stride"):
        RecorderState(["a"], stride=0)
    with pytest.raises(UserError, match="--countdown"):
        RecorderState(["a"], countdown=-1)


def test_render_draws_on_a_copy_with_the_crop_inset(video):
    import cv2

    from pipeline.preprocess.hands import HandDetector

    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    capture.release()
    assert ok
    with HandDetector(num_hands=1) as detector:
        hands = detector.detect(frame)
    assert len(hands) == 1
    crop = crop_hand(frame, hands[0], CropSettings())
    before = frame.copy()
    state = RecorderState(["a", "b"], countdown=0.0)
    state.start(0.0)
    view = render(frame, [(hands[0], crop)], state, 1.0)
    assert np.array_equal(frame, before), "render must not draw on the caller's frame"
    assert view.shape == frame.shape and not np.array_equal(view, frame)
    # The inset is the crop enlarged by nearest neighbour, at the top-right corner (inside its 1 px border).
    zoom = inset_zoom(frame.shape[0], 28)
    expected = np.repeat(np.repeat(crop.image, zoom, 0), zoom, 1)
    x0, y0, x1, y1 = paste_inset(np.zeros_like(frame), crop.image, "top-right", zoom)
    assert (x1 - x0, y1 - y0) == (28 * zoom, 28 * zoom)
    assert np.array_equal(view[y0 + 1:y1 - 1, x0 + 1:x1 - 1, 1], expected[1:-1, 1:-1])
    # The REC box is red (BGR) at the top-left.
    top_left = view[8:30, 8:60].reshape(-1, 3).astype(int)
    assert ((top_left[:, 2] > 200) & (top_left[:, 1] < 80) & (top_left[:, 0] < 80)).mean() > 0.3


def test_window_mode_without_a_screen_is_a_user_error(tmp_path, monkeypatch):
    # OpenCV's Qt backend would abort the process (exit 134); the user gets one line instead.
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(UserError, match="--headless"):
        record_live("does-not-matter.mp4", tmp_path / "data", CropSettings(), ["a"], "g", None, 1, 3, 0.0, headless=False)
    assert not (tmp_path / "data").exists()


def test_headless_records_every_stride_th_frame(video, tmp_path, capsys):
    data = tmp_path / "data"
    code = collect.main(["--source", str(video), "--data", str(data), "--label", "a", "--label", "b",
                         "--group", "g1", "--stride", "10", "--headless"])
    assert code == 0
    rows = read_index(data)
    crops = pngs(data / "crops")
    assert len(rows) == len(crops) == len(pngs(data / "large"))
    # Frames 0, 10, ..., 200 and one hand in each: 21, allowing MediaPipe to miss a frame or two.
    assert 19 <= len(rows) <= 21
    frames = [int(r["frame"]) for r in rows]
    assert len(set(frames)) == len(frames) and all(f % 10 == 0 and 0 <= f < VIDEO_FRAMES for f in frames)
    assert {r["label"] for r in rows} == {"a"} and {r["group"] for r in rows} == {"g1"}
    assert {r["source"] for r in rows} == {str(video)}
    assert {(r["width"], r["height"]) for r in rows} == {("640", "360")}
    assert sorted(p.stem for p in crops) == sorted(r["id"] for r in rows)
    assert all(p.parent.name == "a" for p in crops)
    out = capsys.readouterr().out
    assert f"a={len(rows)} b=0 group=g1 data={data}" in out


def test_max_frames_stops_a_recording_after_that_many_frames_of_the_source(video, tmp_path, capsys):
    data = tmp_path / "data"
    code = collect.main(["--source", str(video), "--data", str(data), "--label", "a", "--stride", "10",
                         "--max-frames", "45", "--headless"])
    assert code == 0
    frames = sorted(int(r["frame"]) for r in read_index(data))
    assert 4 <= len(frames) <= 5 and set(frames) <= {0, 10, 20, 30, 40}  # of its 202 frames, the first 45
    for mode in (["--from", str(tmp_path)], ["--studio", "--source", str(video), "--label", "a"]):
        with pytest.raises(UserError, match="--max-frames stops a live recording"):
            collect.main([*mode, "--data", str(tmp_path / "other"), "--max-frames", "5"])
    assert not (tmp_path / "other").exists()


def test_ctrl_c_keeps_every_saved_sample(video, tmp_path):
    data = tmp_path / "data"
    command = [sys.executable, "-m", "pipeline.collect", "--source", str(video), "--data", str(data),
               "--label", "a", "--stride", "1", "--headless"]
    # SIGINT back to its default in the child: a shell may start us with it ignored, and Python keeps that.
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "GLOG_minloglevel": "2"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: len(labels_in(data)) >= 5, 60, "saving in headless mode", process)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 130, output
    rows = read_index(data)
    assert 5 <= len(rows) < VIDEO_FRAMES, "the run was not interrupted"
    # Every indexed sample has both images; at most the one being written when Ctrl-C came is
    # left without a row (the writer writes the row last), and reopening the dataset works.
    for r in rows:
        for sub in ("crops", "large"):
            assert (data / sub / "a" / f"{r['id']}.png").is_file(), (sub, r["id"])
    assert 0 <= len(pngs(data / "crops")) - len(rows) <= 1
    with DatasetWriter(data, CropSettings()) as writer:
        assert writer.counts() == {"a": len(rows)}


def labels_in(data: Path) -> list[str]:
    return [r["label"] for r in read_index(data)] if (data / "index.csv").is_file() else []


def shows_recording(pixels: np.ndarray) -> bool:
    """The video with the overlay (not a blank canvas) and red in it: the REC indicator and the skeleton."""
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    return bool(pixels.std() > 20 and red.sum() > 200)


def test_window_records_switches_label_undoes_and_quits(video, xvfb, tmp_path):
    data = tmp_path / "data"
    command = ["pipeline.collect", "--source", str(video), "--data", str(data),
               "--label", "a", "--label", "b", "--countdown", "0", "--stride", "2"]
    with window_program(command, xvfb) as (process, xdotool):
        window = xdotool("search", "--sync", "--name", f"^{WINDOW_TITLE}$").split()[0]
        # The video plays in real time (202 frames at 25 fps: 8 s). Each step waits for its effect on
        # disk, so a slow machine only makes the test slower, never flaky.
        xdotool("key", "--window", window, "space")
        wait_for(lambda: labels_in(data).count("a") >= 3, 6, "recording under 'a'", process)
        xdotool("key", "--window", window, "2")
        wait_for(lambda: labels_in(data).count("b") >= 3, 6, "recording under 'b'", process)
        shot = screenshot(xvfb, window, tmp_path / "window.png", shows=shows_recording)
        xdotool("key", "--window", window, "u")
        wait_for(lambda: len(pngs(data / "trash" / "crops")) == 1, 6, "undo", process)
        xdotool("key", "--window", window, "q")
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output

    rows = read_index(data)
    crops = pngs(data / "crops")
    trash = pngs(data / "trash" / "crops")
    assert len(rows) == len(crops) == len(pngs(data / "large"))
    counts = {label: [r["label"] for r in rows].count(label) for label in ("a", "b")}
    assert counts["a"] >= 3 and counts["b"] >= 2, counts
    # Undo removed exactly one sample: it is in trash/, not in the index; ids stay unique and gapless.
    assert len(trash) == 1 and len(pngs(data / "trash" / "large")) == 1
    ids = {r["id"] for r in rows}
    assert trash[0].stem not in ids and trash[0].parent.name == "b"
    assert sorted(ids | {trash[0].stem}) == [f"{i:06d}" for i in range(len(rows) + 1)]
    # Stride 2 while recording: saved frames of one label are 2 apart.
    frames_a = [int(r["frame"]) for r in rows if r["label"] == "a"]
    assert all(b - a == 2 for a, b in zip(frames_a, frames_a[1:])), frames_a
    summary = re.search(r"a=(\d+) b=(\d+) group=live-\S+ data=", output)
    assert summary and (int(summary[1]), int(summary[2])) == (counts["a"], counts["b"]), output
    if shot is not None:  # the window showed the video with the overlay, not a blank canvas
        assert shot.shape[:2] == (360, 640) and shows_recording(shot), "no red REC indicator / skeleton in the window"
