"""Live recording for ``python -m pipeline.collect --source ...``: a webcam or a video, in a window.

The session is split in three parts so that each can be tested alone:

* :class:`RecorderState` and :func:`handle_key`: a pure state machine (current label, recording
  on/off, countdown, stride, last message) driven by key codes and a clock passed in.
* :func:`render`: the preview frame, drawn with :mod:`pipeline.draw.annotations`.
* :func:`record_live`: the loop that ties source -> hands -> crops -> dataset, and the window.

``headless=True`` runs without a window (servers, tests): every stride-th frame is saved under
the first label from the first frame on.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from pipeline.data.store import DatasetWriter, Origin, Sample
from pipeline.draw import annotations as draw
from pipeline.draw.annotations import inset_zoom
from pipeline.errors import UserError
from pipeline.preprocess.crops import Crop, CropSettings, crop_hand
from pipeline.preprocess.hands import Hand, HandDetector
from pipeline.preprocess.sources import Frame, VideoSource, open_source
from pipeline.ui.window import ESC, Pacer, Window, key_code
from pipeline.ui.window import check_display as check_screen

WINDOW_TITLE = "handcam collect"
LEGEND = "1-9,0 label  [ ] prev/next  space rec/stop  u undo  q quit"


class Action(Enum):
    """What a key asks for."""

    NONE = "none"
    LABEL = "label"  # pick the label given with the action
    PREVIOUS = "previous"
    NEXT = "next"
    TOGGLE = "toggle"  # start (after the countdown) or stop recording
    UNDO = "undo"
    QUIT = "quit"


_KEYS: dict[int, Action] = {
    ord("["): Action.PREVIOUS, ord("]"): Action.NEXT, ord(" "): Action.TOGGLE,
    ord("u"): Action.UNDO, ord("U"): Action.UNDO,
    ord("q"): Action.QUIT, ord("Q"): Action.QUIT, ESC: Action.QUIT,
}


def action_for_key(key: int) -> tuple[Action, int]:
    """Map a ``cv2.waitKey`` code to an action and, for :attr:`Action.LABEL`, a label index.

    ``1``..``9`` pick labels 0..8 and ``0`` picks label 9 (keyboard order); labels past the
    tenth are reached with ``[`` / ``]``. No key (-1) or an unknown key gives :attr:`Action.NONE`.
    """
    key = key_code(key)
    if key < 0:
        return Action.NONE, -1
    if ord("1") <= key <= ord("9"):
        return Action.LABEL, key - ord("1")
    if key == ord("0"):
        return Action.LABEL, 9
    return _KEYS.get(key, Action.NONE), -1


class Undoable(Protocol):
    """What :func:`handle_key` needs of a writer (a :class:`~pipeline.data.store.DatasetWriter`)."""

    def undo(self) -> Sample | None: ...


@dataclass
class RecorderState:
    """The recording session's state; every change takes the time ``now`` (``time.monotonic()`` seconds).

    Attributes:
        labels: the labels of this session, in key order.
        counts: samples per label in the dataset (kept up to date without re-reading the index).
        countdown: seconds between pressing space (or switching label while recording) and saving.
        stride: save every ``stride``-th frame while recording.
        current: index of the current label.
        recording: True from pressing space until pressing it again (including the countdown).
        starts_at: when saving begins (the end of the countdown).
        frames: frames seen since saving began; frame ``k`` is saved when ``k % stride == 0``.
        message: the last thing that happened, shown to the user.
        quit: set when the user asked to quit.
    """

    labels: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    countdown: float = 3.0
    stride: int = 1
    current: int = 0
    recording: bool = False
    starts_at: float = 0.0
    frames: int = 0
    message: str = ""
    quit: bool = False

    def __post_init__(self) -> None:
        if not self.labels:
            raise UserError("name at least one gesture to record with --label NAME (repeat for more)")
        if self.stride < 1:
            raise UserError(f"--stride must be at least 1, got {self.stride}")
        if self.countdown < 0:
            raise UserError(f"--countdown must be 0 or more seconds, got {self.countdown}")
        for label in self.labels:
            self.counts.setdefault(label, 0)

    @property
    def label(self) -> str:
        return self.labels[self.current]

    def seconds_left(self, now: float) -> float:
        """Seconds until saving begins; 0 when saving or not recording."""
        return max(0.0, self.starts_at - now) if self.recording else 0.0

    def saving(self, now: float) -> bool:
        """True when recording and the countdown is over."""
        return self.recording and now >= self.starts_at

    def start(self, now: float) -> None:
        """Start recording after the countdown."""
        self.recording = True
        self._arm(now)
        self.message = f"recording '{self.label}'"  # the countdown itself is drawn beside REC, and ends

    def stop(self, now: float | None = None) -> None:
        """Stop recording; stopped at ``now`` before the countdown ended, the message says nothing was saved."""
        early = now is not None and now < self.starts_at
        self.recording = False
        self.message = (f"stopped before the countdown ended: nothing saved; '{self.label}' has {self.counts[self.label]}"
                        if early else f"stopped; '{self.label}' has {self.counts[self.label]}")

    def select(self, index: int, now: float) -> None:
        """Make label ``index`` current. While recording, the countdown starts again, so the user
        has time to change the gesture before frames are saved under the new label."""
        if not 0 <= index < len(self.labels):
            self.message = f"no label {index + 1}: this session has {len(self.labels)} (--label)"
            return
        self.current = index
        self.message = f"label {index + 1}/{len(self.labels)}: '{self.label}'"
        if self.recording:
            self._arm(now)

    def take_frame(self, now: float) -> bool:
        """Count one frame; True if it is to be saved (saving, and the stride says so)."""
        if not self.saving(now):
            return False
        keep = self.frames % self.stride == 0
        self.frames += 1
        return keep

    def saved(self, sample: Sample) -> None:
        self.counts[sample.label] = self.counts.get(sample.label, 0) + 1

    def undone(self, sample: Sample | None) -> None:
        if sample is None:
            self.message = "nothing to undo in this session"
            return
        self.counts[sample.label] = max(0, self.counts.get(sample.label, 0) - 1)
        self.message = f"undid sample {sample.id} ('{sample.label}'; moved to trash/)"

    def _arm(self, now: float) -> None:
        self.starts_at = now + self.countdown
        self.frames = 0  # the first frame after the countdown is saved


def handle_key(state: RecorderState, key: int, now: float, writer: Undoable) -> Action:
    """Apply one key press to ``state`` (``u`` calls ``writer.undo()``); returns the action taken."""
    action, index = action_for_key(key)
    n = len(state.labels)
    if action is Action.LABEL:
        state.select(index, now)
    elif action is Action.PREVIOUS:
        state.select((state.current - 1) % n, now)  # wraps around: any number of labels
    elif action is Action.NEXT:
        state.select((state.current + 1) % n, now)
    elif action is Action.TOGGLE:
        if state.recording:
            state.stop(now)
        else:
            state.start(now)
    elif action is Action.UNDO:
        state.undone(writer.undo())
    elif action is Action.QUIT:
        state.quit = True
    return action


def render(image: np.ndarray, found: list[tuple[Hand, Crop]], state: RecorderState, now: float,
           legend: str = LEGEND) -> np.ndarray:
    """The preview: a copy of the frame with hands, crop insets, labels, recording state and keys."""
    view = image.copy()
    draw_recorder(view, found, state, now, legend)
    return view


def draw_recorder(view: np.ndarray, found: list[tuple[Hand, Crop]], state: RecorderState, now: float,
                  legend: str = LEGEND) -> tuple[int, int, int, int]:
    """Draw the recording view on ``view`` in place; returns the box of the panel at the left (REC and labels)."""
    for hand, _ in found:
        draw.draw_hand(view, hand, color=draw.RED if state.saving(now) else draw.GREEN)
    offset = 0
    for _, crop in found:
        zoom = inset_zoom(view.shape[0], crop.settings.size)
        box = draw.paste_inset(view, crop.image, "top-right", zoom, offset=offset)
        offset = box[3]  # the next inset goes below, with the same margin
    if not found:
        width = draw.text_box_size(view, "no hand")[0]
        draw.put_text(view, "no hand", (max(0, view.shape[1] - 8 - width), 8), color=draw.AMBER)
    bottom = draw_recorder_panel(view, state, now)
    draw.draw_footer(view, [state.message, legend], scale=draw.scale_to_fit(view, legend, view.shape[1] - 16))
    return bottom


def draw_recorder_panel(view: np.ndarray, state: RecorderState, now: float, top: int = 8) -> tuple[int, int, int, int]:
    """REC (or its countdown, or paused) and the labels with their counts, from ``top`` down; returns their box."""
    rec = draw.draw_recording(view, state.recording, state.seconds_left(now), org=(8, top))
    labels = draw.draw_labels(view, state.labels, state.counts, state.current, org=(8, rec[3] + 6))
    return 8, top, max(rec[2], labels[2]), labels[3]


def check_display() -> None:
    """No screen: one line saying what ``--headless`` records instead (see :func:`pipeline.ui.window.check_display`)."""
    check_screen("the recording window", "to record every stride-th frame without a window")


def save_hands(writer: DatasetWriter, state: RecorderState, frame: Frame, found: list[tuple[Hand, Crop]],
               group: str) -> None:
    """Save every hand of a frame under the current label."""
    height, width = frame.image.shape[:2]
    for i, (hand, crop) in enumerate(found):
        sample = writer.add(crop, hand, state.label, group,
                            Origin(frame.source, frame.index, frame.timestamp_ms, i, (width, height)))
        state.saved(sample)


def run_session(frames: Iterable[Frame], detector: HandDetector, writer: DatasetWriter, state: RecorderState, group: str,
                window: Window | None, pace: bool = False) -> None:
    """The frame loop: until the frames end, or the user quits or closes the window.

    With a window and ``pace`` (a video file), frames are shown at the file's frame rate (a user
    previewing a file expects real-time playback, and keys need time to be pressed); a webcam paces itself.
    """
    pacer = Pacer() if window is not None and pace else None
    for frame in frames:
        now = time.monotonic()
        hands = detector.detect(frame.image, frame.timestamp_ms)  # every frame: the tracker needs them
        save = state.take_frame(now)
        if window is None and not save:
            continue  # headless and not this frame's turn: no crop needed
        found = [(hand, crop_hand(frame.image, hand, writer.settings)) for hand in hands]
        if save:
            save_hands(writer, state, frame, found, group)
        if window is None:
            continue
        key = window.show(render(frame.image, found, state, now),
                          pacer.delay_ms(frame.timestamp_ms, time.monotonic()) if pacer else 1)
        handle_key(state, key, time.monotonic(), writer)
        if state.quit or window.closed():
            break


@dataclass
class Recording:
    """What a recording session left: samples per label of the whole dataset, whether Ctrl-C ended it, and a
    note when the video ended before its header's frame count."""

    counts: dict[str, int]
    interrupted: bool = False
    ended_early: str | None = None


