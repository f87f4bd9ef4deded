"""The live path of one video frame, after the hand stage: crops -> one model batch -> tracks -> maps.

:class:`LivePipeline` is built once per stream (model, Grad-CAM per layer, tracker, one
:class:`~pipeline.explainers.RunningMax` per tracked hand and layer) and fed frame after frame;
each call returns a plain :class:`LiveResult`, which the screen reads and never writes back::

    live = LivePipeline(load_model())
    with DetectorProcess(source, video=True) as frames:
        for frame, hands, detect_ms in frames:
            result = live(frame.image, hands, Explain(layer="conv2"))   # result.hands[i]: crop, label, cam

All hands of a frame go through the model as one batch. With Grad-CAM on, that one forward pass
serves both: its logits update the tracks, then one backward explains, for every hand, the label
its track shows (or this frame's top class while it shows none).

MediaPipe itself runs one frame ahead in a process of its own
(:class:`pipeline.preprocess.detector_process.DetectorProcess`). Nothing here draws or knows
about windows: see :mod:`pipeline.ui.demo_session`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.explainers import INPUT, GradCAM, RunningMax, Saliency, normalize
from pipeline.explainers.quality import CAM_METHODS, DEFAULT_EXPLAINER, METHODS
from pipeline.labels import NONE_LABEL
from pipeline.lenet.checkpoint import LoadedModel
from pipeline.lenet.model import to_float
from pipeline.live.tracking import HandTracker
from pipeline.preprocess.crops import Crop, CropSettings, crop_hand
from pipeline.preprocess.hands import Hand


@dataclass(frozen=True)
class Explain:
    """What to explain on a frame: Grad-CAM at ``layer`` (None: no Grad-CAM), and gradient saliency or not."""

    layer: str | None = None
    saliency: bool = False


@dataclass
class LiveHand:
    """One hand of one frame, with everything the screen shows about it.

    Attributes:
        hand: the detected hand (landmarks in frame pixels).
        crop: the crop the model saw, with its frame->crop affine.
        probs: (C,) this frame's class probabilities.
        track_id: the hand's identity across frames.
        smoothed: (C,) the track's smoothed probabilities.
        label: the class the track shows, or None for "no gesture" (below the threshold, or ``none``).
        cam: (n, n) float32 Grad-CAM in [0, 1], scaled by the track's running maximum (comparable
            across frames); None when Grad-CAM is off. Its cells lie on the crop by ``cam_grid``
            (see :func:`pipeline.draw.heatmaps.map_affine`).
        cam_grid: ``(step, offset)`` of the Grad-CAM's cells on the crop grid.
        saliency: (S, S) float32 gradient saliency in [0, 1] on the crop grid, or None when it is off.
    """

    hand: Hand
    crop: Crop
    probs: np.ndarray
    track_id: int
    smoothed: np.ndarray
    label: int | None
    cam: np.ndarray | None = None
    cam_grid: tuple[float, float] | None = None
    saliency: np.ndarray | None = None

    @property
    def target(self) -> int:
        """The class its maps explain: the label shown, or this frame's top class while none is."""
        return self.label if self.label is not None else int(self.probs.argmax())


@dataclass
class LiveResult:
    """One frame's result: its hands, the model's labels, what was explained, and the milliseconds of
    each stage run here (crop, classify, explain). ``batch`` is the model's input (B, 1, S, S) in [0, 1]
    (None without a hand)."""

    hands: list[LiveHand]
    labels: list[str]
    explained: Explain = Explain()
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


