"""Key scripts: a window session driven by a list of keys instead of a person (``--keys``).

A script is comma-separated steps, each a key with an optional time, or a wait::

    space@1.0,space@4.0,2,space@5,space@8,t,wait-train,v,x,q

* ``KEY`` is one character (``t``, ``2``, ``[``) or a name: ``space``, ``esc``, ``enter``, ``tab``,
  ``backspace``. It is pressed on the frame after the step before.
* ``KEY@S`` waits until the source's clock reads ``S`` seconds, counted from the first frame, or from
  the end of the last ``wait-train``. The clock is the frames' own timestamps, so a video file gives
  the same presses on a fast machine and a slow one.
* ``wait-train`` waits until no training runs (at once when none was started).

One step is taken per frame at most, so every key has a frame of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import UserError

KEY_NAMES = {"space": 32, "esc": 27, "enter": 13, "tab": 9, "backspace": 8}
WAIT_TRAIN = "wait-train"


@dataclass(frozen=True)
class Step:
    """One step: a key code (None for ``wait-train``) and the clock time to press it at (None: at once)."""

    key: int | None
    at: float | None = None
    text: str = ""


def parse_keys(script: str) -> list[Step]:
    """The steps of a script (see the module's docstring); a bad step is one line naming it."""
    steps = []
    for n, token in enumerate((t.strip() for t in script.split(",")), 1):
        if token == WAIT_TRAIN:
            steps.append(Step(None, None, token))
            continue
        name, at_sign, when = token.partition("@")
        at = None
        if at_sign:
            try:
                at = float(when)
            except ValueError:
                at = -1.0
            if not at >= 0:
                raise UserError(f"--keys: step {n} {token!r}: the time after @ must be seconds, e.g. space@1.5")
        if name in KEY_NAMES:
            code = KEY_NAMES[name]
        elif len(name) == 1 and name.isprintable():
            code = ord(name)
        else:
            raise UserError(f"--keys: step {n} {token!r} is not a key: use one character, "
                            f"{', '.join(KEY_NAMES)} or {WAIT_TRAIN}, with @SECONDS to wait for a time")
        steps.append(Step(code, at, token))
    return steps


class KeyScript:
    """Plays :func:`parse_keys` steps against a clock: call :meth:`key` once per frame."""

    def __init__(self, steps: list[Step]):
        self.steps = steps
        self.position = 0
        self.epoch: float | None = None

    @property
    def finished(self) -> bool:
        return self.position >= len(self.steps)

    def key(self, now: float, training: bool) -> int:
        """The key to press on this frame (a ``cv2.waitKey`` code), or -1. ``now``: the source's clock in seconds."""
        if self.epoch is None:
            self.epoch = now
        if self.finished:
            return -1
        step = self.steps[self.position]
        if step.key is None:  # wait-train
            if not training:
                self.position += 1
                self.epoch = now
            return -1
        if step.at is not None and now - self.epoch < step.at:
            return -1
        self.position += 1
        return step.key


__all__ = ["KEY_NAMES", "KeyScript", "Step", "WAIT_TRAIN", "parse_keys"]
