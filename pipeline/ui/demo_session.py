"""The demo session for ``python -m pipeline.demo``: the live path, drawn, in a window or headless.

The session is split so that each part can be tested alone:

* :class:`ViewState` and :func:`handle_key`: what is shown (Grad-CAM and its layer, saliency,
  landmarks, insets, mirror, pause), driven by key codes.
* :func:`render`: one annotated frame, drawn in place from a :class:`~pipeline.live.compute.LiveResult`
  and the view state, with :mod:`pipeline.draw.annotations` and :mod:`pipeline.draw.heatmaps`.
* :class:`Summary`: frames, frames with a hand, FPS, milliseconds per stage, share of frames per label.
* :func:`run_session`: detected frames -> :class:`~pipeline.live.compute.LivePipeline` -> render -> window
  and/or video file; :func:`run_demo` opens the source and MediaPipe around it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from pipeline.draw import annotations as draw
from pipeline.draw.heatmaps import blend, overlay_on_frame
from pipeline.errors import UserError
from pipeline.explainers.quality import DEFAULT_EXPLAINER
from pipeline.files import check_writable, refuse_existing, unused_path, write_failed
from pipeline.live.compute import Explain, LivePipeline, LiveResult, mirror_result
from pipeline.live.timing import STAGES, StageTimes
from pipeline.preprocess.detector_process import DetectorDied, DetectorProcess
from pipeline.preprocess.hands import Hand
from pipeline.preprocess.sources import CameraSource, Frame, Source, open_source
from pipeline.resources import SAMPLE_SOURCE
from pipeline.ui.window import ESC, Pacer, Window, check_display, key_code

WINDOW_TITLE = "handcam demo"
LEGEND = "c cam  s saliency  l landmarks  i inset  n layer  m mirror  space pause  p screenshot  q quit"
#: Weight of the heatmap where it is blended onto the frame.
CAM_ALPHA = 0.6
#: Where screenshots go unless told otherwise.
SCREENSHOTS = Path("runs") / "demo"
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
#: The stats lines' and panels' text, against the frame's font scale.
STATS_SCALE = 0.8
#: How long a paused (or finished) window waits for a key between redraws.
PAUSED_WAIT_MS = 30


class Action(Enum):
    """What a key asks for."""

    NONE = "none"
    CAM = "cam"
    SALIENCY = "saliency"
    LANDMARKS = "landmarks"
    INSET = "inset"
    LAYER = "layer"
    MIRROR = "mirror"
    PAUSE = "pause"
    SCREENSHOT = "screenshot"
    QUIT = "quit"


_KEYS: dict[int, Action] = {
    ord("c"): Action.CAM, ord("s"): Action.SALIENCY, ord("l"): Action.LANDMARKS, ord("i"): Action.INSET,
    ord("n"): Action.LAYER, ord("m"): Action.MIRROR, ord(" "): Action.PAUSE, ord("p"): Action.SCREENSHOT,
    ord("q"): Action.QUIT, ESC: Action.QUIT,
}


#: Keys after which a held (paused) frame's maps are made anew.
REEXPLAIN = {Action.CAM, Action.SALIENCY, Action.INSET, Action.LAYER}


def action_for_key(key: int) -> Action:
    """Map a ``cv2.waitKey`` code to an action (upper or lower case; -1 or an unknown key: :attr:`Action.NONE`)."""
    key = key_code(key)
    if key < 0:
        return Action.NONE
    return _KEYS.get(ord(chr(key).lower()), Action.NONE)


@dataclass
class ViewState:
    """What the window shows, and the last thing that happened (shown above the key legend)."""

    layer: str
    cam: bool = True
    method: str = DEFAULT_EXPLAINER[0]  # the CAM method (its name is shown with the layer)
    saliency: bool = False
    landmarks: bool = True
    inset: bool = True
    mirror: bool = False
    paused: bool = False
    ended: bool = False  # a file or folder ran out; the window stays on its last frame
    quit: bool = False
    message: str = ""


def _switch(state: ViewState, name: str, what: str) -> None:
    setattr(state, name, not getattr(state, name))
    state.message = f"{what} {'on' if getattr(state, name) else 'off'}"


def handle_key(state: ViewState, key: int, layers: Sequence[str]) -> Action:
    """Apply one key press to ``state``; returns the action. ``n`` steps ``state.layer`` through ``layers``.

    :attr:`Action.SCREENSHOT` is only returned: the caller saves the picture it shows.
    """
    action = action_for_key(key)
    if action is Action.CAM:
        _switch(state, "cam", "Grad-CAM")
    elif action is Action.SALIENCY:
        _switch(state, "saliency", "saliency in the inset")
    elif action is Action.LANDMARKS:
        _switch(state, "landmarks", "landmarks")
    elif action is Action.INSET:
        _switch(state, "inset", "crop inset")
    elif action is Action.MIRROR:
        _switch(state, "mirror", "mirrored view")
    elif action is Action.LAYER:
        at = list(layers).index(state.layer) if state.layer in layers else -1
        state.layer = layers[(at + 1) % len(layers)]
        state.message = f"{state.method} at {state.layer}"
    elif action is Action.PAUSE:
        if state.ended:
            state.message = "the source has ended: q quits"
        else:
            _switch(state, "paused", "paused")
    elif action is Action.QUIT:
        state.quit = True
    return action


def requested(state: ViewState) -> Explain:
    """What the live path computes for what is shown (saliency costs one more forward and backward)."""
    return Explain(state.layer if state.cam else None, state.saliency and state.inset)


def label_text(names: Sequence[str], label: int | None, probs: np.ndarray) -> str:
    """``five 0.97``, or ``no gesture`` for a hand below the threshold (or of the ``none`` class)."""
    return "no gesture" if label is None else f"{names[label]} {probs[label]:.2f}"


def stats_lines(times: StageTimes, state: ViewState) -> list[str]:
    """FPS and what is shown, then the milliseconds of each stage over the last frames."""
    ms = times.recent_ms()
    head = f"{times.recent_fps():.1f} FPS   " + (f"{state.method} {state.layer}" if state.cam else "heat map off")
    if state.paused:
        head += "   ended" if state.ended else "   paused"
    return [head, "ms  " + "  ".join(f"{s} {ms[s]:.1f}" for s in STAGES)]


def draw_under(image: np.ndarray, result: LiveResult, state: ViewState) -> None:
    """What lies under the text: each hand's heat map, warped back onto ``image`` through its crop's inverse
    affine (a hand that shows a gesture), then its landmarks."""
    for item in result.hands:
        if state.cam and item.cam is not None and item.label is not None:
            overlay_on_frame(image, item.cam, item.crop.affine, item.cam_grid, CAM_ALPHA, weighted=True)
    if state.landmarks:
        for item in result.hands:
            draw.draw_hand(image, item.hand, color=draw.GREEN if item.label is not None else draw.GRAY)


def stats_bottom(image: np.ndarray) -> int:
    """Where the stats lines at the top left of :func:`render` end, at the most (to lay out beneath them)."""
    return 8 + 2 * draw.text_height(image, draw.font_scale_for(image) * STATS_SCALE)


def render(image: np.ndarray, result: LiveResult, state: ViewState, times: StageTimes, legend: str = LEGEND,
           avoid: Sequence[Sequence[int]] = (), under: bool = True) -> int:
    """Draw one frame's results on ``image``, in place; returns the bottom of the stats lines at the top left.

    Per hand: its heat map and landmarks (:func:`draw_under`; ``under=False``: the caller drew them), and a
    panel with the label, confidence and top classes, clear of the boxes in ``avoid``; at the
    top right the crops the model saw (with saliency if on); at the top left FPS and stage times;
    at the bottom the last message and the key legend.
    """
    names = result.labels
    if under:
        draw_under(image, result, state)
    height, width = image.shape[:2]
    scale = draw.font_scale_for(image) * STATS_SCALE
    top = 8
    for line in stats_lines(times, state):
        top = draw.put_text(image, line, (8, top), scale=draw.scale_to_fit(image, line, width - 16, scale))[3]
    footer_scale = draw.scale_to_fit(image, legend, width - 16, scale)
    footer_top = height - 8 - 2 * draw.text_height(image, footer_scale)
    offset = 0
    zoom = draw.inset_zoom(height, result.hands[0].crop.settings.size if result.hands else 28, 1 / 4)
    panels: list[Sequence[int]] = list(avoid)
    for item in result.hands:
        color = draw.PALETTE[item.track_id % len(draw.PALETTE)] if item.label is not None else draw.MUTED
        # Panels keep clear of the stats above and the legend below.
        panels.append(draw.draw_prediction(image, item.hand.box(), label_text(names, item.label, item.smoothed),
                                           names, item.smoothed, color, bounds=(0, top + 4, width, footer_top - 4),
                                           avoid=panels))
        if state.inset:
            picture = item.crop.image
            if state.saliency and item.saliency is not None:
                picture = blend(picture, item.saliency)
            offset = draw.paste_inset(image, picture, "top-right", zoom, offset=offset, border=color)[3]
    draw.draw_footer(image, [state.message, legend], scale=footer_scale)
    return top


@dataclass
class Summary:
    """What a run saw: frames, frames with a hand, and for each label the frames where a hand showed it."""

    label_names: list[str]
    frames: int = 0
    hand_frames: int = 0
    label_frames: Counter = field(default_factory=Counter)
    interrupted: bool = False
    #: Why the run stopped before its source ended (the detector process died), or "".
    failed: str = ""

    def add(self, result: LiveResult) -> None:
        self.frames += 1
        if result.hands:
            self.hand_frames += 1
        shown = {self.label_names[h.label] if h.label is not None else "none" for h in result.hands}
        self.label_frames.update(shown)

    def shares(self) -> dict[str, float]:
        """Share of frames per shown label (``none``: a hand with no gesture), largest first."""
        return {k: v / max(1, self.frames) for k, v in self.label_frames.most_common()}

    def lines(self, times: StageTimes, fps: float) -> list[str]:
        """The printed summary: three ``key=value`` lines."""
        ms = times.mean_ms()
        shares = self.shares()
        return [
            f"frames={self.frames} hand_frames={self.hand_frames} "
            f"hand_share={self.hand_frames / max(1, self.frames):.3f} fps={fps:.1f}",
            "ms " + " ".join(f"{s}={ms[s]:.2f}" for s in STAGES),
            "labels " + (" ".join(f"{k}={v:.3f}" for k, v in shares.items()) if shares else "(no hand)"),
        ]


class VideoOut:
    """An annotated video file, opened with the first frame's size; later frames of another size are resized.

    Frames go to a temporary file beside ``path``; :meth:`close` checks that it reads back with every
    frame written (OpenCV's writer reports no error on a full disk) and only then renames it into
    place, so ``path`` is a whole, playable video or is not there at all. ``force`` allows replacing
    an existing file; without it an existing ``path`` is refused before anything starts.
    """

    def __init__(self, path: str | Path, fps: float = 30.0, force: bool = False):
        self.path = Path(path)
        codec = VIDEO_CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise UserError(f"{self.path}: --out must end in {', '.join(VIDEO_CODECS)}")
        refuse_existing(self.path, force, "video")
        check_writable(self.path.parent, "--out")
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        self.fourcc = cv2.VideoWriter_fourcc(*codec)
        self.fps = fps if fps and fps > 0 else 30.0
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        size = (image.shape[1], image.shape[0])
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.tmp), self.fourcc, self.fps, size)
            if not self.writer.isOpened():
                raise UserError(f"{self.path}: cannot write a video there; check the folder and the name")
            self.size = size
        if size != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file: check it plays back whole, then move it into place; else one :class:`UserError`."""
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        capture = cv2.VideoCapture(str(self.tmp))
        readable = capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) >= self.frames
        capture.release()
        if not readable:
            size = self.tmp.stat().st_size if self.tmp.exists() else 0
            self.tmp.unlink(missing_ok=True)
            raise UserError(write_failed(self.path, OSError(28, f"the video does not read back: {size} bytes for "
                                                                f"{self.frames} frames; is the disk full?")))
        os.replace(self.tmp, self.path)


