"""``python -m pipeline.demo`` headless on each real video, and bad inputs as one line."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import cv2
import pytest
import torch

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported
from helpers import error_line, run_main  # noqa: E402
from pipeline import demo  # noqa: E402
from pipeline.errors import run_command  # noqa: E402
from pipeline.lenet.checkpoint import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[2]


#: The real videos (see ../shared/data/README.md): frames, (width, height), least share of frames with a hand.
VIDEOS = {
    "open_palm.mp4": (202, (640, 360), 0.95),
    "fist_then_thumbs_up.mp4": (195, (1280, 720), 0.8),  # the hand enters after about 1 s
    "typing.mp4": (96, (1920, 1080), 0.9),
}


def video_path(videos_dir: Path, name: str) -> Path:
    path = videos_dir / name
    if not path.is_file():
        pytest.skip(f"real data missing: {path}")
    return path


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
    assert "fps" in s and all(f"ms_{k}" in s for k in ("detect", "crop", "classify", "explain", "draw")), text  # speed: benchmarks/
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


def one_line_error(argv: list[str], capfd) -> str:
    code, _, err = run_main(demo, *argv)
    assert code == 2, err
    return error_line(err)


def unknown_crop_model(tmp_path: Path) -> Path:
    ckpt = torch.load(DEFAULT_MODEL, weights_only=True)
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
    assert "layer 'conv9' has no spatial map for Grad-CAM" in one_line_error(["--source", video, "--layer", "conv9", "--headless"], capfd)
    assert "no spatial map" in one_line_error(["--source", video, "--layer", "fc1", "--headless"], capfd)
    assert "--threshold" in one_line_error(["--source", video, "--threshold", "1.5", "--headless"], capfd)
    assert "--out must end in" in one_line_error(["--source", video, "--out", str(tmp_path / "a.txt"), "--headless"], capfd)
    assert "no such file" in one_line_error(["--source", str(tmp_path / "missing.mp4"), "--headless"], capfd)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert "--headless" in one_line_error(["--source", video], capfd)  # a window needs a screen
