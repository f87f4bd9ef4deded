"""Helpers the tests share (not fixtures): waiting on a program's effects, running a window program on a display."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

#: The checkout (tests run from it) and ``../shared`` beside it, which holds the real data.
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"


def require(path: Path, what: str) -> Path:
    """Return ``path`` if it exists, else skip the test saying which real data is missing."""
    if not path.exists():
        pytest.skip(f"real data missing: {what} ({path}); the tests expect the shared data folder at {SHARED}")
    return path


def wait_for(condition, seconds: float, what: str, process: subprocess.Popen) -> None:
    """Poll until ``condition()``; fail saying what did not happen (a video that ran out, a lost key)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    output = process.communicate()[0]
    pytest.fail(f"{what} did not happen within {seconds} s (exit code {process.returncode}); output:\n{output[-2000:]}")


@contextlib.contextmanager
def window_program(args: list[str], display: str) -> Iterator[tuple[subprocess.Popen, Callable[..., str]]]:
    """Run ``python -m <args>`` from the repository on ``display``; yields the process and an ``xdotool(*args)``
    that talks to the same display. The process is killed at the end if it is still running."""
    env = {**os.environ, "DISPLAY": display, "GLOG_minloglevel": "2", "QT_QPA_PLATFORM": "xcb"}
    process = subprocess.Popen([sys.executable, "-m", *args], cwd=Path(__file__).resolve().parents[1], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def xdotool(*words: str) -> str:
        return subprocess.run(["xdotool", *words], env=env, capture_output=True, text=True, timeout=60, check=True).stdout

    try:
        yield process, xdotool
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def screenshot(display: str, window: str, path: Path, shows: Callable[[np.ndarray], bool] | None = None,
               seconds: float = 5.0) -> np.ndarray | None:
    """The window's pixels (RGB) via Pillow's X grab, saved to ``path``; None where Pillow lacks XCB.

    With ``shows``, grabs again until ``shows(pixels)`` holds or ``seconds`` pass, and returns the last grab:
    an X server without a compositor keeps no copy of a window, so a grab made while the window repaints
    (after a click, a resize) reads the bare background.

    A window still one flat colour after a second is mapped again, once: without a window manager, Qt now
    and then never paints a window it has just mapped, although the program shows a frame each turn (about
    1 run in 10 on a busy 2-core machine; the whole screen reads black). Mapping it again makes it paint.
    """
    try:
        from PIL import ImageGrab, features
    except ImportError:
        return None
    if not features.check("xcb"):
        return None
    start = time.monotonic()
    deadline, remapped = start + seconds, False
    env = {**os.environ, "DISPLAY": display}
    while True:
        geometry = subprocess.run(["xdotool", "getwindowgeometry", "--shell", window], capture_output=True,
                                  text=True, env=env).stdout
        g = dict(line.split("=", 1) for line in geometry.split())
        x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        image = ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=display)
        pixels = np.asarray(image)
        if shows is None or shows(pixels) or time.monotonic() > deadline:
            image.save(path)
            return pixels
        if not remapped and pixels.std() == 0 and time.monotonic() > start + 1.0:
            for step in ("windowunmap", "windowmap"):
                subprocess.run(["xdotool", step, "--sync", window], env=env, check=True, timeout=30)
            remapped = True
        time.sleep(0.1)


def run_main(module, *args: str) -> tuple[int, str, str]:
    """Run a command's ``main`` in this process as its console script would: ``(exit code, stdout, stderr)``.

    A user error is its one ``error:`` line and exit 2; argparse's refusals exit 2 with their usage lines.
    """
    from pipeline.errors import run_command

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_command(module.main, list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def error_line(err: str) -> str:
    """The last line of stderr, which must be the only line that is not argparse's usage."""
    lines = [line for line in err.strip().splitlines() if line and not line.startswith(("usage:", " "))]
    assert len(lines) == 1, err
    return lines[0]


def add_sample(writer, sample, label: str = "five", group: str = "g1", source: str | None = None, frame: int = 0):
    """Add one of the ``samples`` fixture's hands to a DatasetWriter (frame ``frame``, 40 ms apart)."""
    from pipeline.data.store import Origin

    photo, i, hand, crop = sample
    return writer.add(crop, hand, label, group, Origin(source or photo.path.name, frame, 40 * frame, i, photo.size))


def fill_dataset(root: Path, samples, n_groups: int = 3):
    """Twelve rows: the four hands under labels five/palm, spread over ``n_groups`` groups; returns the open writer."""
    from pipeline.data.store import DatasetWriter
    from pipeline.preprocess.crops import CropSettings

    writer = DatasetWriter(root, CropSettings())
    for k in range(12):
        add_sample(writer, samples[k % 4], label=("five", "palm")[k % 2], group=f"s{k % n_groups}", source=f"f{k}.jpg")
    return writer


def index_rows(root: Path) -> list[dict]:
    """The rows of a dataset's index."""
    from pipeline.data.store import INDEX, read_rows

    return read_rows(root / INDEX)


def link(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` (a symbolic link, or a copy where links are not allowed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(source)
    except OSError:
        target.write_bytes(source.read_bytes())


def wait_for_cpus(ray, cpus: float, seconds: float = 20.0) -> float:
    """Wait until the Ray session has ``cpus`` CPUs free again (the work left the cluster); returns what is free."""
    deadline = time.monotonic() + seconds
    while (free := ray.available_resources().get("CPU", 0.0)) < cpus and time.monotonic() < deadline:
        time.sleep(0.1)
    return free


def assert_same_hands(data: Path, expected: Path) -> None:
    """Two imports saved the same hands: the same rows in the same order (source, frame, hand, label, group,
    handedness, mirroring), landmarks within 1e-4, the same crops pixel for pixel, the same finished files."""
    import numpy as np

    from pipeline.data.store import LANDMARK_COLUMNS

    key = ("id", "source", "frame", "hand", "label", "group", "handedness", "mirrored")
    rows, want = index_rows(data), index_rows(expected)
    assert [tuple(r[k] for k in key) for r in rows] == [tuple(r[k] for k in key) for r in want]
    marks = np.array([[float(r[c]) for c in LANDMARK_COLUMNS] for r in rows])
    assert np.abs(marks - np.array([[float(r[c]) for c in LANDMARK_COLUMNS] for r in want])).max() <= 1e-4
    for r in rows:  # the crops themselves, pixel for pixel
        assert (data / "crops" / r["label"] / f"{r['id']}.png").read_bytes() == \
            (expected / "crops" / r["label"] / f"{r['id']}.png").read_bytes()
    assert (data / "files.csv").read_text() == (expected / "files.csv").read_text()


def ctrl_c_at_add(writer, n: int) -> None:
    """Make ``writer.add`` raise ``KeyboardInterrupt`` at its ``n``-th call, as a Ctrl-C there would: the ``n - 1``
    samples before it are saved."""
    real_add, calls = writer.add, []

    def add_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real_add(*args, **kwargs)

    writer.add = add_then_ctrl_c


def init_then_poison(poison: str, *args) -> None:
    """A detection worker's real set-up (``photo_folders._init_worker(*args)``); then the real detection,
    except that the file named ``poison`` kills the process, as a crash in MediaPipe's native code would."""
    import pipeline.preprocess.photo_folders as photo_folders

    photo_folders._init_worker(*args)
    real = photo_folders._process

    def process(task):
        if task.path.name == poison:
            os._exit(11)
        return real(task)

    photo_folders._process = process  # what the pickled reference to _process finds in this process
