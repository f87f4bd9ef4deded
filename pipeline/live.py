"""The live path of one video frame, after the hand stage: crops -> one model batch -> tracks -> one Grad-CAM batch.

:class:`LivePipeline` is built once per stream (model, Grad-CAM per layer, tracker, one
:class:`~pipeline.explainers.RunningMax` per tracked hand) and fed frame after frame::

    live = LivePipeline(model, ckpt["label_names"], ckpt["crop"])
    with DetectorProcess(source, video=True) as frames:
        for frame, hands, detect_ms in frames:
            result = live(frame.image, hands)   # result.hands[i]: hand, crop, probs, track, cam

All hands of a frame go through the model as one batch, and through Grad-CAM as one more batch
(one forward and one backward), whatever their number. The Grad-CAM target of a hand is the
label its track shows (the smoothed prediction), or this frame's top class while it shows none.

MediaPipe itself runs one frame ahead in a process of its own (:class:`pipeline.hands.DetectorProcess`).
:class:`StageTimes` keeps per-stage milliseconds for the screen (a short window) and the summary.
Nothing here draws or knows about windows: see :mod:`pipeline.viewer`.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from .checkpoint import explained_module
from .crops import Crop, CropSettings, crop_hand
from .errors import UserError
from .explainers import GradCAM, RunningMax, Saliency, normalize
from .hands import Hand
from .models import to_float
from .tracking import HandTracker, Track

#: The stages the demo times, in the order a frame meets them.
STAGES = ("detect", "crop", "classify", "explain", "draw")
#: The name of a "no gesture" class; a model that has it never shows it as a gesture.
NONE_LABEL = "none"


@dataclass
class LiveHand:
    """One hand of one frame, with everything the screen shows about it.

    Attributes:
        hand: the detected hand (landmarks in frame pixels).
        crop: the crop the model saw, with its frame->crop affine.
        probs: (C,) this frame's class probabilities.
        track: the hand across frames: its id, smoothed probabilities and shown label
            (``track.label`` is None for "no gesture").
        cam: (h, h) float32 Grad-CAM in [0, 1] at the layer's resolution, scaled by the track's
            running maximum (comparable across frames); None when Grad-CAM is off.
        cam_affine: (2, 3) frame pixels -> ``cam`` cells (see :func:`cam_affine`):
            ``warp_to_frame(cam, cam_affine, h, frame_size)`` puts the map on the frame.
        saliency: (S, S) float32 gradient saliency in [0, 1] on the crop grid, or None when it is off.
    """

    hand: Hand
    crop: Crop
    probs: np.ndarray
    track: Track
    cam: np.ndarray | None = None
    cam_affine: np.ndarray | None = None
    saliency: np.ndarray | None = None

    @property
    def label(self) -> int | None:
        return self.track.label


@dataclass
class LiveResult:
    """The hands of one frame, the model's input batch (B, 1, S, S) in [0, 1] (None without a hand),
    and the milliseconds of each stage run here (crop, classify, explain)."""

    hands: list[LiveHand]
    ms: dict[str, float] = field(default_factory=dict)
    batch: torch.Tensor | None = None


def tune_torch_for_live() -> None:
    """Set torch up for batches of a few 28x28 crops, next to MediaPipe (process-wide: commands call it).

    One thread: such a batch gains nothing from more, and idle torch threads spin on the core
    MediaPipe needs. No oneDNN: its per-call set-up costs more than these convolutions (a LeNet
    forward of one crop takes about half the time without it).
    """
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False


def cam_affine(crop_affine: np.ndarray, grid: tuple[float, float]) -> np.ndarray:
    """The frame -> map affine of a crop's Grad-CAM, each cell on the pixels its receptive field is centred on.

    ``grid`` is the explainer's ``(step, offset)`` (:func:`~pipeline.explainers.layer_grid`): cell
    ``i`` is centred on crop pixel ``step * i + offset``, so it spans ``step`` crop pixels around
    that centre. The map covers only the cells' span, not the whole crop: LeNet-5's conv2 cells sit
    on crop pixels 6.5 .. 20.5, and stretching its 8x8 map over the 28x28 crop (or extending its
    edge cells to the crop's border, which would cover three quarters of the crop) would move the
    evidence off the hand.
    """
    step, offset = grid
    origin = offset + 0.5 - step / 2  # the first cell's edge, in continuous crop coordinates
    out = np.asarray(crop_affine, np.float64).copy()
    out[:, 2] -= origin
    return out / step


class LivePipeline:
    """Crops, classification, per-hand tracks and Grad-CAM for the hands of one frame after another.

    Args:
        model: the classifier (in eval mode, as :func:`pipeline.checkpoint.load_model` returns it).
        label_names: its class names; a class named ``none`` is the "no gesture" class.
        settings: the crop settings the model was trained with.
        layer: the Grad-CAM layer (default: the last conv layer); :meth:`next_layer` cycles the conv layers.
        threshold: smoothed confidence below which a hand shows no gesture.
        smooth: follow hands across frames (video); False treats every frame alone (photos).
        decay: per-frame decay of each hand's heatmap scale (:class:`~pipeline.explainers.RunningMax`).
        explain: compute Grad-CAM (:attr:`with_cam`); saliency: compute gradient saliency too, for
            the crop inset (:attr:`with_saliency`). Both can be switched between frames.
    """

    def __init__(self, model: nn.Module, label_names: Sequence[str], settings: CropSettings, layer: str | None = None,
                 threshold: float = 0.5, smooth: bool = True, decay: float = 0.95, explain: bool = True,
                 saliency: bool = False):
        if not 0.0 <= threshold <= 1.0:
            raise UserError(f"--threshold must be between 0 and 1, got {threshold}")
        self.model, self.settings = model.eval(), settings
        self.label_names = list(label_names)
        self.net = explained_module(model)
        self.layers = self.net.conv_layers()
        self.layer = layer or self.layers[-1]
        self._check_layer(self.layer)
        if self.layer not in self.layers:
            self.layers = [self.layer, *self.layers]
        self.with_cam, self.with_saliency, self.decay, self.threshold = explain, saliency, decay, threshold
        self._cams: dict[str, GradCAM] = {}
        self._saliency = Saliency(self.net)
        self._scales: dict[int, RunningMax] = {}
        self.reset(smooth)
        # A process's first backward pass takes about a third of a second: pay it here, not on a frame.
        self.cam()(torch.zeros(1, 1, settings.size, settings.size), 0)

    def reset(self, smooth: bool = True) -> None:
        """Start a new stream: no tracks, no heatmap scales. ``smooth=False`` for photos, which are
        not a sequence: no smoothing, no hysteresis and no matching to the previous photo."""
        n = len(self.label_names)
        none = self.label_names.index(NONE_LABEL) if NONE_LABEL in self.label_names else None
        self.tracker = (HandTracker(n, threshold=self.threshold, none_class=none) if smooth else
                        HandTracker(n, alpha=1.0, threshold=self.threshold, hysteresis=0.0, none_class=none,
                                    max_missed=0, max_jump=0.0))
        self._scales.clear()

    # -- the Grad-CAM layer

    def cam(self) -> GradCAM:
        """The Grad-CAM of the current layer, built once and reused."""
        if self.layer not in self._cams:
            self._cams[self.layer] = GradCAM(self.net, self.layer)
        return self._cams[self.layer]

    def _check_layer(self, name: str) -> None:
        self.net.layer(name)  # an unknown name is a UserError that lists the layers
        features = [n for n, _ in self.net.features.named_children()]
        if name not in features:
            raise UserError(f"layer {name!r} has no spatial map for Grad-CAM; pick one of {', '.join(features)}")

    def set_layer(self, name: str) -> None:
        """Explain at another layer; heatmap scales start afresh (layers have their own ranges)."""
        self._check_layer(name)
        self.layer = name
        self._scales.clear()

    def next_layer(self) -> str:
        """Move to the next layer of :attr:`layers` (wrapping around); returns its name."""
        i = self.layers.index(self.layer) if self.layer in self.layers else -1
        self.set_layer(self.layers[(i + 1) % len(self.layers)])
        return self.layer

    # -- one frame

    def __call__(self, image: np.ndarray, hands: Sequence[Hand]) -> LiveResult:
        """Crop, classify, track and explain the hands of one BGR frame (``hands`` from the hand stage).

        With Grad-CAM on, one forward pass serves both: the Grad-CAM's forward classifies, the
        tracks are updated from its logits, and the backward explains the label each track then
        shows (an ensemble is classified by all its members, so it takes a forward of its own).
        """
        start = time.perf_counter()
        crops = [crop_hand(image, hand, self.settings) for hand in hands]
        after_crop = time.perf_counter()
        result = LiveResult([], {"crop": (after_crop - start) * 1000, "classify": 0.0, "explain": 0.0})
        if not crops:
            self.tracker.update(np.zeros((0, 4)), np.zeros((0, len(self.label_names))))
            self._forget_lost()
            return result
        result.batch = to_float(torch.from_numpy(np.stack([c.image for c in crops]))[:, None])

        def classify(logits: torch.Tensor) -> list[int]:
            """Tracks from this frame's logits; returns the class each hand's map explains."""
            probs = logits.softmax(1).numpy()
            tracks = self.tracker.update(np.array([h.box() for h in hands]), probs)
            self._forget_lost()
            result.hands = [LiveHand(h, c, p, t) for h, c, p, t in zip(hands, crops, probs, tracks)]
            result.ms["classify"] = (time.perf_counter() - after_crop) * 1000
            return self._targets(result)

        if self.with_cam and self.net is self.model:
            cam = self.cam()
            self._set_cams(result, cam, cam(result.batch, classify))
            if self.with_saliency:
                self._set_saliency(result)
            result.ms["explain"] = (time.perf_counter() - after_crop) * 1000 - result.ms["classify"]
            return result
        with torch.inference_mode():  # the model stays in eval mode (set once, in __init__)
            classify(self.model(result.batch))
        self.explain(result)
        return result

    @staticmethod
    def _targets(result: LiveResult) -> list[int]:
        """Per hand: the label its track shows, or this frame's top class while it shows none."""
        return [h.label if h.label is not None else int(h.probs.argmax()) for h in result.hands]

    def _set_cams(self, result: LiveResult, cam: GradCAM, maps: torch.Tensor) -> None:
        for item, raw in zip(result.hands, maps):
            scale = self._scales.setdefault(item.track.id, RunningMax(self.decay))
            item.cam = scale(raw[0]).numpy()
            item.cam_affine = cam_affine(item.crop.affine, cam.grid)

    def _set_saliency(self, result: LiveResult) -> None:
        maps = normalize(self._saliency(result.batch, self._targets(result)))
        for item, raw in zip(result.hands, maps):
            item.saliency = raw[0].numpy()

    def explain(self, result: LiveResult) -> None:
        """Set the maps of a frame's hands (Grad-CAM if :attr:`with_cam`, saliency if :attr:`with_saliency`).

        Each map explains the label the hand's track shows, or this frame's top class while it
        shows none. Call it on a held frame after changing the layer or what is computed (the
        tracks are not touched).
        """
        start = time.perf_counter()
        for item in result.hands:
            item.cam = item.cam_affine = item.saliency = None
        if result.hands:
            if self.with_cam:
                cam = self.cam()
                # (B, 1, h, h): one forward and one backward for all hands
                self._set_cams(result, cam, cam(result.batch, self._targets(result)))
            if self.with_saliency:
                self._set_saliency(result)
        result.ms["explain"] = (time.perf_counter() - start) * 1000

    def _forget_lost(self) -> None:
        """Drop the heatmap scale of hands the tracker no longer follows (a new hand starts afresh)."""
        alive = {t.id for t in self.tracker.tracks}
        for key in [k for k in self._scales if k not in alive]:
            del self._scales[key]


def mirror_hands(hands: Sequence[Hand], width: int) -> list[Hand]:
    """The hands of a frame mirrored left-right (``x -> width - x``): the hands of ``cv2.flip(frame, 1)``.

    Handedness swaps, since MediaPipe names the hand as an unmirrored image shows it; the crops of
    a mirrored frame then equal the crops of the original (see :mod:`pipeline.crops`).
    """
    out = []
    for hand in hands:
        marks, world = hand.landmarks.copy(), hand.world.copy()
        marks[:, 0] = width - marks[:, 0]
        world[:, 0] = -world[:, 0]
        other = "Right" if hand.is_left else "Left"
        out.append(dataclasses.replace(hand, landmarks=marks, world=world, handedness=other))
    return out


def prepare_view(image: np.ndarray, hands: Sequence[Hand], mirror: bool, buffer: np.ndarray | None
                 ) -> tuple[np.ndarray, list[Hand]]:
    """The picture to process and draw on: ``image`` copied (or mirrored) into a reused buffer, and its hands.

    The source's frame stays clean (a paused demo draws the same frame again); ``buffer`` is
    reused when it has the frame's shape, so a stream allocates no new picture per frame.
    """
    if buffer is None or buffer.shape != image.shape:
        buffer = np.empty_like(image)
    if mirror:
        cv2.flip(image, 1, dst=buffer)
        return buffer, mirror_hands(hands, image.shape[1])
    np.copyto(buffer, image)
    return buffer, list(hands)


class StageTimes:
    """Milliseconds per stage and frames per second: over the last ``window`` frames and over the whole run."""

    def __init__(self, window: int = 30):
        self.recent: deque[dict[str, float]] = deque(maxlen=window)
        self.ticks: deque[float] = deque(maxlen=window + 1)
        self.totals = dict.fromkeys(STAGES, 0.0)
        self.frames = 0
        self.first: float | None = None
        self.last: float | None = None

    def add(self, ms: dict[str, float], now: float) -> None:
        """One frame's stage times, at time ``now`` (seconds, ``time.perf_counter()``) when it was shown."""
        self.recent.append(ms)
        self.ticks.append(now)
        for stage in STAGES:
            self.totals[stage] += ms.get(stage, 0.0)
        self.frames += 1
        self.first = now if self.first is None else self.first
        self.last = now

    def recent_ms(self) -> dict[str, float]:
        """Mean milliseconds per stage over the short window."""
        n = max(1, len(self.recent))
        return {s: sum(m.get(s, 0.0) for m in self.recent) / n for s in STAGES}

    def recent_fps(self) -> float:
        """Frames per second over the short window (0 until two frames were shown)."""
        if len(self.ticks) < 2 or self.ticks[-1] <= self.ticks[0]:
            return 0.0
        return (len(self.ticks) - 1) / (self.ticks[-1] - self.ticks[0])

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per stage over the whole run."""
        return {s: self.totals[s] / max(1, self.frames) for s in STAGES}

    def mean_fps(self, start: float | None = None) -> float:
        """Frames per second over the whole run, from ``start`` (default: the first frame) to the last frame."""
        start = self.first if start is None else start
        if self.last is None or start is None or self.last <= start:
            return 0.0
        frames = self.frames if start < self.first else self.frames - 1
        return frames / (self.last - start)


__all__ = [
    "LiveHand", "LivePipeline", "LiveResult", "NONE_LABEL", "STAGES", "StageTimes", "cam_affine",
    "mirror_hands", "prepare_view", "tune_torch_for_live",
]
