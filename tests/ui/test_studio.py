"""The studio: record, train in the background, see the new model live, review; for real under Xvfb, and a
training process killed mid-run."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported
from helpers import DATA, error_line, index_rows, run_main, screenshot, wait_for, window_program  # noqa: E402
from pipeline import collect  # noqa: E402
from pipeline.data.coaching import data_hints, label_groups  # noqa: E402
from pipeline.data.store import INDEX, DatasetWriter, read_rows  # noqa: E402
from pipeline.lenet.checkpoint import load_model  # noqa: E402
from pipeline.preprocess.crops import CropSettings  # noqa: E402
from pipeline.preprocess.detector_process import detect_each  # noqa: E402
from pipeline.preprocess.hands import HandDetector  # noqa: E402
from pipeline.preprocess.sources import looped, open_source  # noqa: E402
from pipeline.training.background import Confusion, Finished  # noqa: E402
from pipeline.ui import review_grid  # noqa: E402
from pipeline.ui.keyscript import KeyScript, parse_keys  # noqa: E402
from pipeline.ui.studio_session import WINDOW_TITLE, Studio, run_studio  # noqa: E402

VIDEOS = DATA / "videos"
#: The camera of the window test: the open palm (8.1 s), then the fist (about 9.2-10.3 s) and the thumbs-up
#: (from about 10.6 s) of fist_then_thumbs_up.mp4, at 640x360 and 25 fps.
SCRIPT = ("space@0.3,space@7.8,2@9.2,space@9.25,space@10.25,3@10.8,space@10.85,space@15.5,"
          "t,p,wait-train,p@1.5,v,x,p")


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory) -> Path:
    """Two real clips, one after the other, as one video: five, then fist, then a thumbs-up for none."""
    parts = [VIDEOS / "open_palm.mp4", VIDEOS / "fist_then_thumbs_up.mp4"]
    for part in parts:
        if not part.is_file():
            pytest.skip(f"real data missing: {part}")
    path = tmp_path_factory.mktemp("clip") / "camera.mp4"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 360))
    for part in parts:
        capture = cv2.VideoCapture(str(part))
        while True:
            ok, image = capture.read()
            if not ok:
                break
            out.write(cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA))
        capture.release()
    out.release()
    return path


def shots(folder: Path, mode: str) -> list[Path]:
    return sorted(folder.glob(f"studio-{mode}-*.png"))


def shows_grid(pixels: np.ndarray) -> bool:
    """The review grid's dark canvas (gray 24) covers at least 30 % of the picture: not the camera's frame."""
    return bool((pixels == 24).all(-1).mean() > 0.3)


def test_window_records_trains_goes_live_and_reviews(camera_clip, xvfb, tmp_path):
    data, runs, pictures = tmp_path / "data", tmp_path / "runs", tmp_path / "shots"
    command = ["pipeline.collect", "--studio", "--source", str(camera_clip), "--data", str(data), "--label", "five",
               "--label", "fist", "--countdown", "0", "--stride", "1", "--runs", str(runs),
               "--screenshots", str(pictures), "--keys", SCRIPT]
    with window_program(command, xvfb) as (process, xdotool):
        window = xdotool("search", "--sync", "--name", f"^{WINDOW_TITLE}$").split()[0]
        # The script records for 15.5 s of the clip, trains (in another process), shows the new model live,
        # opens the review grid of 'none', deletes its newest sample and saves a screenshot; then it is ours.
        wait_for(lambda: shots(pictures, "review"), 240, "the review grid after training", process)
        trash = data / "trash" / INDEX
        assert len(read_rows(trash)) == 1
        # A click on the third tile deletes that sample too.
        x0, y0, x1, y1 = review_grid.tile_boxes((360, 640))[2]
        xdotool("mousemove", "--window", window, str((x0 + x1) // 2), str((y0 + y1) // 2), "click", "1")
        wait_for(lambda: trash.is_file() and len(read_rows(trash)) == 2, 10, "a click deleting a tile", process)
        grabbed = screenshot(xvfb, window, tmp_path / "window.png", shows=shows_grid)
        xdotool("key", "--window", window, "q")
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output

    # The index, the files and trash/ agree, and the printed counts are the index's.
    rows = index_rows(data)
    counts = {label: [r["label"] for r in rows].count(label) for label in ("five", "fist", "none")}
    assert counts["five"] >= 150 and counts["fist"] >= 15 and counts["none"] >= 80, counts
    assert re.search(rf"five={counts['five']} fist={counts['fist']} none={counts['none']} group=live-\S+ data=", output)
    assert len(rows) == len(list((data / "crops").glob("*/*.png"))) == len(list((data / "large").glob("*/*.png")))
    trashed = read_rows(data / "trash" / INDEX)
    ids = {r["id"] for r in rows}
    assert [r["label"] for r in trashed] == ["none", "none"] and not ids & {r["id"] for r in trashed}
    newest_none = max(int(r["id"]) for r in rows + trashed if r["label"] == "none")
    assert int(trashed[0]["id"]) == newest_none  # x deleted the selected tile: the newest
    for row in trashed:
        assert (data / "trash" / "crops" / "none" / f"{row['id']}.png").is_file()
    # One run, in runs/, of the recorded labels; the live view showed that model's labels.
    run = re.search(r"runs=1 failed=0 model=(\S+) val_accuracy=([\d.]+)", output)
    assert run, output
    model = load_model(run[1])
    assert Path(run[1]).parent.parent == runs and sorted(model.labels) == ["fist", "five", "none"]
    live = re.search(r"live frames=(\d+) (.*)", output)
    assert live and int(live[1]) >= 10, output
    shown = {kv.split("=")[0] for kv in live[2].split()}
    assert shown and shown <= set(model.labels), output  # "none" also stands for a hand with no gesture
    # A screenshot of each view: recording (the frame after t: while training), live, review.
    for mode in ("record", "live", "review"):
        assert len(shots(pictures, mode)) == 1, mode
        assert cv2.imread(str(shots(pictures, mode)[0])).shape == (360, 640, 3)
    review = cv2.imread(str(shots(pictures, "review")[0]))
    assert shows_grid(review)  # the grid's dark canvas, not the camera
    if grabbed is not None:  # the window itself shows the grid
        assert grabbed.shape[:2] == (360, 640) and shows_grid(grabbed)


def test_a_killed_training_run_is_one_line_and_recording_goes_on(tmp_path):
    video = VIDEOS / "open_palm.mp4"
    if not video.is_file():
        pytest.skip(f"real data missing: {video}")
    seen: dict[str, list] = {}

    def frames(items, studio):
        """The camera's frames; once the training process is up, it is killed (as the OOM killer would)."""
        for item in items:
            job = studio.state.training
            if job is not None and "killed" not in seen:
                seen["before"] = index_rows(tmp_path / "data")
                job.process.kill()
                seen["killed"] = []
            yield item

    with open_source(video) as src, HandDetector(video=True) as detector, \
            DatasetWriter(tmp_path / "data", CropSettings()) as writer:
        studio = Studio(writer, ["five", "other", "none"], "s1", tmp_path / "runs", tmp_path / "shots", stride=2,
                        countdown=0, say=lambda line: seen.setdefault("said", []).append(line))
        script = KeyScript(parse_keys("space@0.2,2@2.0,space@4.0,t,wait-train,space@0.5,space@1.5"))
        result = run_studio(frames(detect_each(looped(src), detector), studio), studio, None, script)
    line = "the training process died (killed by signal 9 (SIGKILL)); the recorded data is intact"
    assert result.failures == [line] and studio.state.status == line and seen["said"][-1] == line
    assert result.runs == [] and result.live is None
    # Every sample saved before the crash is there, unchanged, and recording after it added more.
    rows = index_rows(tmp_path / "data")
    assert rows[:len(seen["before"])] == seen["before"] and len(rows) > len(seen["before"])
    assert {r["label"] for r in rows[len(seen["before"]):]} == {"other"}
    assert result.counts == {"five": sum(r["label"] == "five" for r in rows), "other": sum(r["label"] == "other" for r in rows),
                             "none": 0}
    # The coaching lines, counted as samples came, say what the index says.
    assert studio.state.hints == data_hints(["five", "other", "none"], label_groups(rows))
    assert any(line.startswith("none: no samples") for line in studio.state.hints)


