"""Shared fixtures: the real data in ``../shared/data`` and one IMAGE-mode hand detector per session.

Tests that need real data skip with a clear reason when the shared folder is absent, so the
suite still runs (and says what it skipped) on a checkout without it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported

#: ``../shared`` next to the repository (the repository is ``<workspace>/main``).
SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"

#: A few real photos used across the tests (all from ``fingers/5``: open palms, fingers spread).
OPEN_PALM = "5/2_pic00004.jpg"  # one right hand, fingers spread, light wall behind
TWO_PALMS = "5/996_pic00037.jpg"  # two open hands, a right and a left
LEFT_PALM = "5/2_pic00094.jpg"  # one left hand, large in the frame


def require(path: Path, what: str) -> Path:
    """Return ``path`` if it exists, else skip the test saying which real data is missing."""
    if not path.exists():
        pytest.skip(f"real data missing: {what} ({path}); the tests expect the shared data folder at {SHARED}")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require(SHARED, "shared folder")


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    return require(shared_dir / "data", "shared data")


@pytest.fixture(scope="session")
def fingers_dir(data_dir: Path) -> Path:
    path = require(data_dir / "fingers", "fingers photos")
    for label in "012345":
        require(path / label, f"fingers/{label}")
    return path


@pytest.fixture(scope="session")
def videos_dir(data_dir: Path) -> Path:
    return require(data_dir / "videos", "videos")


@pytest.fixture(scope="session")
def images_dir(data_dir: Path) -> Path:
    return require(data_dir / "images", "images")


@pytest.fixture(scope="session")
def detector():
    """One IMAGE-mode HandDetector (2 hands) for the whole session, closed at the end."""
    from pipeline.hands import HandDetector

    with HandDetector(num_hands=2) as d:
        yield d


@dataclass(frozen=True)
class Detected:
    """A real photo and the hands MediaPipe found in it."""

    path: Path
    image: np.ndarray
    hands: list

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


@pytest.fixture(scope="session")
def detect(fingers_dir: Path, detector):
    """``detect("5/2_pic00004.jpg")``: the photo and its hands, detected once per session."""
    from pipeline.sources import read_image

    cache: dict[str, Detected] = {}

    def run(name: str) -> Detected:
        if name not in cache:
            path = require(fingers_dir / name, f"photo fingers/{name}")
            image = read_image(path)
            cache[name] = Detected(path, image, detector.detect(image))
        return cache[name]

    return run


@pytest.fixture(scope="session")
def open_palm(detect) -> Detected:
    found = detect(OPEN_PALM)
    assert len(found.hands) == 1, f"{OPEN_PALM}: expected one hand, MediaPipe found {len(found.hands)}"
    return found


@pytest.fixture(scope="session")
def two_palms(detect) -> Detected:
    found = detect(TWO_PALMS)
    assert len(found.hands) == 2, f"{TWO_PALMS}: expected two hands, MediaPipe found {len(found.hands)}"
    return found


@pytest.fixture(scope="session")
def left_palm(detect) -> Detected:
    found = detect(LEFT_PALM)
    assert [h.handedness for h in found.hands] == ["Left"], f"{LEFT_PALM}: expected one left hand"
    return found


# ---------------------------------------------------------------------------------------------
# A real window: a private X display, and waiting on a program's effects


@pytest.fixture
def xvfb():
    """A private X display; yields its DISPLAY value. Skips without Xvfb and xdotool."""
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: the window test needs them (apt-get install xvfb xdotool)")
    # -displayfd: Xvfb picks a free display number and writes it to us once it accepts clients.
    server = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        number = server.stdout.readline().strip()
        if not number.isdigit():
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


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