class LivePipeline:
    """Crops, classification, per-hand tracks and maps for the hands of one frame after another.

    Args:
        model: the gesture model (:func:`pipeline.lenet.checkpoint.load_model`), trained on hand crops.
        threshold: smoothed confidence below which a hand shows no gesture.
        smooth: follow hands across frames (video); False treats every frame alone (photos).
        decay: per-frame decay of each hand's heatmap scale (:class:`~pipeline.explainers.RunningMax`).
    """

    def __init__(self, model: LoadedModel, threshold: float = 0.5, smooth: bool = True, decay: float = 0.95,
                 method: str = DEFAULT_EXPLAINER[0]):
        if not 0.0 <= threshold <= 1.0:
            raise UserError(f"--threshold must be between 0 and 1, got {threshold}")
        if method not in CAM_METHODS:
            raise UserError(f"unknown map method {method!r}; choose one of {', '.join(CAM_METHODS)}")
        #: The CAM method of the heat maps (:data:`pipeline.explainers.quality.METHODS`).
        self.method = method
        self.settings: CropSettings = model.require_hand_crops()
        self.model, self.net = model.network.eval(), model.explained
        self.labels = list(model.labels)
        #: The layers a CAM can explain at (the input, and every layer with a spatial map); those the
        #: demo's ``n`` key steps through (input, then each conv layer and its activation); and the
        #: default (:data:`DEFAULT_EXPLAINER`'s, else the last conv layer).
        # The input is a layer only for a per-cell method (HiResCAM): a per-channel weight there copies the crop.
        features = [n for n, _ in self.net.features.named_children() if not n.startswith(("pool", "drop"))]
        inputs = [INPUT] if METHODS[method](self.net, None).per_cell else []
        self.layers = [*inputs, *features]
        self.key_layers = [*inputs, *[n for n in features if n.startswith(("conv", "act"))]]
        self.default_layer = (DEFAULT_EXPLAINER[1] if method == DEFAULT_EXPLAINER[0] and DEFAULT_EXPLAINER[1] in self.layers
                              else self.net.conv_layers()[-1])
        self.threshold, self.decay = threshold, decay
        self._cams: dict[str, GradCAM] = {}
        self._saliency = Saliency(self.net)
        self._scales: dict[tuple[int, str], RunningMax] = {}
        self.reset(smooth)
        # A process's first backward pass takes about a third of a second: pay it here, not on a frame.
        self.cam(self.default_layer)(torch.zeros(1, 1, self.settings.size, self.settings.size), 0)

    def reset(self, smooth: bool = True) -> None:
        """Start a new stream: no tracks, no heatmap scales. ``smooth=False`` for photos, which are
        not a sequence: no smoothing, no hysteresis and no matching to the previous photo."""
        n = len(self.labels)
        none = self.labels.index(NONE_LABEL) if NONE_LABEL in self.labels else None
        self.tracker = (HandTracker(n, threshold=self.threshold, none_class=none) if smooth else
                        HandTracker(n, alpha=1.0, threshold=self.threshold, hysteresis=0.0, none_class=none,
                                    max_missed=0, max_jump=0.0))
        self._scales.clear()

    def check_layer(self, name: str) -> str:
        """``name`` if Grad-CAM can explain there; else one line listing the layers that it can."""
        if name not in self.layers:
            raise UserError(f"layer {name!r} has no spatial map for Grad-CAM; pick one of {', '.join(self.layers)}")
        return name

    def cam(self, layer: str) -> GradCAM:
        """The CAM of a layer (:attr:`method`), built once and reused."""
        if layer not in self._cams:
            self._cams[self.check_layer(layer)] = METHODS[self.method](self.net, layer)
        return self._cams[layer]

    # -- one frame

    def __call__(self, image: np.ndarray, hands: Sequence[Hand], explain: Explain = Explain()) -> LiveResult:
        """Crop, classify, track and explain the hands of one BGR frame (``hands`` from the hand stage)."""
        start = time.perf_counter()
        crops = [crop_hand(image, hand, self.settings) for hand in hands]
        after_crop = time.perf_counter()
        result = LiveResult([], self.labels, explain, {"crop": (after_crop - start) * 1000, "classify": 0.0, "explain": 0.0})
        if not crops:
            self._track(np.zeros((0, 4)), np.zeros((0, len(self.labels))))
            return result
        result.batch = to_float(torch.from_numpy(np.stack([c.image for c in crops]))[:, None])
        boxes = np.array([h.box() for h in hands])
        if explain.layer is not None and self.net is self.model:
            # One forward classifies and is kept for the Grad-CAM backward.
            cam = self.cam(explain.layer)
            with cam.forward(result.batch) as forward:
                result.hands = self._hands(hands, crops, boxes, forward.logits)
                result.ms["classify"] = (time.perf_counter() - after_crop) * 1000
                self._set_cams(result, cam, forward.attribute([h.target for h in result.hands]))
            if explain.saliency:
                self._set_saliency(result)
            result.ms["explain"] = (time.perf_counter() - after_crop) * 1000 - result.ms["classify"]
            return result
        with torch.inference_mode():  # an ensemble is classified by all its members, explained by its first
            logits = self.model(result.batch)
        result.hands = self._hands(hands, crops, boxes, logits)
        result.ms["classify"] = (time.perf_counter() - after_crop) * 1000
        return self.explain(result, explain)

    def explain(self, result: LiveResult, explain: Explain) -> LiveResult:
        """``result`` with its maps made anew for ``explain`` (a held frame whose layer or maps changed).

        The tracks are not touched: the frame was seen once. Returns a new result.
        """
        start = time.perf_counter()
        out = dataclasses.replace(result, explained=explain, ms=dict(result.ms),
                                  hands=[dataclasses.replace(h, cam=None, cam_grid=None, saliency=None) for h in result.hands])
        if out.hands:
            if explain.layer is not None:
                cam = self.cam(explain.layer)
                # (B, 1, h, h): one forward and one backward for all hands
                self._set_cams(out, cam, cam(out.batch, [h.target for h in out.hands]))
            if explain.saliency:
                self._set_saliency(out)
        out.ms["explain"] = (time.perf_counter() - start) * 1000
        return out

    def _hands(self, hands: Sequence[Hand], crops: list[Crop], boxes: np.ndarray, logits: torch.Tensor) -> list[LiveHand]:
        probs = logits.softmax(1).numpy()
        tracks = self._track(boxes, probs)
        return [LiveHand(h, c, p, t.id, t.probs.copy(), t.label) for h, c, p, t in zip(hands, crops, probs, tracks)]

    def _track(self, boxes: np.ndarray, probs: np.ndarray):
        tracks = self.tracker.update(boxes, probs)
        # Drop the heatmap scales of hands the tracker no longer follows (a new hand starts afresh).
        alive = {t.id for t in self.tracker.tracks}
        for key in [k for k in self._scales if k[0] not in alive]:
            del self._scales[key]
        return tracks

    def _set_cams(self, result: LiveResult, cam: GradCAM, maps: torch.Tensor) -> None:
        layer = result.explained.layer
        for item, raw in zip(result.hands, maps):
            scale = self._scales.setdefault((item.track_id, layer), RunningMax(self.decay))
            item.cam, item.cam_grid = scale(raw[0]).numpy(), cam.grid

    def _set_saliency(self, result: LiveResult) -> None:
        maps = normalize(self._saliency(result.batch, [h.target for h in result.hands]))
        for item, raw in zip(result.hands, maps):
            item.saliency = raw[0].numpy()