def test_confused_pairs_are_shown_with_the_heat_map_of_the_wrong_answer(tmp_path, samples, trained_run):
    from helpers import fill_dataset

    with fill_dataset(tmp_path / "data", samples) as writer:
        studio = Studio(writer, ["five", "palm"], "s1", tmp_path / "runs", tmp_path / "shots")
        five = [r["id"] for r in writer.rows() if r["label"] == "five"]
        mixed = (Confusion("five", "four", 2, 6, (five[0], five[1])), Confusion("five", "three", 1, 6, ("999999",)))
        studio._use(Finished(trained_run, 0.5, 0.5, 1.0, mixed))
        tiles = studio.state.trained.confusion_tiles
        crop = cv2.imread(str(writer.root / "crops" / "five" / f"{five[0]}.png"), cv2.IMREAD_GRAYSCALE)
    # The second pair's sample is gone (deleted in the review since): no tile for it.
    assert [caption for caption, _ in tiles] == ["five->four 2/6"]
    tile = tiles[0][1]
    assert tile.shape == (*crop.shape, 3) and np.abs(tile.astype(int) - crop[..., None]).max() > 50
    assert studio.state.mode.value == "live" and studio.result.runs[0].out == trained_run


@pytest.mark.parametrize("args, line", [
    (["--headless"], "error: --studio --headless needs a --keys script (with no window, nobody presses keys)"),
    (["--keys", "space,spce"], "error: --keys: step 2 'spce' is not a key"),
    (["--from", "x"], "error: --studio records live (--source); import with --from DIR without it"),
])
def test_studio_refusals_are_one_line_and_create_nothing(tmp_path, args, line):
    code, _, err = run_main(collect, "--studio", "--data", str(tmp_path / "data"), "--label", "five", *args)
    assert code == 2 and error_line(err).startswith(line) and not (tmp_path / "data").exists()


