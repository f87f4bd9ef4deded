"""The studio (``python -m pipeline.collect --studio``): record, train in the background and see the new model
live, in one window.

Three views of one camera stream, and one recorder that works in the first two:

* **record**: the recording view of :mod:`pipeline.ui.collect_session` (labels, countdown, stride, undo).
* **live**: once a training run ends, the demo's view (:mod:`pipeline.ui.demo_session`) of the new model:
  per-hand labels and heat maps. Recording goes on here too, so the frames the model gets wrong can be
  recorded at once and trained on again.
* **review**: a grid of the current label's crops (:mod:`pipeline.ui.review_grid`) to delete bad ones.

``t`` starts a :class:`~pipeline.training.background.BackgroundTraining` on what is recorded so far; the
window keeps showing the camera with the run's progress. Coaching lines from the data and the hand in view
(:mod:`pipeline.data.coaching`), and after a run the classes it confuses on validation with their heat maps,
are drawn under the labels. A key script (:mod:`pipeline.ui.keyscript`) can press the keys instead of a
person, with a window or headless. A video file stands in for a camera: it plays again and again.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
import torch

from pipeline.data.coaching import data_hints, hand_hints, label_groups
from pipeline.data.store import DatasetWriter
from pipeline.draw import annotations as draw
from pipeline.draw.heatmaps import blend
from pipeline.errors import UserError
from pipeline.explainers import explain_all
from pipeline.files import unused_path
from pipeline.labels import NONE_LABEL
from pipeline.lenet.checkpoint import load_model
from pipeline.lenet.model import to_float
from pipeline.live.compute import LivePipeline, tune_torch_for_live
from pipeline.live.timing import StageTimes
from pipeline.preprocess.crops import CropSettings, crop_hand
from pipeline.preprocess.detector_process import DetectorDied, DetectorProcess
from pipeline.preprocess.hands import Hand
from pipeline.preprocess.sources import CameraSource, Frame, looped, open_source
from pipeline.training.background import BackgroundTraining, Confusion, Epoch, Failed, Finished, Started
from pipeline.ui import collect_session as recorder
from pipeline.ui import demo_session as demo
from pipeline.ui import review_grid as review
from pipeline.ui.keyscript import KeyScript
from pipeline.ui.window import Pacer, Window, check_display, key_code

WINDOW_TITLE = "handcam studio"
LEGEND = "space rec  1-9 label  u undo  t train  v review  r record  l live  c cam  p shot  q quit"
#: Most coaching lines on screen at once.
MAX_HINTS = 4


class Mode(Enum):
    """What the window shows."""

    RECORD = "record"
    LIVE = "live"
    REVIEW = "review"


@dataclass
class Trained:
    """A finished run, ready to show live: its result, its live pipeline, and a picture per confused pair."""

    result: Finished
    live: LivePipeline
    confusion_tiles: list[tuple[str, np.ndarray]] = field(default_factory=list)


@dataclass
class StudioState:
    """Everything the studio shows besides the recorder's own state."""

    rec: recorder.RecorderState
    mode: Mode = Mode.RECORD
    training: BackgroundTraining | None = None
    trained: Trained | None = None
    view: demo.ViewState | None = None
    grid: review.ReviewState | None = None
    status: str = ""  # the training line: progress, result or failure
    status_color: draw.Color = draw.WHITE
    hints: list[str] = field(default_factory=list)
    quit: bool = False

    @property
    def message(self) -> str:
        return self.rec.message

    @message.setter
    def message(self, text: str) -> None:
        self.rec.message = text


@dataclass
class StudioResult:
    """What a studio session left: samples per label, the finished runs, the failed ones, and what live showed."""

    counts: dict[str, int]
    runs: list[Finished] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why a t press started no run
    stopped: str = ""  # a run still going at the end, stopped
    live: demo.Summary | None = None
    interrupted: bool = False
    failed: str = ""


