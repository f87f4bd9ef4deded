"""Faults injected for real, command by command: each gives one clear line, exit code != 0, and what was saved
before it is intact. Read-only folders and full disks are real tmpfs mounts (root only; skipped otherwise),
kills are real signals, a dead display is a DISPLAY no X server answers on."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import DATA, REPO, error_line, index_rows, link, run_main

FINGERS = REPO / "data" / "fingers"
SMALL = REPO / "data" / "asl_letters"  # 270 crops, 13 groups: a quick training set
ENV = {**os.environ, "GLOG_minloglevel": "2"}


def run(*args: str, env: dict | None = None, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env or ENV,
                          timeout=timeout)


def one_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def mounted(path: Path, size: str | None = None, read_only: bool = False):
    """A real tmpfs at ``path``: ``size`` small for a full disk; ``read_only`` after ``path``'s files are copied in."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    path.mkdir(parents=True, exist_ok=True)
    options = ",".join(o for o in (f"size={size}" if size else "", "ro" if read_only else "") if o)
    done = subprocess.run(["mount", "-t", "tmpfs", *(["-o", options] if options else []), "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# ---------------------------------------------------------------------------------------------
# Saved work is never lost


@pytest.mark.slow
def test_resume_never_replaces_a_finished_run_and_checks_what_it_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run("pipeline.train", "--data", str(SMALL), "--out", str(out), "--epochs", "2", "--quiet").returncode == 0
    before = digest(out / "model.pt")
    line = one_line(run("pipeline.train", "--data", str(FINGERS), "--model", "lenet5-wide", "--out", str(out), "--resume",
                        "--epochs", "1", "--quiet"))
    assert "a finished run is already there" in line and digest(out / "model.pt") == before
    # An interrupted run (killed for real), resumed with another model or other data: refused, its state kept.
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.train", "--data", str(FINGERS), "--out", str(cut),
                             "--epochs", "40", "--quiet"], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (cut / "resume0.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert (cut / "resume0.pt").exists() and not (cut / "model.pt").exists()
    state = digest(cut / "resume0.pt")
    for args, what in ((["--data", str(FINGERS), "--model", "lenet5-max"], "model"),
                       (["--data", str(SMALL)], "data"),
                       (["--data", str(FINGERS), "--lr", "0.01"], "train")):
        line = one_line(run("pipeline.train", *args, "--out", str(cut), "--resume", "--epochs", "40", "--quiet"))
        assert "holds a run with another" in line and what in line, line
    assert digest(cut / "resume0.pt") == state


def test_two_imports_into_one_dataset_at_once_one_refused_naming_the_other(fingers_dir: Path, tmp_path: Path) -> None:
    for label in ("1", "2", "3"):
        for photo in sorted((fingers_dir / label).glob("*.jpg"))[:70]:
            link(photo, tmp_path / "src" / label / photo.name)
    data = tmp_path / "ds"
    first = subprocess.Popen([sys.executable, "-m", "pipeline.collect", "--from", str(tmp_path / "src"), "--data", str(data),
                              "--quiet"], cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (data / "index.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the first import ended before the second began"
    second = run("pipeline.collect", "--from", str(tmp_path / "src"), "--data", str(data), "--map", "1=uno", "--quiet")
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert f"pid {first.pid}" in one_line(second)
    rows = index_rows(data)
    assert len({r["id"] for r in rows}) == len(rows) and {r["label"] for r in rows} == {"1", "2", "3"}
    assert int(out.strip().splitlines()[-1].split()[0].split("=")[1]) == len(rows)


def test_an_import_into_a_damaged_index_is_refused_and_appends_nothing(fingers_dir: Path, tmp_path: Path) -> None:
    for photo in sorted((fingers_dir / "1").glob("*.jpg"))[:3]:
        link(photo, tmp_path / "src" / "one" / photo.name)
    data = tmp_path / "ds"
    assert run("pipeline.collect", "--from", str(tmp_path / "src"), "--data", str(data), "--quiet").returncode == 0
    index = data / "index.csv"
    index.write_text(index.read_text().replace(",group,", ",session,", 1))
    damaged = index.read_bytes()
    (tmp_path / "src" / "two").mkdir()
    link(next((fingers_dir / "2").glob("*.jpg")), tmp_path / "src" / "two" / "x.jpg")
    line = one_line(run("pipeline.collect", "--from", str(tmp_path / "src"), "--data", str(data), "--quiet"))
    assert f"{index}, line 1" in line and "group" in line and index.read_bytes() == damaged


# ---------------------------------------------------------------------------------------------
# Full disks and read-only folders


@pytest.mark.slow
def test_a_full_disk_under_demo_out_is_one_line_and_leaves_no_broken_video(tmp_path: Path) -> None:
    with mounted(tmp_path / "small", size="96k") as small:
        line = one_line(run("pipeline.demo", "--source", "sample", "--headless", "--out", str(small / "demo.mp4")))
        assert str(small / "demo.mp4") in line and "could not be written" in line
        assert list(small.iterdir()) == []  # neither a broken video nor its temporary file


def test_a_full_disk_under_train_is_one_line_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    with mounted(tmp_path / "small", size="160k") as small:
        line = one_line(run("pipeline.train", "--data", str(SMALL), "--out", str(small / "run"), "--epochs", "2", "--quiet"))
        assert "could not be written" in line and "inline_container" not in line
        assert not [p for p in (small / "run").iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("command", ["collect", "train", "evaluate", "explain", "study", "export"])
def test_a_read_only_out_is_one_line_before_any_work(command: str, fingers_dir: Path, tmp_path: Path) -> None:
    with mounted(tmp_path / "ro", read_only=True) as ro:
        args = {
            "collect": ["--from", str(fingers_dir), "--data", str(ro / "ds"), "--map", "0=fist"],
            "train": ["--data", str(SMALL), "--out", str(ro / "run")],
            "evaluate": ["--photos", str(fingers_dir), "--map", "0=fist", "--out", str(ro / "eval")],
            "explain": ["--data", str(SMALL), "--out", str(ro / "fig")],
            "study": ["--data", str(SMALL), "--out", str(ro / "study"), "--quick"],
            "export": ["--out", str(ro / "model.onnx")],
        }[command]
        start = time.monotonic()
        line = one_line(run(f"pipeline.{command}", *args, "--quiet") if command != "export" else
                        run("pipeline.export", *args))
        assert str(ro) in line and ("cannot" in line or "Read-only" in line), line
        assert time.monotonic() - start < 60  # refused up front: no import, training or detection ran first


def test_a_dataset_in_a_read_only_folder_loads_with_its_cache_in_the_user_cache(tmp_path: Path) -> None:
    with mounted(tmp_path / "ro") as ro:
        shutil.copytree(SMALL, ro / "asl_letters", ignore=shutil.ignore_patterns(".cache", ".lock"))
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        code = ("import sys; from pipeline.data.load import load_dataset; d = load_dataset(sys.argv[1]); "
                "print(len(d), int(d.images.sum()))")
        env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
        first = subprocess.run([sys.executable, "-c", code, str(ro / "asl_letters")], capture_output=True, text=True, env=env,
                               cwd=REPO, timeout=120)
        assert first.returncode == 0, first.stderr[-2000:]
        assert list((tmp_path / "cache" / "handcam").glob("*/images-*.npy"))  # the cache went where it could
        again = subprocess.run([sys.executable, "-c", code, str(ro / "asl_letters")], capture_output=True, text=True, env=env,
                               cwd=REPO, timeout=120)
        assert again.stdout == first.stdout


# ---------------------------------------------------------------------------------------------
# Bad input that gets one clear answer


def test_a_truncated_video_says_where_it_ended(videos_dir: Path, tmp_path: Path) -> None:
    whole = (videos_dir / "open_palm.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 4])
    proc = run("pipeline.demo", "--source", str(cut), "--headless")
    if proc.returncode == 2:  # so cut that not a frame decodes: that is one line too
        assert "no frame could be decoded" in one_line(proc) or "cannot open" in one_line(proc)
        return
    assert proc.returncode == 0, proc.stderr[-2000:]
    note = [line for line in proc.stderr.splitlines() if "ended after frame" in line]
    assert len(note) == 1 and "of the 202 its header promised" in note[0], proc.stderr[-2000:]


@pytest.mark.parametrize("source", ["7", "notes.mp4"])
def test_a_source_that_gives_no_frame_creates_no_dataset(source: str, tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n")
    data = tmp_path / "ds"
    line = one_line(run("pipeline.collect", "--source", source, "--data", str(data), "--label", "fist", "--headless",
                        cwd=tmp_path))
    assert ("camera 7" in line) if source == "7" else ("notes.mp4" in line)
    assert not data.exists()


@pytest.mark.parametrize("command", [["pipeline.demo", "--source", "sample"],
                                     ["pipeline.collect", "--source", "sample", "--label", "five"]])
def test_a_display_without_an_x_server_is_one_line(command: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")} | {"DISPLAY": ":87"}
    extra = ["--data", str(tmp_path / "ds")] if "pipeline.collect" in command else []
    line = one_line(run(*command, *extra, env=env))
    assert "no X server answers on DISPLAY=:87" in line and "--headless" in line
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("args, message", [
    (["pipeline.demo", "--threshold", "2"], "argument --threshold: must be between 0 and 1, got 2"),
    (["pipeline.demo", "--max-frames", "0"], "argument --max-frames: must be at least 1, got 0"),
    (["pipeline.demo", "--num-hands", "0"], "argument --num-hands: must be at least 1, got 0"),
    (["pipeline.collect", "--data", "x", "--label", "a", "--stride", "0"], "argument --stride: must be at least 1"),
    (["pipeline.collect", "--data", "x", "--label", "a", "--countdown", "-1"], "argument --countdown: must be at least 0"),
    (["pipeline.evaluate", "--photos", "x", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
])
def test_numeric_options_are_checked_by_argparse(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("label", ["café", "open palm", "two/three"])
def test_a_label_that_cannot_be_stored_or_drawn_is_refused_by_a_rule_its_message_states(label: str, tmp_path: Path) -> None:
    line = one_line(run("pipeline.collect", "--source", "sample", "--data", str(tmp_path / "ds"), "--label", label,
                        "--headless"))
    assert repr(label) in line and "ASCII letters, digits, '-' and '_'" in line and not (tmp_path / "ds").exists()


def test_every_command_refuses_a_model_of_digits_with_the_same_line(tmp_path: Path) -> None:
    import pipeline.demo as demo
    import pipeline.evaluate as evaluate
    import pipeline.explain as explain

    mnist = DATA / "mnist"
    if not mnist.is_dir():
        pytest.skip(f"real data missing: {mnist}")
    import torch

    from pipeline.data.public import load_mnist
    from pipeline.lenet.checkpoint import make_checkpoint, save_checkpoint
    from pipeline.lenet.model import build_model

    model = build_model("lenet5", 10)
    save_checkpoint(make_checkpoint([model], "lenet5", [str(d) for d in range(10)], None,
                                    data={"path": str(mnist)}), tmp_path / "digits.pt")
    assert len(load_mnist(mnist)) == 70000 and torch.is_tensor(model.layer("conv1").weight)
    lines = set()
    for module, args in ((explain, ["--data", str(FINGERS), "--out", str(tmp_path / "x")]),
                         (evaluate, ["--photos", str(tmp_path)]), (demo, ["--source", "sample", "--headless"])):
        code, _, err = run_main(module, "--model", str(tmp_path / "digits.pt"), *args)
        assert code == 2
        lines.add(error_line(err))
    assert len(lines) == 1 and "not on hand crops" in lines.pop()


# ---------------------------------------------------------------------------------------------
# Everyday friction


def test_the_first_command_on_a_machine_without_camera_or_screen_plays_the_sample_headless(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = run("pipeline.demo", "--max-frames", "20", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no screen (DISPLAY is not set): running without a window" in proc.stderr
    assert "no camera: playing the shipped sample clip" in proc.stderr
    videos = list((tmp_path / "runs" / "demo").glob("demo-*.mp4"))
    assert len(videos) == 1 and f"wrote runs/demo/{videos[0].name}" in proc.stdout and "frames=20" in proc.stdout
    strict = run("pipeline.demo", "--source", "0", "--headless", env=env, cwd=tmp_path)
    assert "camera 0 could not be opened" in one_line(strict)  # an explicit camera stays strict


@pytest.mark.slow
def test_outputs_are_never_replaced_without_force(tmp_path: Path) -> None:
    video = tmp_path / "demo.mp4"
    assert run("pipeline.demo", "--source", "sample", "--headless", "--max-frames", "5", "--out", str(video)).returncode == 0
    before = digest(video)
    assert "pass --force" in one_line(run("pipeline.demo", "--source", "sample", "--headless", "--max-frames", "5",
                                          "--out", str(video)))
    assert digest(video) == before
    again = run("pipeline.demo", "--source", "sample", "--headless", "--max-frames", "7", "--out", str(video), "--force")
    assert again.returncode == 0 and digest(video) != before


def test_train_prints_each_epoch_and_ctrl_c_says_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.train", "--data", str(FINGERS), "--out", str(out),
                             "--epochs", "40", "--quiet"], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("member 0 epoch 2/40:"):
            proc.send_signal(signal.SIGINT)
            break
    out_rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert [line.split(":")[0] for line in lines if line.startswith("member 0 epoch")] == ["member 0 epoch 1/40",
                                                                                          "member 0 epoch 2/40"]
    assert "run the same command with --resume to continue" in err and "Traceback" not in err


def detector_child(parent: int) -> int | None:
    """The pid of the demo's MediaPipe process (a spawned multiprocessing child, not its resource tracker)."""
    children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    for pid in children:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            return int(pid)
    return None


def test_a_killed_detector_is_one_line_and_the_video_so_far_plays(videos_dir: Path, tmp_path: Path) -> None:
    import cv2

    if shutil.which("pgrep") is None:
        pytest.skip("pgrep (procps) is needed to find the detector process")
    video = tmp_path / "demo.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.demo", "--source", str(videos_dir / "open_palm.mp4"),
                             "--headless", "--out", str(video), "--low-cpu"], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, child = time.monotonic() + 120, None
        while child is None and time.monotonic() < deadline:
            child = detector_child(proc.pid)
            time.sleep(0.2)
        assert child is not None
        partial = tmp_path / ".demo.part.mp4"  # frames are being written: the detector is past its start
        while (not partial.exists() or partial.stat().st_size < 20000) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(child, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "Traceback" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the hand detector process stopped" in errors[0] and str(video) in errors[0]
    frames = int(out.split("frames=")[1].split()[0])
    capture = cv2.VideoCapture(str(video))
    played = 0
    while capture.read()[0]:
        played += 1
    assert 0 < frames < 202 and played == frames
