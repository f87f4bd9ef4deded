"""The OpenCV window that collect and demo share: a screen check, the window itself, real-time pacing.

Nothing here knows what is drawn or what a key means; :mod:`pipeline.ui.collect_session` and
:mod:`pipeline.ui.demo_session` bring their own frames and key handling.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import UserError

ESC = 27
#: Largest window side on screen; bigger frames are shown scaled down (they are saved full size).
MAX_WINDOW_SIDE = 1280


def key_code(key: int) -> int:
    """A ``cv2.waitKey`` code without the modifier bits some backends set above the character (-1 stays -1)."""
    return key if key < 0 else key & 0xFF


def screen_problem() -> str | None:
    """Why no window can open here, or None when one can (Linux: an X or Wayland display that answers).

    OpenCV's Qt backend aborts the whole process when it cannot reach a display (exit 134, "Reinstalling
    the application may fix this problem"), so the display is tried first: a local X display's
    socket, a remote one's TCP port (``ssh -X``), or the Wayland socket.
    """
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland:
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        return None if (Path(runtime) / wayland).exists() or Path(wayland).is_absolute() else \
            f"WAYLAND_DISPLAY={wayland} has no socket in {runtime or 'XDG_RUNTIME_DIR'}"
    display = os.environ.get("DISPLAY")
    if not display:
        return "DISPLAY is not set"
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return f"DISPLAY={display} is not a display name"
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(f"/tmp/.X11-unix/X{number}")
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=1.0).close()
    except OSError:
        return f"no X server answers on DISPLAY={display}"
    return None


def check_display(window: str = "the window", headless: str = "to run without a window") -> None:
    """Refuse to open a window where there is no screen, in one line naming ``window`` and what ``--headless`` does."""
    problem = screen_problem()
    if problem:
        raise UserError(f"no screen for {window} ({problem}): run it on a desktop or with 'ssh -X', "
                        f"or add --headless {headless}")


class Window:
    """The OpenCV window: show a frame, read a key, tell whether the user closed it."""

    def __init__(self, title: str):
        self.title = title
        # GUI_NORMAL: no Qt toolbar, whose shortcuts would eat our keys.
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        self._sized = False
        self.clicks: list[tuple[int, int]] = []
        # Left clicks, in the shown image's pixels, wait here until the session takes them.
        cv2.setMouseCallback(title, self._mouse)

    def _mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:
            self.clicks.append((x, y))

    def take_clicks(self) -> list[tuple[int, int]]:
        """The left clicks since the last call, as ``(x, y)`` in the image's pixels."""
        clicks, self.clicks = self.clicks, []
        return clicks

    def show(self, image: np.ndarray, wait_ms: int) -> int:
        """Show ``image``, then wait up to ``wait_ms`` for a key; returns its code or -1."""
        if not self._sized:
            h, w = image.shape[:2]
            scale = min(1.0, MAX_WINDOW_SIDE / max(h, w))
            cv2.resizeWindow(self.title, round(w * scale), round(h * scale))
            self._sized = True
        cv2.imshow(self.title, image)
        return cv2.waitKey(max(1, wait_ms))

    def closed(self) -> bool:
        """True once the user closed the window (with the title bar's button)."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:  # some backends raise once the window is gone
            return True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # let the GUI process the close
        except cv2.error:
            pass


@dataclass
class Pacer:
    """Plays a video file in real time: how long to wait so frame ``t`` shows at ``t`` after the first.

    When processing falls behind by more than ``max_lag`` seconds (a slow machine, the window
    dragged), the clock is re-anchored instead of racing through frames to catch up.
    """

    max_lag: float = 0.25
    origin: float | None = None

    def delay_ms(self, timestamp_ms: int, now: float) -> int:
        """Milliseconds to wait before the next frame (at least 1: ``cv2.waitKey(0)`` would block)."""
        target = timestamp_ms / 1000.0
        if self.origin is None or now - (self.origin + target) > self.max_lag:
            self.origin = now - target
        return max(1, int(round((self.origin + target - now) * 1000)))


__all__ = ["ESC", "MAX_WINDOW_SIDE", "Pacer", "Window", "check_display", "key_code", "screen_problem"]