class Studio:
    """One studio session over a dataset writer: keys in, frames in, pictures out (the loop is :func:`run_studio`).

    Args:
        writer: the dataset being recorded (held open, and locked, for the whole session).
        labels: the labels of the session, in key order.
        group: the group (session) every sample is saved under.
        runs: the folder new training runs go in (``runs/studio-DATE-TIME``).
        screenshots: where ``p`` saves what the window shows.
        stride, countdown: as in collect.
        say: where lines for the terminal go (a run started, finished or failed).
    """

    def __init__(self, writer: DatasetWriter, labels: list[str], group: str, runs: str | Path = "runs",
                 screenshots: str | Path = "runs/studio", stride: int = 3, countdown: float = 3.0,
                 model_name: str = "lenet5", train_config=None, say: Callable[[str], None] = print):
        # Samples per (label, group), for the counts and the coaching lines: read once, then counted as samples
        # come and go.
        self._groups = label_groups(writer.rows())
        known = self._label_counts()
        self.writer, self.group, self.say = writer, group, say
        self.runs, self.screenshots = Path(runs), Path(screenshots)
        self.model_name, self.train_config = model_name, train_config
        self.state = StudioState(recorder.RecorderState(labels, {la: known.get(la, 0) for la in labels},
                                                        countdown=countdown, stride=stride))
        self.state.message = f"space: record '{self.state.rec.label}'   t: train on what is recorded"
        self.result = StudioResult(self.state.rec.counts)
        self.times = StageTimes()
        self._tiles: dict[str, np.ndarray] = {}
        self._hand_hints: list[str] = []
        self._removed: list = []  # the review's deletes, last first, across labels: what z undoes
        self._reviewed_from = Mode.RECORD
        self.state.hints = data_hints(labels, self._groups)
        self._buffer: np.ndarray | None = None

    # -- one frame

    def step(self, frame: Frame, hands: list[Hand], detect_ms: float, now: float) -> np.ndarray:
        """Take one frame: follow the training, save what is being recorded, and return the picture to show."""
        state = self.state
        self._follow_training()
        save = state.rec.take_frame(now)
        live = state.trained.live if state.trained and state.mode is Mode.LIVE else None
        result = None
        if live is not None:
            result = live(frame.image, hands, demo.requested(state.view))
            found = [(h.hand, h.crop) for h in result.hands]
        elif save or state.mode is Mode.RECORD:
            found = [(hand, crop_hand(frame.image, hand, self.writer.settings)) for hand in hands]
        else:
            found = []
        if save and found:
            recorder.save_hands(self.writer, state.rec, frame, found, self.group)
            self._groups[state.rec.label, self.group] += len(found)
            state.hints = data_hints(state.rec.labels, self._groups)
        self._hand_hints = [h for hand in hands for h in hand_hints(hand, (frame.image.shape[1], frame.image.shape[0]))]
        start = time.perf_counter()
        if state.mode is Mode.REVIEW:
            view = review.render_review(frame.image.shape, state.grid, self.writer.root, self._tiles)
        else:
            view = self._buffer = demo.draw_view(frame.image, False, self._buffer)
            if result is not None:
                # Maps and landmarks first, then the panel at the left, then the hands' label panels clear of it.
                demo.draw_under(view, result, state.view)
                top = demo.stats_bottom(view) + 4
                labels = recorder.draw_recorder_panel(view, state.rec, now, top)
                panel = self._draw_panel(view, labels[3] + 6, labels[2])
                state.view.message = state.message  # the demo's view draws the message line
                demo.render(view, result, state.view, self.times, legend=LEGEND, avoid=panel, under=False)
                self.result.live.add(result)
            else:
                labels = recorder.draw_recorder(view, found, state.rec, now, legend=LEGEND)
                self._draw_panel(view, labels[3] + 6, labels[2])
        ms = result.ms if result is not None else {}
        self.times.add({"detect": detect_ms, **ms, "draw": (time.perf_counter() - start) * 1000}, time.perf_counter())
        return view

    # -- keys

    def key(self, key: int, now: float, view: np.ndarray, frame_index: int) -> None:
        """Apply one key press (a ``cv2.waitKey`` code; -1: none)."""
        key = key_code(key)
        if key < 0:
            return
        state, char = self.state, chr(key).lower()
        before = dict(state.rec.counts)
        self._key(key, char, now, view, frame_index)
        self._recount(before)

    def _label_counts(self) -> dict[str, int]:
        """Samples per label of the whole dataset, from the counts kept per (label, group)."""
        counts: dict[str, int] = {}
        for (label, _), n in self._groups.items():
            counts[label] = counts.get(label, 0) + n
        return counts

    def _recount(self, before: dict[str, int]) -> None:
        """After an undo, or the review's delete or restore: the coaching's counts again, from the index."""
        if self.state.rec.counts != before:
            self._groups = label_groups(self.writer.rows())
            self.state.hints = data_hints(self.state.rec.labels, self._groups)

    def _key(self, key: int, char: str, now: float, view: np.ndarray, frame_index: int) -> None:
        state = self.state
        if char == "p":
            path = demo.save_screenshot(view, self.screenshots, frame_index, f"studio-{state.mode.value}")
            state.message = f"saved {path}"
        elif char == "q" or key == 27 and state.mode is not Mode.REVIEW:
            state.quit = True
        elif state.mode is Mode.REVIEW:
            self._review_key(key, now)
        elif char == "t":
            self.train()
        elif char == "v":
            self._open_review()
        elif char == "r":
            state.mode = Mode.RECORD
            state.message = "recording view" + ("; l: back to live" if state.trained else "")
        elif char == "l":
            if state.trained is None:
                state.message = "no model yet: record, then t trains one"
            else:
                state.mode = Mode.LIVE
                state.message = f"live: {state.trained.result.out / 'model.pt'}"
        elif char in "cn" and state.mode is Mode.LIVE:
            demo.handle_key(state.view, key, state.trained.live.key_layers)
            state.message = state.view.message
        else:
            recorder.handle_key(state.rec, key, now, self.writer)
            state.quit = state.quit or state.rec.quit

    def click(self, point: tuple[int, int], shape: tuple[int, ...]) -> None:
        """A left click: in the review grid, delete the sample under it."""
        if self.state.mode is Mode.REVIEW:
            before = dict(self.state.rec.counts)
            review.click(self.state.grid, point, shape, self.writer, self.state.rec.counts)
            self.state.message = self.state.grid.message
            self._recount(before)

    def _review_key(self, key: int, now: float) -> None:
        state = self.state
        action = review.handle_review_key(state.grid, key, self.writer, state.rec.counts)
        if action is review.ReviewAction.LABEL:
            recorder.handle_key(state.rec, key, now, self.writer)
            self._open_review()
        elif action in (review.ReviewAction.BACK, review.ReviewAction.RECORD):
            state.mode = self._reviewed_from if action is review.ReviewAction.BACK else Mode.RECORD
            state.message = f"back from the review; '{state.rec.label}' has {state.rec.counts[state.rec.label]}"
        elif action is review.ReviewAction.QUIT:
            state.quit = True
        if state.mode is Mode.REVIEW:
            state.message = state.grid.message

    def _open_review(self) -> None:
        state = self.state
        if state.rec.recording:
            state.rec.stop()  # no samples are saved while the camera is hidden
        if state.mode is not Mode.REVIEW:
            self._reviewed_from = state.mode
        self._tiles.clear()  # the tiles of one review at a time in memory, not of every sample ever shown
        state.grid = review.ReviewState.of(self.writer, state.rec.label, self._removed)
        state.mode = Mode.REVIEW
        state.message = state.grid.message

    # -- training

    def train(self) -> None:
        """Start a training run on what is recorded, unless one is running or there is too little to train on."""
        state = self.state
        if state.training is not None and state.training.running:
            state.message = "a training run is going on; it shows its progress under the labels"
            return
        recorded = [la for la, n in self._label_counts().items() if n]  # a run trains on every label of the dataset
        if len(recorded) < 2:
            state.message = "record at least two gestures first (t trains on what is recorded)"
            self.result.refused.append(state.message)
            return
        out = unused_path(self.runs, time.strftime("studio-%Y%m%d-%H%M%S"))
        kwargs = {"config": self.train_config} if self.train_config is not None else {}
        state.training = BackgroundTraining(self.writer.root, out, self.model_name, **kwargs)
        state.status, state.status_color = "training: loading the samples", draw.AMBER
        state.message = f"training in the background into {out}; keep recording if you like"
        self.say(f"training {out}")

    def _follow_training(self) -> None:
        state, job = self.state, self.state.training
        if job is None or not job.running:
            return
        for event in job.poll():
            if isinstance(event, Started):
                state.status = f"training on {event.samples} samples; {event.split}"
            elif isinstance(event, Epoch):
                state.status = (f"training: epoch {event.epoch}/{event.epochs}, validation accuracy {event.val_acc:.2f}"
                                + (f" (member {event.member + 1})" if event.member else ""))
            elif isinstance(event, Failed):
                self._failed(event.message)
            elif isinstance(event, Finished):
                self._use(event)

    def _failed(self, message: str) -> None:
        state = self.state
        state.status, state.status_color = message, draw.RED
        state.message = message if message.endswith("intact") else f"{message}; the recorded data is intact"
        self.result.failures.append(message)
        self.say(message)

    def _use(self, done: Finished) -> None:
        """Show a finished run live: its model, its validation score and the classes it confuses."""
        state = self.state
        try:
            live = LivePipeline(load_model(done.out / "model.pt"))
        except UserError as e:  # the run folder changed under us: a line, not a crash of the window
            self._failed(f"cannot show the new model: {e}")
            return
        live.reset(smooth=True)
        state.trained = Trained(done, live, self._confusion_tiles(live, done.confusions))
        state.view = demo.ViewState(live.default_layer, method=live.method)
        if self.result.live is None or self.result.live.label_names != live.labels:
            self.result.live = demo.Summary(live.labels)
        self.result.runs.append(done)
        state.status = (f"trained in {done.seconds:.0f} s: validation accuracy {done.val_accuracy:.2f}, "
                        f"test {done.test_accuracy:.2f}")
        state.status_color = draw.GREEN
        if state.mode is Mode.REVIEW:
            self._reviewed_from = Mode.LIVE  # v leaves the review for the new model
        else:
            state.mode = Mode.LIVE
        state.message = "live with the new model: r records more, t trains again"
        self.say(f"trained {done.out / 'model.pt'} val_accuracy={done.val_accuracy:.4f} test_accuracy={done.test_accuracy:.4f}")

    def _confusion_tiles(self, live: LivePipeline, mixed: tuple[Confusion, ...]) -> list[tuple[str, np.ndarray]]:
        """Per confused pair, its first validation crop with the heat map of the wrong answer on it."""
        tiles, cam = [], live.cam(live.default_layer)
        for c in mixed:
            crop = cv2.imread(str(self.writer.root / "crops" / c.true / f"{c.ids[0]}.png"), cv2.IMREAD_GRAYSCALE)
            if crop is None:  # deleted in the review since
                continue
            batch = to_float(torch.from_numpy(crop)[None, None])
            heat = explain_all({"cam": cam}, batch, torch.tensor([live.labels.index(c.predicted)]), crop.shape[0])["cam"]
            tiles.append((f"{c.true}->{c.predicted} {c.count}/{c.total}", blend(crop, heat[0, 0].numpy())))
        return tiles

    # -- coaching and drawing

    def _draw_panel(self, view: np.ndarray, top: int, right: int) -> list[tuple[int, int, int, int]]:
        """Under the labels: the view's name, the training line, coaching lines, and a finished run's confused
        pairs with their maps, down to the message lines at the bottom. Returns the box of each thing drawn,
        and of the labels above (from the frame's top, ``right`` wide), for the hands' panels to keep clear of."""
        state = self.state
        width = view.shape[1] * 2 // 3
        floor = view.shape[0] - 8 - 2 * draw.text_height(view)  # where the message and the keys begin
        boxes = [(8, 8, right, top)]
        live = state.mode is Mode.LIVE and state.trained is not None
        if live:
            name = f"LIVE: {state.trained.result.out.name} (r: record view)"
        else:
            name = "RECORD" + (" (l: live view)" if state.trained else "")
        boxes.append(draw.put_text(view, name, (8, top), background=draw.HIGHLIGHT, scale=draw.font_scale_for(view) * 0.8))
        lines = [(state.status, state.status_color)] if state.status else []
        # Live, the confused pairs need the room: one coaching line at most.
        lines += [(line, draw.AMBER) for line in (self._hand_hints + state.hints)[:1 if live else MAX_HINTS]]
        for text, color in lines:
            box = draw.put_text(view, text, (8, boxes[-1][3]), color=color, scale=draw.scale_to_fit(view, text, width))
            boxes.append(box)
        tiles = state.trained.confusion_tiles if live else []
        header = "confused on validation (heat map of the wrong answer):"
        small = draw.font_scale_for(view) * 0.6
        side = max(28, view.shape[0] // 8)
        if tiles and boxes[-1][3] + 4 + draw.text_height(view, small) + side + draw.text_height(view, small) <= floor:
            boxes.append(draw.put_text(view, header, (8, boxes[-1][3] + 4), scale=small))
            x, y = 8, boxes[-1][3]
            for caption, tile in tiles:
                if x + side > view.shape[1]:
                    break
                view[y:y + side, x:x + side] = cv2.resize(tile, (side, side), interpolation=cv2.INTER_NEAREST)
                cv2.rectangle(view, (x, y), (x + side - 1, y + side - 1), draw.WHITE, 1)
                boxes.append((x, y, x + side, y + side))
                boxes.append(draw.put_text(view, caption, (x, y + side), scale=small))
                x = max(x + side, boxes[-1][2]) + 8
        return boxes


def run_studio(frames: Iterable[tuple[Frame, list[Hand], float]], studio: Studio, window: Window | None,
               script: KeyScript | None = None, pacer: Pacer | None = None) -> StudioResult:
    """The frame loop: until the user (or the script) quits, the window closes, the frames end, or Ctrl-C.

    Headless, the session ends when the script has no step left. The clock of the recorder and the script
    is the frames' timestamps. On the way out a training run still going is stopped.
    """
    state, result = studio.state, studio.result
    try:
        for frame, hands, detect_ms in frames:
            now = frame.timestamp_ms / 1000.0
            view = studio.step(frame, hands, detect_ms, now)
            key = -1
            if window is not None:
                wait = pacer.delay_ms(frame.timestamp_ms, time.monotonic()) if pacer else 1
                key = window.show(view, wait)
                for point in window.take_clicks():
                    studio.click(point, view.shape)
            if key < 0 and script is not None:
                key = script.key(now, state.training is not None and state.training.running)
            studio.key(key, now, view, frame.index)
            if state.quit or (window is not None and window.closed()):
                break
            if window is None and (script is None or script.finished):
                break
    except KeyboardInterrupt:
        result.interrupted = True
    except DetectorDied as e:
        result.failed = str(e)
    finally:
        if state.training is not None and state.training.running:
            state.training.stop()
            result.stopped = f"training stopped on quit, before it finished ({state.training.out})"
    # Every label of the dataset, and the session's own even before their first sample.
    result.counts = {**studio.writer.counts(), **{la: 0 for la in state.rec.labels if la not in studio.writer.labels}}
    return result


def open_studio(source: str, data: str | Path, settings: CropSettings, labels: list[str], group: str,
                hand_model: str | None = None, num_hands: int = 2, stride: int = 3, countdown: float = 3.0,
                headless: bool = False, keys: KeyScript | None = None, runs: str | Path = "runs",
                screenshots: str | Path = "runs/studio", train_config=None,
                say: Callable[[str], None] = print) -> StudioResult:
    """Open the source, MediaPipe (its own process), the dataset and the window, and run the studio.

    ``none`` joins the labels unless named already. A video file or folder stands in for a camera and is played
    again and again (in real time in a window). Nothing is created until the source gives its first frame.
    """
    if not headless:
        check_display("the studio window", "--keys SCRIPT (the keys to press) to run it without a window")
    labels = list(dict.fromkeys([*labels, *([] if NONE_LABEL in labels else [NONE_LABEL])]))
    tune_torch_for_live()  # the live view's batches of a few crops, beside MediaPipe and a training process
    with open_source(source) as src:
        frames_of = src if isinstance(src, CameraSource) else looped(src)
        with DetectorProcess(frames_of, hand_model, num_hands=num_hands, video=src.is_stream) as frames:
            items = iter(frames)
            first = next(items)  # a source that gives no frame raises its one line here, before any folder exists
            # Labels join the dataset as they get their first sample: a label never recorded is no class to train.
            with DatasetWriter(data, settings) as writer:
                studio = Studio(writer, labels, group, runs, screenshots, stride, countdown, train_config=train_config,
                                say=say)
                window = None if headless else Window(WINDOW_TITLE)
                pacer = Pacer() if window is not None and not isinstance(src, CameraSource) else None
                try:
                    return run_studio(itertools.chain([first], items), studio, window, keys, pacer)
                finally:
                    if window is not None:
                        window.close()


__all__ = ["LEGEND", "Mode", "Studio", "StudioResult", "StudioState", "Trained", "WINDOW_TITLE", "open_studio",
           "run_studio"]
