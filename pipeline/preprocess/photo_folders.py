"""Import labelled photos and videos into a dataset: ``DIR/LABEL/*.jpg|*.mp4`` -> crops.

Detection is CPU-bound, so files are spread over worker processes; only the main process writes,
in file order, so the result is the same for any number of workers and a Ctrl-C loses nothing
already written. Re-running an import skips the files (and video frames) already saved.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.errors import UserError
from pipeline.labels import check_label
from pipeline.preprocess.crops import Crop, CropSettings, crop_hand
from pipeline.preprocess.hands import Hand, HandDetector, resolve_landmarker
from pipeline.preprocess.sources import VideoSource, is_image, is_video, read_image

_SESSION = re.compile(r"^(.*?)_?pic\d+$")


def session_of(path: str | Path) -> str:
    """The recording session of a file: the name's prefix before ``_pic<digits>``.

    ``996_pic00012.jpg`` -> ``996``; ``pic00107.jpg`` -> ``pic``; a name without that pattern
    (``Hand_0000084.jpg``, ``clip.mp4``) is a session of its own: its stem.
    """
    stem = Path(path).stem
    match = _SESSION.match(stem)
    if match is None:
        return stem
    return match.group(1) or "pic"


@dataclass
class Task:
    """One file to import."""

    path: Path
    relative: str  # path relative to the import root: the sample's ``source``
    label: str
    group: str


@dataclass
class FileResult:
    """What a worker found in one file: per frame, the hands and their crops."""

    task: Task
    frames: list[tuple[int, int, tuple[int, int], list[tuple[Hand, Crop]]]] = field(default_factory=list)
    error: str = ""


def scan(root: str | Path, label_map: dict[str, str] | None = None) -> list[Task]:
    """List the files under ``root/LABEL/`` (photos and videos), sorted, with label and session."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; --from takes a folder with one subfolder per label")
    label_map = label_map or {}
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UserError(f"{root}: no label subfolders; put each label's photos or videos in DIR/LABEL/")
    unknown = set(label_map) - {p.name for p in folders}
    if unknown:
        raise UserError(f"--map names folder(s) {', '.join(sorted(unknown))} that {root} does not have")
    tasks = []
    for folder in folders:
        label = check_label(label_map.get(folder.name, folder.name))
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (is_image(path) or is_video(path)):
                tasks.append(Task(path, path.relative_to(root).as_posix(), label, session_of(path)))
    if not tasks:
        raise UserError(f"{root}: the label folders hold no photos or videos")
    return tasks


# Worker state: one IMAGE-mode detector per process, made once.
_worker: dict = {}


def _init_worker(hand_model: str | None, num_hands: int, settings: CropSettings, stride: int) -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    _worker.update(hand_model=hand_model, num_hands=num_hands, settings=settings, stride=stride)
    try:
        _worker["image"] = HandDetector(hand_model, num_hands=num_hands)
    except UserError as e:
        # Kept for _process to report: a pool restarts a worker whose initializer raises, forever.
        _worker["image"] = None
        _worker["failed"] = str(e)


class _LoadError(Exception):
    """The hand model passed the file checks, but MediaPipe could not load it."""


def _process(task: Task) -> FileResult:
    if _worker.get("image") is None:
        raise _LoadError(_worker.get("failed", "unknown error"))
    settings: CropSettings = _worker["settings"]
    result = FileResult(task)
    try:
        if is_image(task.path):
            image = read_image(task.path)
            hands = _worker["image"].detect(image)
            size = (image.shape[1], image.shape[0])
            result.frames.append((0, 0, size, [(h, crop_hand(image, h, settings)) for h in hands]))
        else:
            with VideoSource(task.path) as video, HandDetector(
                _worker["hand_model"], num_hands=_worker["num_hands"], video=True
            ) as detector:
                for frame in video:
                    # Every frame goes through the tracker; only every stride-th is kept.
                    hands = detector.detect(frame.image, frame.timestamp_ms)
                    if frame.index % _worker["stride"]:
                        continue
                    size = (frame.image.shape[1], frame.image.shape[0])
                    crops = [(h, crop_hand(frame.image, h, settings)) for h in hands]
                    result.frames.append((frame.index, frame.timestamp_ms, size, crops))
    except UserError as e:
        result.error = str(e)
    return result


def detect_files(tasks: list[Task], settings: CropSettings, workers: int = 1, hand_model: str | None = None,
                 num_hands: int = 2, stride: int = 5) -> Iterator[FileResult]:
    """Detect and crop the hands of each file, in file order, over ``workers`` processes.

    Photos give one frame; videos give every ``stride``-th frame (all frames are tracked).
    """
    resolve_landmarker(hand_model)  # the clear lines for a missing or damaged file, before any worker
    return _results(tasks, workers, (hand_model, num_hands, settings, max(1, stride)))


def _results(tasks: list[Task], workers: int, init_args: tuple) -> Iterator[FileResult]:
    try:
        if workers <= 1:
            _init_worker(*init_args)
            try:
                yield from map(_process, tasks)
            finally:
                detector = _worker.pop("image", None)
                if detector is not None:
                    detector.close()
            return
        # "spawn": MediaPipe's native threads do not survive a fork.
        with mp.get_context("spawn").Pool(workers, _init_worker, init_args) as pool:
            yield from pool.imap(_process, tasks, chunksize=4)
    except _LoadError as e:
        raise UserError(str(e)) from None


def parse_label_map(items: list[str]) -> dict[str, str]:
    """Parse ``FOLDER=LABEL`` pairs from the command line."""
    out = {}
    for item in items:
        folder, sep, label = item.partition("=")
        if not sep or not folder:
            raise UserError(f"--map {item!r}: write it as FOLDER=LABEL, for example 0=fist")
        out[folder] = check_label(label)
    return out
