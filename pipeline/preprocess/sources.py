"""Frame sources: a webcam, a video file, an image file or a folder of images, behind one iterator.

Every source yields :class:`Frame` records with a millisecond timestamp that only ever increases,
which is what MediaPipe's VIDEO mode demands. Videos take their timestamps from the file; images
and folders count frames.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from pipeline.errors import UserError
from pipeline.resources import SAMPLE_CLIP, SAMPLE_SOURCE, asset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


@dataclass
class Frame:
    """One frame: BGR pixels, its index in the source, a monotonic timestamp, and where it came from."""

    image: np.ndarray
    index: int
    timestamp_ms: int
    source: str


def is_image(path: Path) -> bool:
    """True if ``path`` has an image file suffix."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_video(path: Path) -> bool:
    """True if ``path`` has a video file suffix."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as BGR uint8, turned as its EXIF orientation tag says (so a phone photo is read as it is shown);
    a missing or undecodable file raises :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such image file; check the path")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{path}: not a readable image; convert it to JPEG or PNG")
    return image


class Source:
    """Base class: iterate for frames, close when done (also usable as a context manager)."""

    name: str = ""
    #: True for webcams and videos (MediaPipe VIDEO mode), False for photos (IMAGE mode).
    is_stream: bool = False
    fps: float = 0.0

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def rewind(self) -> None:
        """Start again from the first frame (files; a camera cannot)."""
        raise UserError(f"{self.name}: a live source cannot start again")

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoSource(Source):
    """A video file, read frame by frame with the file's own timestamps."""

    is_stream = True

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: no such video file; check the path")
        self.capture = cv2.VideoCapture(str(self.path))
        if not self.capture.isOpened():
            raise UserError(f"{self.path}: cannot open this video; is it a video file? Try re-encoding it to H.264 MP4")
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
        self.frame_count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.size = (int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        #: Set when the file ended before the frames its header promised (a truncated download or copy).
        self.ended_early: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        index, last_ms = 0, -1
        while True:
            ok, image = self.capture.read()
            if not ok:
                break
            if index == 0 and image is None:
                break
            # Prefer the container's timestamp; fall back to the frame rate. Force strict increase,
            # because some files repeat or lack timestamps and MediaPipe rejects a step back.
            pos = self.capture.get(cv2.CAP_PROP_POS_MSEC)
            ms = int(round(pos)) if pos and pos > 0 else int(round(index * 1000.0 / self.fps))
            ms = max(ms, last_ms + 1)
            last_ms = ms
            yield Frame(image, index, ms, self.name)
            index += 1
        if index == 0:
            raise UserError(f"{self.path}: no frame could be decoded; the file may be damaged or use an unsupported codec")
        if self.frame_count and index < self.frame_count - 1:  # containers may count one frame more than they hold
            self.ended_early = (f"{self.path}: the video ended after frame {index} of the {self.frame_count} its "
                                "header promised; the file may be truncated")

    def rewind(self) -> None:
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def close(self) -> None:
        self.capture.release()


class ImageSource(Source):
    """One image file or a folder of images (sorted by name), one frame each."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(self.path)
        if self.path.is_dir():
            self.files = sorted(p for p in self.path.iterdir() if p.is_file() and is_image(p))
            if not self.files:
                raise UserError(f"{self.path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif self.path.is_file():
            self.files = [self.path]
        else:
            raise UserError(f"{self.path}: no such image or folder; check the path")
        self.fps = 1.0

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            yield Frame(read_image(path), index, index * 1000, str(path))

    def rewind(self) -> None:
        pass  # every iteration reads the files from the first


class CameraSource(Source):
    """A webcam read on its own thread, so a slow consumer never stalls capture.

    Only the newest frame is kept: a consumer slower than the camera skips frames instead of
    falling behind. Timestamps come from the monotonic clock at capture time.
    """

    is_stream = True

    def __init__(self, index: int, width: int | None = None, height: int | None = None):
        self.index = index
        self.name = f"camera {index}"
        # OpenCV logs a dozen lines of its own when an index has no camera; the user gets our one line.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self.capture = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self.capture.isOpened():
            raise UserError(
                f"camera {index} could not be opened; check that it is connected and not used by another "
                "program, try another index, or pass a video file as --source"
            )
        if width:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
        self._frames: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"camera-{index}", daemon=True)
        self._thread.start()

    def _offer(self, item: tuple | None) -> None:
        try:
            self._frames.get_nowait()  # drop the stale frame: only the newest matters
        except queue.Empty:
            pass
        self._frames.put_nowait(item)

    def _read(self) -> None:
        start = time.monotonic()
        try:
            while not self._stop.is_set():
                ok, image = self.capture.read()
                if not ok:
                    return
                self._offer((image, int((time.monotonic() - start) * 1000)))
        finally:
            self._offer(None)  # end marker, also when the reader dies of an exception

    def __iter__(self) -> Iterator[Frame]:
        index, last_ms = 0, -1
        while True:
            try:
                item = self._frames.get(timeout=0.5)
            except queue.Empty:
                if self._thread.is_alive():
                    continue
                item = None
            if item is None:
                if index == 0:
                    raise UserError(f"camera {self.index} opened but gave no frame; is another program using it?")
                return
            image, ms = item
            ms = max(ms, last_ms + 1)
            last_ms = ms
            yield Frame(image, index, ms, self.name)
            index += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.capture.release()


def looped(source: Source) -> Iterator[Frame]:
    """A file source played again and again, as a camera goes on. Timestamps keep increasing across the
    repeats (MediaPipe's video mode needs that); each repeat keeps the file's frame numbers and is its own
    source, ``clip.mp4 (replay 2)``, so a dataset's (source, frame) still names one real frame of one pass."""
    ms_offset, replay = 0, 0
    while True:
        last = None
        for frame in source:
            name = frame.source if replay == 0 else f"{frame.source} (replay {replay})"
            last = Frame(frame.image, frame.index, frame.timestamp_ms + ms_offset, name)
            yield last
        if last is None:
            return
        ms_offset, replay = last.timestamp_ms + round(1000 / (source.fps or 30.0)), replay + 1
        source.rewind()


def open_source(spec: str | int | Path) -> Source:
    """Open a source from a command-line value: a webcam index (``0``), a video, an image, a folder, or
    ``sample`` (the short clip shipped with the package).

    Raises :class:`UserError` with one line naming the source when it cannot be opened.
    """
    text = str(spec)
    if text == SAMPLE_SOURCE:
        return VideoSource(asset(SAMPLE_CLIP))
    if text.isdigit():
        return CameraSource(int(text))
    path = Path(text)
    if path.is_dir():
        return ImageSource(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder; pass a webcam index (0), a video, an image or a folder of images")
    if is_image(path):
        return ImageSource(path)
    return VideoSource(path)