def mirror_hands(hands: Sequence[Hand], width: int) -> list[Hand]:
    """The hands of a frame mirrored left-right (``x -> width - x``): the hands of ``cv2.flip(frame, 1)``.

    Handedness swaps, since MediaPipe names the hand as an unmirrored image shows it.
    """
    out = []
    for hand in hands:
        marks, world = hand.landmarks.copy(), hand.world.copy()
        marks[:, 0] = width - marks[:, 0]
        world[:, 0] = -world[:, 0]
        other = "Right" if hand.is_left else "Left"
        out.append(dataclasses.replace(hand, landmarks=marks, world=world, handedness=other))
    return out


def mirror_result(result: LiveResult, width: int) -> LiveResult:
    """A frame's result as the mirrored frame (``cv2.flip(frame, 1)``) shows it: hands and crop affines
    mirrored, crops and maps unchanged. The screen mirrors the view without computing anything again."""
    flip = np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # mirrored frame -> frame
    hands = []
    for item, hand in zip(result.hands, mirror_hands([h.hand for h in result.hands], width)):
        crop = dataclasses.replace(item.crop, affine=np.asarray(item.crop.affine, np.float64) @ flip)
        hands.append(dataclasses.replace(item, hand=hand, crop=crop))
    return dataclasses.replace(result, hands=hands)


__all__ = ["Explain", "LiveHand", "LivePipeline", "LiveResult", "mirror_hands", "mirror_result", "tune_torch_for_live"]