def record_live(source: str, data: str | Path, settings: CropSettings, labels: list[str], group: str,
                hand_model: str | None, num_hands: int, stride: int, countdown: float, headless: bool,
                max_frames: int | None = None) -> Recording:
    """Record hands from a webcam index or a video file into the dataset ``data`` (made or appended to).

    Nothing is created until the source has given its first frame: a camera that is not there, or a
    file that is no video, leaves no empty dataset behind. In a window, keys pick the label and
    start or stop recording (see :func:`action_for_key`). ``headless`` saves every ``stride``-th
    frame under ``labels[0]`` with no window and no countdown, until the source ends (a webcam:
    until Ctrl-C) or ``max_frames`` frames have come. Every sample is written as it is taken, so
    quitting or Ctrl-C keeps all of them.
    """
    if not headless:
        check_display()  # before the camera and MediaPipe start
    labels = list(dict.fromkeys(labels))  # a label named twice gets one key
    # Source, detector and writer are context managers: closed on quit, at the end, on an error and on Ctrl-C.
    with open_source(source) as src, HandDetector(hand_model, num_hands=num_hands, video=src.is_stream) as detector:
        frames = iter(src)
        first = next(frames)  # a source that gives no frame raises its one line here, before any folder exists
        with DatasetWriter(data, settings, labels) as writer:
            known = writer.counts()
            state = RecorderState(labels, counts={label: known.get(label, 0) for label in labels},
                                  countdown=0.0 if headless else countdown, stride=stride)
            window = None
            if headless:
                state.start(time.monotonic())
            else:
                window = Window(WINDOW_TITLE)
                state.message = f"space: record '{state.label}'"
            interrupted = False
            try:
                run_session(itertools.islice(itertools.chain([first], frames), max_frames), detector, writer, state, group, window,
                            pace=isinstance(src, VideoSource))
            except KeyboardInterrupt:
                interrupted = True
            finally:
                if window is not None:
                    window.close()
            return Recording(writer.counts(), interrupted, getattr(src, "ended_early", None))


__all__ = [
    "Action", "LEGEND", "RecorderState", "Recording", "WINDOW_TITLE", "action_for_key", "check_display",
    "draw_recorder", "draw_recorder_panel", "handle_key", "record_live", "render", "run_session", "save_hands",
]
