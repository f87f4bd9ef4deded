"""Folders of labelled photos and videos (``DIR/LABEL/*.jpg|*.mp4``): what they hold, and their hands.

:func:`scan` lists the files with their label and group (the session or person a split keeps
together, see :class:`GroupRule`); :func:`detect_files` runs MediaPipe and the crop stage on
them, over worker processes or Ray actors (:mod:`pipeline.engines`), and yields the results in file order.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from pipeline.engines import Engine, as_engine
from pipeline.engines.processes import map_on_processes
from pipeline.errors import UserError
from pipeline.labels import check_label
from pipeline.preprocess.crops import Crop, CropSettings, crop_hand
from pipeline.preprocess.hands import Hand, HandDetector, resolve_landmarker
from pipeline.preprocess.sources import VideoSource, is_image, is_video, read_image

_SESSION = re.compile(r"^(.*?)_?pic\d+$")
#: How to name a file's group: its session (:func:`session_of`), a regular expression, or one name for all.
GROUPINGS = ("session", "regex", "constant")


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


@dataclass(frozen=True)
class GroupRule:
    """How a file's group is named. ``session``: :func:`session_of`; ``regex``: the match groups of
    ``pattern`` in the file's name, joined by ``-``; ``constant``: ``pattern`` itself, for every file."""

    kind: str = "session"
    pattern: str = ""

    def __post_init__(self) -> None:
        if self.kind not in GROUPINGS:
            raise ValueError(f"unknown grouping {self.kind!r}")
        if self.kind == "regex":
            try:
                compiled = re.compile(self.pattern)
            except re.error as e:
                raise UserError(f"--group-by {self.pattern!r}: not a regular expression ({e})") from None
            if compiled.groups < 1:
                raise UserError(f"--group-by {self.pattern!r}: needs a (capture group) naming the group")

    def group_of(self, path: Path) -> str:
        if self.kind == "constant":
            return self.pattern
        if self.kind == "session":
            return session_of(path)
        match = re.search(self.pattern, path.name)
        if match is None or not all(match.groups()):
            raise UserError(f"{path}: --group-by {self.pattern!r} does not match this file's name; "
                            "widen the pattern, or sort the file out")
        return "-".join(match.groups())


@dataclass
class Task:
    """One file to import."""

    path: Path
    relative: str  # path relative to the import root: the sample's ``source``
    label: str
    group: str


@dataclass
class FoundHand:
    """A hand MediaPipe found, and its crop."""

    hand: Hand
    crop: Crop


@dataclass
class FoundFrame:
    """One photo, or one video frame: where it is in its file, its size (width, height), and its hands."""

    index: int
    timestamp_ms: int
    size: tuple[int, int]
    hands: list[FoundHand]


@dataclass
class FileResult:
    """What a worker found in one file: its frames (one for a photo), or the error that made it unreadable."""

    task: Task
    frames: list[FoundFrame] = field(default_factory=list)
    error: str = ""
    warning: str = ""  # a video that ended before its header's frame count

    @property
    def status(self) -> str:
        """``unreadable``, ``no_hand`` or ``found``."""
        if self.error:
            return "unreadable"
        return "found" if any(f.hands for f in self.frames) else "no_hand"


def _files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted; folders reached through symbolic links are followed."""
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(parent) / name for name in files if not name.startswith(".")]
    return sorted(found)


def scan(root: str | Path, label_map: dict[str, str] | None = None, grouping: GroupRule = GroupRule()) -> list[Task]:
    """List the files under ``root/LABEL/`` (photos and videos), sorted, with label and group."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; give a folder with one subfolder of photos or videos per label (DIR/LABEL/)")
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
        for path in _files_under(folder):
            if is_image(path) or is_video(path):
                tasks.append(Task(path, path.relative_to(root).as_posix(), label, grouping.group_of(path)))
    if not tasks:
        raise UserError(f"{root}: the label folders hold no photos or videos")
    return tasks


# Worker state: one IMAGE-mode detector per process, made once.
_worker: dict = {}


def _init_worker(hand_model: str | None, num_hands: int, settings: CropSettings, stride: int) -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    _worker.update(hand_model=hand_model, num_hands=num_hands, settings=settings, stride=stride)
    # A model MediaPipe cannot load raises UserError here; the engines raise it to the caller as itself.
    _worker["image"] = HandDetector(hand_model, num_hands=num_hands)


