"""MediaPipe in a process of its own, fed frames through shared memory: what the live demo runs.

:class:`DetectorProcess` yields ``(frame, hands, detect_ms)`` like :func:`detect_each`, which
detects inline (the benchmark's baseline).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from pipeline.errors import UserError
from pipeline.preprocess.hands import Hand, HandDetector, check_num_hands, resolve_landmarker


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


class DetectorDied(RuntimeError):
    """The detector process stopped (killed, or crashed in MediaPipe's native code)."""


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

        check_num_hands(num_hands)  # here too: before a process is started for nothing
        self.source, self.depth, self.spin = source, max(1, depth), spin
        self.model_path = resolve_landmarker(model_path)
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
            raise self._died() from None

    def _died(self) -> DetectorDied:
        """The error for a detector process that is gone (killed, crashed), with its exit code."""
        self._process.join(timeout=1)
        return DetectorDied(f"the hand detector process stopped (exit code {self._process.exitcode}); "
                            "rerun with HANDCAM_VERBOSE=1 to see MediaPipe's messages")

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
        try:
            self._conn.send((slot, memory.name, image.shape, frame.timestamp_ms))
        except OSError:  # a closed pipe (BrokenPipeError): the process went away before this frame, not during it
            raise self._died() from None

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
