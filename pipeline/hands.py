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
import time
import weakref
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from .errors import UserError

#: The model shipped in ``models/`` (Google's MediaPipe hand landmarker, float16 v1, Apache-2.0).
DEFAULT_HAND_MODEL = Path(__file__).resolve().parent.parent / "models" / "hand_landmarker.task"
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
WRIST, MIDDLE_MCP = 0, 9


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


def resolve_hand_model(path: str | Path | None = None) -> Path:
    """Find and check the hand model: ``path``, else ``$HANDCAM_HAND_MODEL``, else the shipped file.

    The shipped model must match its sha256 (a damaged or Git-LFS placeholder file is caught here).
    A model chosen by the user is checked to be a MediaPipe ``.task`` bundle holding a hand
    detector and a landmark model; its hash is not fixed, so users can bring a newer release.
    """
    chosen = path or os.environ.get(HAND_MODEL_ENV) or DEFAULT_HAND_MODEL
    chosen = Path(chosen)
    if not chosen.is_file():
        raise UserError(
            f"{chosen}: hand model not found; pass --hand-model PATH or set {HAND_MODEL_ENV} "
            "to a MediaPipe hand_landmarker.task"
        )
    stat = chosen.stat()
    if chosen.resolve() == DEFAULT_HAND_MODEL:
        actual = _sha256(str(chosen), stat.st_size, stat.st_mtime)
        if actual != HAND_MODEL_SHA256:
            raise UserError(
                f"{chosen}: sha256 is {actual}, expected {HAND_MODEL_SHA256}; the file is damaged or "
                "incomplete: restore it with 'git checkout -- models/hand_landmarker.task'"
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


def _check_num_hands(num_hands: int) -> None:
    if num_hands < 1:
        raise UserError(f"--num-hands must be at least 1, got {num_hands}")


def check_hand_model(path: str | Path | None = None) -> Path:
    """:func:`resolve_hand_model`, then load it once in MediaPipe: a command calls this before it
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

        _check_num_hands(num_hands)
        self.model_path = resolve_hand_model(model_path)
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
            with _quiet_native_logs():
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
        """
        import mediapipe as mp

        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        if self.video and timestamp_ms is None:
            raise ValueError("VIDEO mode needs a timestamp for each frame")
        # The first call logs a few native warnings too.
        with contextlib.nullcontext() if self._warmed else _quiet_native_logs():
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
            with _quiet_native_logs():
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


def detect_each(source: Iterable, detector: HandDetector) -> Iterator[tuple[object, list[Hand], float]]:
    """``(frame, hands, detect_ms)`` for each frame of a source, detected inline (no process; see
    :class:`DetectorProcess`, which yields the same)."""

    for frame in source:
        start = time.perf_counter()
        hands = detector.detect(frame.image, frame.timestamp_ms)
        yield frame, hands, (time.perf_counter() - start) * 1000


def _serve(conn, model_path: str, num_hands: int, video: bool) -> None:
    """The body of :class:`DetectorProcess`'s process: detect each frame the parent puts in shared memory."""
    import signal
    from multiprocessing import shared_memory

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes us
    try:
        detector = HandDetector(model_path, num_hands=num_hands, video=video)
    except BaseException as e:  # noqa: BLE001 (reported to the parent, which raises it)
        message = str(e) if isinstance(e, UserError) else f"{model_path}: {type(e).__name__}: {e}"
        conn.send(("error", " ".join(message.split()), 0.0))  # one line for the user
        return
    conn.send(("ready", None, 0.0))
    attached: dict[int, shared_memory.SharedMemory] = {}
    with detector:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                break
            if request is None:
                break
            slot, name, shape, timestamp_ms = request
            memory = attached.get(slot)
            if memory is None or memory.name != name:  # the parent grew this slot for a larger frame
                if memory is not None:
                    memory.close()
                memory = attached[slot] = shared_memory.SharedMemory(name=name)
            image = np.ndarray(shape, np.uint8, memory.buf)
            start = time.perf_counter()
            try:
                hands = detector.detect(image, timestamp_ms)
            except Exception as e:  # noqa: BLE001
                conn.send(("error", f"{type(e).__name__}: {e}", 0.0))
                break
            finally:
                del image
            conn.send(("ok", hands, (time.perf_counter() - start) * 1000))
    for memory in attached.values():
        memory.close()


#: How long :class:`DetectorProcess` polls for a result before it sleeps until one comes.
SPIN_S = 0.25
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


class DetectorProcess:
    """Iterate ``(frame, hands, detect_ms)`` over a source, MediaPipe running in a process of its own.

    Why a process: MediaPipe's Python API hands every native call to a helper thread and waits
    for it, so each frame passes the GIL back and forth several times. Beside a busy Python
    thread (ours: crop, classify, Grad-CAM, draw), every pass waits for the GIL and MediaPipe
    slows by a tenth to a half. In its own process it keeps its own core and its own GIL.

    Frames go through shared memory (no pickling of pixels); ``depth`` frames are in flight, so
    the next frame is detected while the caller works on this one. Frames come out in order.
    With ``spin`` (the default) the caller waits for a result by polling rather than sleeping:
    it costs the rest of a core while it waits, but a sleeping core's wake-up cost most of the
    gain on a 2-vCPU virtual machine (the demo at 0.93 x bare MediaPipe's FPS sleeping, at or
    above it polling; see ``benchmarks/demo_fps.py``). ``spin=False`` sleeps (``--low-cpu``).
    The hand model is checked here, in the caller's process, so a bad one fails with its clear
    line before anything starts. A detector process that dies raises ``RuntimeError``; closing
    (or leaving the ``with`` block) stops the process and frees the shared memory.
    """

    def __init__(self, source: Iterable, model_path: str | Path | None = None, num_hands: int = 2,
                 video: bool = True, depth: int = 2, spin: bool = True, start_timeout: float = 120.0):
        import multiprocessing

        _check_num_hands(num_hands)  # here too: before a process is started for nothing
        self.source, self.depth, self.spin = source, max(1, depth), spin
        self.model_path = resolve_hand_model(model_path)
        context = multiprocessing.get_context("spawn")  # no fork: torch and OpenCV threads don't survive it
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, str(self.model_path), num_hands, video),
                                        name="hand-detector", daemon=True)
        self._process.start()
        child.close()
        self._slots: list = [None] * self.depth
        try:
            status, message, _ = self._receive(start_timeout)
            if status == "error":
                raise UserError(message)  # the worker's line names the file
        except BaseException:
            self.close()
            raise

    def _receive(self, timeout: float | None = None) -> tuple[str, object, float]:
        if self.spin:
            # Poll, yielding the core to any other thread, for up to SPIN_S; then sleep in poll().
            end = time.perf_counter() + SPIN_S
            while not self._conn.poll(0) and time.perf_counter() < end:
                _yield()
        if timeout is not None and not self._conn.poll(timeout):
            raise RuntimeError(f"the hand detector process did not answer in {timeout:.0f} s")
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            self._process.join(timeout=1)
            raise RuntimeError(f"the hand detector process stopped (exit code {self._process.exitcode}); "
                               "rerun with HANDCAM_VERBOSE=1 to see MediaPipe's messages") from None

    def _send(self, slot: int, frame) -> None:
        from multiprocessing import shared_memory

        image = np.ascontiguousarray(frame.image, dtype=np.uint8)
        memory = self._slots[slot]
        if memory is None or memory.size < image.nbytes:
            if memory is not None:
                memory.close()
                memory.unlink()
            memory = self._slots[slot] = shared_memory.SharedMemory(create=True, size=image.nbytes)
        np.ndarray(image.shape, np.uint8, memory.buf)[...] = image
        self._conn.send((slot, memory.name, image.shape, frame.timestamp_ms))

    def __iter__(self) -> Iterator[tuple[object, list[Hand], float]]:
        frames = iter(self.source)
        pending: list = []
        slot, ended = 0, False
        while True:
            while not ended and len(pending) < self.depth:
                frame = next(frames, None)
                if frame is None:
                    ended = True
                    break
                self._send(slot, frame)
                pending.append(frame)
                slot = (slot + 1) % self.depth
            if not pending:
                return
            status, hands, ms = self._receive()
            if status == "error":
                raise RuntimeError(f"MediaPipe failed on a frame: {hands}")
            yield pending.pop(0), hands, ms

    def close(self) -> None:
        """Stop the process (it finishes the frames in flight) and free the shared memory; safe to call twice."""
        if self._process.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self._conn.send(None)
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5)
        self._conn.close()
        for i, memory in enumerate(self._slots):
            if memory is not None:
                memory.close()
                with contextlib.suppress(FileNotFoundError):
                    memory.unlink()
                self._slots[i] = None

    def __enter__(self) -> "DetectorProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