def save_screenshot(image: np.ndarray, folder: str | Path, frame_index: int, prefix: str = "demo") -> Path:
    """Write ``image`` as a PNG in ``folder`` (created) under a name that never overwrites; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = unused_path(folder, f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-frame{frame_index:06d}", ".png")
    if not cv2.imwrite(str(path), image):
        raise UserError(f"{path}: could not write the screenshot; check the folder")
    return path


def draw_view(image: np.ndarray, mirror: bool, buffer: np.ndarray | None) -> np.ndarray:
    """The picture to draw on: ``image`` copied (or mirrored) into a reused buffer.

    The source's frame stays clean (a paused demo draws the same frame again); ``buffer`` is
    reused when it has the frame's shape, so a stream allocates no new picture per frame.
    """
    if buffer is None or buffer.shape != image.shape:
        buffer = np.empty_like(image)
    if mirror:
        cv2.flip(image, 1, dst=buffer)
    else:
        np.copyto(buffer, image)
    return buffer


def run_session(frames: Iterable[tuple[Frame, list[Hand], float]], live: LivePipeline, state: ViewState | None = None,
                window: Window | None = None, pacer: Pacer | None = None, video: VideoOut | None = None,
                max_frames: int | None = None, screenshots: str | Path = SCREENSHOTS) -> tuple[Summary, StageTimes, float]:
    """The frame loop: until the frames end (headless), ``max_frames`` new frames, the user quits, or Ctrl-C.

    ``frames`` yields ``(frame, hands, detect_ms)`` (a
    :class:`~pipeline.preprocess.detector_process.DetectorProcess`). Every frame is processed once,
    on the frame as the source gives it, and drawn, with or without a window. While paused, the
    window keeps drawing the held frame and its result, so keys still take effect: a key that
    changes the maps (Grad-CAM, its layer, saliency) has them made anew, without touching the
    tracks; mirroring only mirrors what is drawn. When a file ends, the window stays on its last
    frame until the user quits. Returns the summary, the stage times, and the mean FPS;
    ``summary.interrupted`` tells whether Ctrl-C ended it.
    """
    state = state or ViewState(live.default_layer, method=live.method)
    summary, times = Summary(live.labels), StageTimes()
    items = iter(frames)
    held: tuple[Frame, list[Hand], float] | None = None
    buffer: np.ndarray | None = None
    result = LiveResult([], live.labels)
    action = Action.NONE
    start = time.perf_counter()
    try:
        while not state.quit:
            fresh = held is None or not state.paused
            if fresh:
                item = next(items, None)
                if item is None:
                    if window is None or held is None:
                        break
                    state.paused = state.ended = True
                    state.message = "end of the source: q quits"
                    fresh = False
                else:
                    held = item
            frame, hands, detect_ms = held
            if fresh:
                result = live(frame.image, hands, requested(state))
            elif action in REEXPLAIN:
                result = live.explain(result, requested(state))
            view = buffer = draw_view(frame.image, state.mirror, buffer)  # a clean copy to draw on
            before_draw = time.perf_counter()
            render(view, mirror_result(result, view.shape[1]) if state.mirror else result, state, times)
            if fresh:
                times.add({"detect": detect_ms, **result.ms, "draw": (time.perf_counter() - before_draw) * 1000},
                          time.perf_counter())
                summary.add(result)
                if video is not None:
                    video.write(view)
            if window is not None:
                if state.paused:
                    wait = PAUSED_WAIT_MS
                else:
                    wait = pacer.delay_ms(frame.timestamp_ms, time.monotonic()) if pacer else 1
                action = handle_key(state, window.show(view, wait), live.key_layers)
                if action is Action.SCREENSHOT:
                    state.message = f"saved {save_screenshot(view, screenshots, frame.index)}"
                if window.closed():
                    break
            if max_frames and summary.frames >= max_frames:
                break
    except KeyboardInterrupt:  # the way to end a headless webcam run: the summary still counts
        summary.interrupted = True
    except DetectorDied as e:  # what was shown, and written, so far stays
        summary.failed = str(e)
    return summary, times, times.mean_fps(start)


def open_demo_source(source: str | None, say: Callable[[str], None]) -> Source:
    """The source to play: ``source`` as given (strict: ``0`` means that camera); with none given, webcam 0,
    or the shipped sample clip when no camera opens (said in one line)."""
    if source is not None:
        return open_source(source)
    try:
        return CameraSource(0)
    except UserError:
        say("no camera: playing the shipped sample clip instead (--source 0 insists on the camera)")
        return open_source(SAMPLE_SOURCE)


def run_demo(source: str | None, live: LivePipeline, layer: str | None = None, hand_model: str | None = None,
             num_hands: int = 2, headless: bool = False, out: str | Path | None = None, max_frames: int | None = None,
             screenshots: str | Path = SCREENSHOTS, spin: bool = True, force: bool = False,
             say: Callable[[str], None] = print) -> tuple[Summary, StageTimes, float]:
    """Open the source and MediaPipe, run :func:`run_session` in a window (or headless), close everything.

    MediaPipe runs one frame ahead in its own process
    (:class:`~pipeline.preprocess.detector_process.DetectorProcess`; ``spin``: poll for its results
    rather than sleep). A video file or folder in a window plays in real time; a webcam paces itself.
    ``layer`` is the first Grad-CAM layer (default: the model's last conv layer). With no ``source``
    given, see :func:`open_demo_source`. A video that ends before its header's frame count is said in one line.
    """
    layer = live.check_layer(layer) if layer else live.default_layer
    if not headless:
        check_display("the demo window", "to run without a window and print a summary")
    video = VideoOut(out, force=force) if out else None  # a bad name fails before the camera opens
    # Source, detector process, window and video are closed on quit, at the end, on errors and on Ctrl-C.
    with open_demo_source(source, say) as src, \
            DetectorProcess(src, hand_model, num_hands=num_hands, video=src.is_stream, spin=spin) as frames:
        live.reset(smooth=src.is_stream)
        if video is not None:
            video.fps = src.fps or video.fps
        window = None if headless else Window(WINDOW_TITLE)
        pacer = Pacer() if window is not None and not isinstance(src, CameraSource) else None
        state = ViewState(layer, method=live.method, message=f"{live.method} at {layer}: the heat map of the label each hand shows")
        try:
            result = run_session(frames, live, state, window, pacer, video, max_frames, screenshots)
        finally:
            if window is not None:
                window.close()
            if video is not None:
                video.close()
        if getattr(src, "ended_early", None):
            say(src.ended_early)
        return result


__all__ = [
    "Action", "LEGEND", "Summary", "VideoOut", "ViewState", "WINDOW_TITLE", "action_for_key", "handle_key",
    "draw_view", "label_text", "draw_under", "render", "requested", "run_demo", "run_session", "save_screenshot",
    "stats_bottom", "stats_lines",
]