def test_a_script_whose_t_starts_no_run_fails(tmp_path):
    video = VIDEOS / "open_palm.mp4"
    if not video.is_file():
        pytest.skip(f"real data missing: {video}")
    code, out, err = run_main(collect, "--studio", "--headless", "--source", str(video), "--data", str(tmp_path / "d"),
                              "--label", "five", "--countdown", "0", "--keys", "space@0.2,space@1,t,wait-train")
    assert code == 1, err
    assert "t started no run: record at least two gestures first (t trains on what is recorded)" in err
    assert re.search(r"^five=\d+ none=0 group=live-\S+ data=", out, re.M) and "runs=0 failed=0" in out


def test_quitting_while_training_stops_the_run_in_one_line_and_keeps_the_data(tmp_path):
    video = VIDEOS / "open_palm.mp4"
    if not video.is_file():
        pytest.skip(f"real data missing: {video}")
    data = tmp_path / "d"
    code, out, err = run_main(collect, "--studio", "--headless", "--source", str(video), "--data", str(data),
                              "--label", "five", "--label", "other", "--countdown", "0", "--runs", str(tmp_path / "runs"),
                              "--keys", "space@0.2,2@1,space@2,t,q")
    assert code == 0, err
    assert re.search(r"^training stopped on quit, before it finished \(\S+studio-\S+\)$", err, re.M), err
    rows = index_rows(data)
    counts = re.search(r"^five=(\d+) other=(\d+) none=0 group=", out, re.M)
    assert counts and (int(counts[1]), int(counts[2])) == (sum(r["label"] == "five" for r in rows),
                                                             sum(r["label"] == "other" for r in rows))
    assert len(rows) == len(list((data / "crops").glob("*/*.png"))) and "runs=0 failed=0" in out


def test_the_studio_without_a_screen_says_how_to_run_it_without_one(tmp_path, monkeypatch):
    """Its headless run needs a --keys script, so the hint names it (collect's recorder says --headless alone)."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    code, _, err = run_main(collect, "--studio", "--source", "sample", "--data", str(tmp_path / "d"), "--label", "a")
    assert code == 2 and "no screen for the studio window" in error_line(err)
    assert "add --headless --keys SCRIPT" in error_line(err) and not (tmp_path / "d").exists()
