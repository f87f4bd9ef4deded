"""The hand stage: MediaPipe HandLandmarker (Tasks API) behind a small context manager.

``HandDetector`` runs in IMAGE mode for photos and VIDEO mode for streams. Each detected hand
comes back as a :class:`Hand` record: 21 landmarks in pixels, 21 world landmarks in metres,
and the handedness with its score.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import sys
import weakref
import zipfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import UserError
from pipeline.interrupts import ctrl_c_deferred
from pipeline.resources import HAND_LANDMARKER, asset

#: The bundle shipped in the package (Google's MediaPipe hand landmarker, float16 v1, Apache-2.0).
DEFAULT_LANDMARKER = asset(HAND_LANDMARKER)
HAND_MODEL_SHA256 = "85d861c0d0c8cd1cd80b11db475891a4d5b7869401832b83fe61914e3812422d"
#: Environment variable that points to another hand model; ``--hand-model`` wins over it.
HAND_MODEL_ENV = "HANDCAM_HAND_MODEL"

#: Landmark index pairs that MediaPipe draws as the hand's skeleton.
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16),
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)
#: The palm polygon: wrist and the four finger bases, plus the thumb's base.
PALM = (0, 1, 5, 9, 13, 17)
#: Each finger's base and the landmarks beyond it, base to tip: thumb (from its CMC joint), index, middle, ring, little.
FINGERS = ((1, (2, 3, 4)), (5, (6, 7, 8)), (9, (10, 11, 12)), (13, (14, 15, 16)), (17, (18, 19, 20)))
WRIST, MIDDLE_MCP = 0, 9
#: The black border a photo with no hand found is searched in again, as a fraction of its longer side
#: (see :meth:`HandDetector.detect`); 0 turns the second search off.
PHOTO_BORDER = 0.5
#: The longest side of that framed photo, in pixels: a larger photo is shrunk before it is framed.
PHOTO_FRAMED_SIDE = 2048


@dataclass(frozen=True)
class Hand:
    """One detected hand.

    Attributes:
        landmarks: (21, 3) float32; x, y in pixels of the frame (continuous coordinates: the
            frame spans [0, width] x [0, height]), z relative depth in the same pixel scale.
        world: (21, 3) float32 world landmarks in metres, origin at the hand's centre.
        handedness: ``"Left"`` or ``"Right"`` as MediaPipe names the subject's hand in an
            unmirrored image.
        score: handedness confidence in [0, 1].
    """

    landmarks: np.ndarray
    world: np.ndarray
    handedness: str
    score: float

    @property
    def is_left(self) -> bool:
        return self.handedness == "Left"

    def box(self) -> tuple[float, float, float, float]:
        """Axis-aligned landmark box ``(x0, y0, x1, y1)`` in pixels."""
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        return float(x0), float(y0), float(x1), float(y1)

    def area(self) -> float:
        """Area of the landmark box in square pixels: the largest hand is the subject of a photo."""
        x0, y0, x1, y1 = self.box()
        return (x1 - x0) * (y1 - y0)


@contextlib.contextmanager
def _quiet_native_logs():
    """Silence the INFO lines MediaPipe's native code writes to stderr while it loads.

    They drown the one-line messages users should see. ``HANDCAM_VERBOSE=1`` keeps them.
    """
    if os.environ.get("HANDCAM_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_landmarker(path: str | Path | None = None) -> Path:
    """Find and check the hand model: ``path``, else ``$HANDCAM_HAND_MODEL``, else the shipped file.

    The shipped model must match its sha256 (a damaged or Git-LFS placeholder file is caught here).
    A model chosen by the user is checked to be a MediaPipe ``.task`` bundle holding a hand
    detector and a landmark model; its hash is not fixed, so users can bring a newer release.
    """
    chosen = path or os.environ.get(HAND_MODEL_ENV) or DEFAULT_LANDMARKER
    chosen = Path(chosen)
    if not chosen.is_file():
        raise UserError(
            f"{chosen}: hand model not found; pass --hand-model PATH or set {HAND_MODEL_ENV} "
            "to a MediaPipe hand_landmarker.task"
        )
    stat = chosen.stat()
    if chosen.resolve() == DEFAULT_LANDMARKER.resolve():
        actual = _sha256(str(chosen), stat.st_size, stat.st_mtime)
        if actual != HAND_MODEL_SHA256:
            raise UserError(
                f"{chosen}: sha256 is {actual}, expected {HAND_MODEL_SHA256}; the file is damaged or "
                "incomplete: reinstall the package ('pip install --force-reinstall handcam'), or in a checkout "
                "'git checkout -- pipeline/assets/hand_landmarker.task'"
            )
        return chosen
    try:
        with zipfile.ZipFile(chosen) as bundle:
            names = set(bundle.namelist())
    except (zipfile.BadZipFile, OSError):
        names = set()
    if not {"hand_detector.tflite", "hand_landmarks_detector.tflite"} <= names:
        raise UserError(
            f"{chosen}: not a MediaPipe hand landmarker bundle (a .task zip holding hand_detector.tflite "
            "and hand_landmarks_detector.tflite); download hand_landmarker.task from MediaPipe"
        )
    return chosen


#: Detectors not closed yet: closed at exit, while MediaPipe can still do it. (MediaPipe's own
#: finaliser runs during interpreter teardown and prints a traceback of "NoneType is not callable".)
_OPEN: "weakref.WeakSet[HandDetector]" = weakref.WeakSet()


@atexit.register
def _close_open_detectors() -> None:
    for detector in list(_OPEN):
        detector.close()


def check_num_hands(num_hands: int) -> None:
    if num_hands < 1:
        raise UserError(f"--num-hands must be at least 1, got {num_hands}")


def check_landmarker(path: str | Path | None = None) -> Path:
    """:func:`resolve_landmarker`, then load it once in MediaPipe: a command calls this before it
    creates anything, so a bundle MediaPipe cannot read fails with its one line and leaves nothing behind."""
    with HandDetector(path) as detector:
        return detector.model_path


class HandDetector:
    """MediaPipe HandLandmarker in IMAGE mode (photos) or VIDEO mode (streams).

    Use it as a context manager so the native graph is always closed::

        with HandDetector(video=True) as detector:
            for frame in source:
                hands = detector.detect(frame.image, frame.timestamp_ms)
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        num_hands: int = 2,
        video: bool = False,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ):
        from mediapipe.tasks.python import BaseOptions, vision

        check_num_hands(num_hands)
        self.model_path = resolve_landmarker(model_path)
        self.video = video
        self.num_hands = num_hands
        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_hands=num_hands,
            min_hand_detection_confidence=min_detection_confidence,
            min_hand_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._landmarker = None
        try:
            with _quiet_native_logs(), ctrl_c_deferred():
                self._landmarker = vision.HandLandmarker.create_from_options(options)
        except Exception as e:  # noqa: BLE001  (a bundle that passed the file checks but is no model)
            detail = " ".join(str(e).split())[:200]
            raise UserError(f"{self.model_path}: MediaPipe could not load the hand model ({detail}); "
                            "pass a hand_landmarker.task from MediaPipe") from None
        self._last_ms = -1
        self._warmed = False
        _OPEN.add(self)

    def detect(self, image_bgr: np.ndarray, timestamp_ms: int | None = None) -> list[Hand]:
        """Find the hands in one BGR frame.

        In VIDEO mode ``timestamp_ms`` is required; a repeated or earlier value is moved forward
        by 1 ms, since MediaPipe refuses timestamps that do not increase.

        In IMAGE mode, a photo in which no hand is found is searched again inside a black border of
        :data:`PHOTO_BORDER` times its longer side: MediaPipe's palm detector misses most hands that
        fill the photo (close-ups), and finds them once they are smaller in the frame. The landmarks
        are given in the photo's own pixels either way.
        """
        if self.video and timestamp_ms is None:
            raise ValueError("VIDEO mode needs a timestamp for each frame")
        hands = self._detect(image_bgr, timestamp_ms)
        if hands or self.video or not PHOTO_BORDER:
            return hands
        # A large photo is framed at most PHOTO_FRAMED_SIDE wide (the palm detector sees 192 px anyway).
        scale = min(1.0, PHOTO_FRAMED_SIDE / ((1 + 2 * PHOTO_BORDER) * max(image_bgr.shape[:2])))
        photo = image_bgr if scale == 1.0 else cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        border = int(round(PHOTO_BORDER * max(photo.shape[:2])))
        framed = cv2.copyMakeBorder(photo, border, border, border, border, cv2.BORDER_CONSTANT, value=0)
        back = np.array([scale, scale, scale], np.float32)
        return [replace(h, landmarks=(h.landmarks - np.array([border, border, 0], np.float32)) / back)
                for h in self._detect(framed, None)]

    def _detect(self, image_bgr: np.ndarray, timestamp_ms: int | None) -> list[Hand]:
        import mediapipe as mp

        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        # The first call logs a few native warnings too. A Ctrl-C waits for the native call (see pipeline.interrupts).
        with contextlib.nullcontext() if self._warmed else _quiet_native_logs(), ctrl_c_deferred():
            if self.video:
                ms = max(int(timestamp_ms), self._last_ms + 1)
                self._last_ms = ms
                result = self._landmarker.detect_for_video(image, ms)
            else:
                result = self._landmarker.detect(image)
        self._warmed = True
        height, width = image_bgr.shape[:2]
        return hands_from_result(result, width, height)

    def close(self) -> None:
        """Release MediaPipe's graph (safe to call twice)."""
        if self._landmarker is not None:
            with _quiet_native_logs(), ctrl_c_deferred():
                self._landmarker.close()
            self._landmarker = None
        _OPEN.discard(self)

    def __enter__(self) -> "HandDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hands_from_result(result, width: int, height: int) -> list[Hand]:
    """Turn a ``HandLandmarkerResult`` into :class:`Hand` records with pixel landmarks."""
    hands = []
    scale = np.array([width, height, width], np.float32)
    for marks, world, handed in zip(result.hand_landmarks, result.hand_world_landmarks, result.handedness):
        xyz = np.array([[m.x, m.y, m.z] for m in marks], np.float32) * scale
        wxyz = np.array([[m.x, m.y, m.z] for m in world], np.float32)
        top = handed[0]
        hands.append(Hand(xyz, wxyz, top.category_name, float(top.score)))
    return hands