def _process(task: Task) -> FileResult:
    settings: CropSettings = _worker["settings"]
    result = FileResult(task)
    try:
        if is_image(task.path):
            image = read_image(task.path)
            hands = _worker["image"].detect(image)
            found = [FoundHand(h, crop_hand(image, h, settings)) for h in hands]
            result.frames.append(FoundFrame(0, 0, (image.shape[1], image.shape[0]), found))
        else:
            with VideoSource(task.path) as video, HandDetector(
                _worker["hand_model"], num_hands=_worker["num_hands"], video=True
            ) as detector:
                for frame in video:
                    # Every frame goes through the tracker; only every stride-th is kept.
                    hands = detector.detect(frame.image, frame.timestamp_ms)
                    if frame.index % _worker["stride"]:
                        continue
                    found = [FoundHand(h, crop_hand(frame.image, h, settings)) for h in hands]
                    result.frames.append(FoundFrame(frame.index, frame.timestamp_ms,
                                                    (frame.image.shape[1], frame.image.shape[0]), found))
                result.warning = video.ended_early or ""
    except UserError as e:
        result.error = str(e)
    return result


def _process_copy(item: tuple[Task, bytes | None]) -> FileResult:
    """:func:`_process` on the file's bytes, sent by the driver (a node of a cluster need not see its folders).

    The bytes are written to a temporary file of the same name; the result names the original file.
    ``None`` (an actor on the driver's machine, or a file the driver could not read) is the file itself.
    """
    task, data = item
    if data is None:
        return _process(task)
    with tempfile.TemporaryDirectory(prefix="handcam-") as tmp:
        copy = Path(tmp) / task.path.name
        copy.write_bytes(data)
        result = _process(replace(task, path=copy))
    result.task = task
    result.error = result.error.replace(str(copy), str(task.path))
    result.warning = result.warning.replace(str(copy), str(task.path))
    return result


def _read_for_copy(task: Task, here: bool) -> tuple[Task, bytes | None]:
    """What :func:`_process_copy` is sent: the file's bytes for an actor on another machine; for one on
    this machine, or a file that cannot be read here, just its path."""
    if here:
        return task, None
    try:
        return task, task.path.read_bytes()
    except OSError:
        return task, None


def _lost(item: Task, why: str) -> FileResult:
    """The result of a file whose detection worker died on it (crashed in native code, or killed): unreadable."""
    return FileResult(item, error=f"{item.path}: the detection worker died on this file and it was skipped ({why})")


def detect_files(tasks: list[Task], settings: CropSettings, engine: Engine | int = 1, hand_model: str | None = None,
                 num_hands: int = 2, stride: int = 5) -> Iterator[FileResult]:
    """Detect and crop the hands of each file, in file order, on ``engine`` (a number: that many local processes).

    Photos give one frame; videos give every ``stride``-th frame (all frames are tracked). Each process,
    or Ray actor, keeps its own detector; an actor is sent the files' bytes. A file that kills its worker
    comes back unreadable, saying so, and the rest go on.
    """
    engine = as_engine(engine)
    if engine.ray:
        from pipeline.engines.ray import require_ray

        require_ray()  # the install line before anything else
    resolve_landmarker(hand_model)  # the clear lines for a missing or damaged file, before any worker
    return _results(tasks, engine, (hand_model, num_hands, settings, max(1, stride)))


def _results(tasks: list[Task], engine: Engine, init_args: tuple) -> Iterator[FileResult]:
    if engine.ray:
        from pipeline.engines.ray import map_on_actors, ray_session

        with ray_session(engine.address):
            yield from map_on_actors(_process_copy, tasks, _init_worker, init_args, engine.workers,
                                     prepare=_read_for_copy, on_lost=_lost)
        return
    workers = engine.workers or 1
    if workers <= 1:
        _init_worker(*init_args)
        try:
            yield from map(_process, tasks)
        finally:
            detector = _worker.pop("image", None)
            if detector is not None:
                detector.close()
        return
    yield from map_on_processes(_process, tasks, _init_worker, init_args, workers, on_lost=_lost)


def parse_label_map(items: list[str]) -> dict[str, str]:
    """Parse ``FOLDER=LABEL`` pairs from the command line."""
    out = {}
    for item in items:
        folder, sep, label = item.partition("=")
        if not sep or not folder:
            raise UserError(f"--map {item!r}: write it as FOLDER=LABEL, for example 0=fist")
        out[folder] = check_label(label)
    return out
