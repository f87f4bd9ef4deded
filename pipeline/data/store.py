"""The on-disk dataset: boring and durable.

A dataset is a folder::

    data/NAME/
      dataset.json          crop settings and label order
      index.csv             one row per crop, appended and flushed (fsync) per sample
      crops/LABEL/ID.png    the crop the CNN sees (e.g. 28x28)
      large/LABEL/ID.png    the same hand rendered larger and unmasked, for re-rendering later
      files.csv             imported files that are finished, with what was found (re-imports skip them)
      trash/                samples removed by "undo" (moved, never deleted)

Files are created exclusively (never overwritten) and a row is written only after its images,
so a Ctrl-C or a crash at any moment loses at most the sample being written, never a saved one.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import cv2
import numpy as np

from pipeline.errors import UserError
from pipeline.files import atomic_write_text
from pipeline.labels import check_label
from pipeline.preprocess.crops import Crop, CropSettings
from pipeline.preprocess.hands import Hand

if TYPE_CHECKING:  # torch is imported lazily: collecting data does not need it
    pass

INDEX = "index.csv"
FILES = "files.csv"
META = "dataset.json"
N_LANDMARKS = 21
LANDMARK_COLUMNS = [f"{axis}{i}" for axis in "xyz" for i in range(N_LANDMARKS)]
AFFINE_COLUMNS = ["a00", "a01", "a02", "a10", "a11", "a12"]
COLUMNS = [
    "id", "label", "group", "source", "frame", "timestamp_ms", "hand", "handedness", "score",
    "width", "height", "mirrored", *LANDMARK_COLUMNS, *AFFINE_COLUMNS, "crop",
]
@dataclass
class Sample:
    """One saved crop's index row (what :meth:`DatasetWriter.add` wrote)."""

    id: str
    label: str
    group: str
    source: str
    frame: int


def _write_png_exclusive(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as f:  # "x": never overwrite a sample
        f.write(data.tobytes())


def read_meta(root: Path) -> dict:
    """Read ``dataset.json``; a missing or broken file raises :class:`UserError`."""
    path = root / META
    if not path.is_file():
        raise UserError(f"{root}: not a dataset (no {META}); make one with 'python -m pipeline.collect --data {root}'")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: broken JSON ({e}); restore it from version control") from None


class DatasetWriter:
    """Appends samples to a dataset folder, creating it on first use.

    A dataset has one set of crop settings: adding with other settings is refused, because a
    model must be fed the crops it was trained on.
    """

    def __init__(self, root: str | Path, settings: CropSettings, labels: Sequence[str] = ()):
        self.root = Path(root)
        self.settings = settings
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root}: exists and is not a folder; choose another --data")
        if (self.root / META).is_file():
            meta = read_meta(self.root)
            saved = CropSettings.from_dict(meta["crop"], str(self.root / META))
            if saved != settings:
                raise UserError(
                    f"{self.root} was made with crop settings {saved.to_json()}, not {settings.to_json()}; "
                    "use the same crop options or another --data folder"
                )
            self.labels = list(meta.get("labels", []))
        else:
            if self.root.exists() and any(self.root.iterdir()):
                raise UserError(f"{self.root}: folder exists, is not empty and is not a dataset; choose another --data")
            self.root.mkdir(parents=True, exist_ok=True)
            self.labels = []
            self._save_meta()
        for label in labels:
            self._ensure_label(label)
        self.index_path = self.root / INDEX
        self._done: set[tuple[str, int]] = set()
        self._done_hands: set[tuple[str, int, int]] = set()
        self._last_ids: list[str] = []
        next_id = 0
        if self.index_path.is_file():
            self._repair_tail()
            for row in read_rows(self.index_path):
                self._done.add((row["source"], int(row["frame"])))
                self._done_hands.add((row["source"], int(row["frame"]), int(row["hand"])))
                next_id = max(next_id, int(row["id"]) + 1)
        # Files of a sample whose row never got written (a crash in between) must not be reused.
        for sub in ("crops", "large", "trash"):
            for png in (self.root / sub).glob("**/*.png"):
                if png.stem.isdigit():
                    next_id = max(next_id, int(png.stem) + 1)
        self._next_id = next_id
        self.files_path = self.root / FILES
        self._files: dict[str, str] = {}
        if self.files_path.is_file():
            with open(self.files_path, encoding="utf-8", newline="") as f:
                self._files = {r[0]: r[1] for r in csv.reader(f) if len(r) == 2}
        new = not self.index_path.is_file() or self.index_path.stat().st_size == 0
        self._index = open(self.index_path, "a", encoding="utf-8", newline="")
        if new:
            self._write_line(COLUMNS)

    def _save_meta(self) -> None:
        meta = {"format": 1, "crop": self.settings.to_dict(), "labels": self.labels}
        atomic_write_text(self.root / META, json.dumps(meta, indent=2) + "\n")

    def _ensure_label(self, label: str) -> None:
        check_label(label)
        if label not in self.labels:
            self.labels.append(label)
            self._save_meta()

    def _repair_tail(self) -> None:
        # A kill in the middle of a write can leave a partial last line. Merely ending it is not
        # enough: a line cut inside the quoted settings column leaves the quote open, and the next
        # row would vanish into it. So a partial line is cut off (the reader drops it too); a line
        # that holds a whole row and lacks only its newline is rewritten whole.
        with open(self.index_path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(max(0, size - (1 << 16)))
            block = f.read()
            if block.endswith(b"\n"):
                return
            start = size - len(block) + block.rfind(b"\n") + 1
            tail = block[block.rfind(b"\n") + 1:]
            try:
                values = next(csv.reader([tail.decode("utf-8")]))
            except (UnicodeDecodeError, csv.Error, StopIteration):
                values = []
            whole = values == COLUMNS or (len(values) == len(COLUMNS) and _complete(dict(zip(COLUMNS, values))))
            f.seek(start)
            f.truncate()
            if whole:
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerow(values)
                f.write(buffer.getvalue().encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def _write_line(self, values: Iterable) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        self._index.write(buffer.getvalue())  # one write per row
        self._index.flush()
        os.fsync(self._index.fileno())

    def file_status(self, source: str) -> str | None:
        """How an imported file ended (``found``, ``no_hand``, ``unreadable``), or None if not finished."""
        return self._files.get(source)

    def mark_file(self, source: str, status: str) -> None:
        """Record that every sample of an imported file is saved (so a re-import skips it)."""
        with open(self.files_path, "a", encoding="utf-8", newline="") as f:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow([source, status])
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        self._files[source] = status

    def has(self, source: str, frame: int = 0, hand: int | None = None) -> bool:
        """True if a sample from this source file and frame (and hand, if given) is already saved.

        Re-imports skip those; pass ``hand`` so that a frame interrupted between its hands is completed.
        """
        if hand is None:
            return (source, frame) in self._done
        return (source, frame, hand) in self._done_hands

    def add(self, crop: Crop, hand: Hand, label: str, group: str, source: str, frame: int = 0,
            timestamp_ms: int = 0, hand_index: int = 0, frame_size: tuple[int, int] = (0, 0)) -> Sample:
        """Save one crop (both renders) and append its row; returns the saved :class:`Sample`."""
        if crop.settings != self.settings:
            raise ValueError("crop made with other settings than the dataset's")
        self._ensure_label(label)
        sample_id = f"{self._next_id:06d}"
        self._next_id += 1
        _write_png_exclusive(self.root / "crops" / label / f"{sample_id}.png", crop.image)
        _write_png_exclusive(self.root / "large" / label / f"{sample_id}.png", crop.large)
        marks = hand.landmarks.astype(np.float64)
        self._write_line([
            sample_id, label, group, source, frame, timestamp_ms, hand_index, hand.handedness,
            f"{hand.score:.4f}", frame_size[0], frame_size[1], int(crop.mirrored),
            *(f"{v:.3f}" for v in marks.T.reshape(-1)),
            *(f"{v:.8g}" for v in crop.affine.reshape(-1)),
            self.settings.to_json(),
        ])
        self._done.add((source, frame))
        self._done_hands.add((source, frame, hand_index))
        self._last_ids.append(sample_id)
        return Sample(sample_id, label, group, source, frame)

    def undo(self) -> Sample | None:
        """Remove the last sample added in this session: its row leaves the index, its files go to ``trash/``."""
        if not self._last_ids:
            return None
        sample_id = self._last_ids.pop()
        rows = read_rows(self.index_path)
        keep = [r for r in rows if r["id"] != sample_id]
        gone = [r for r in rows if r["id"] == sample_id]
        if not gone:
            return None
        row = gone[0]
        for sub in ("crops", "large"):
            src = self.root / sub / row["label"] / f"{sample_id}.png"
            if src.exists():
                dst = self.root / "trash" / sub / row["label"] / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(keep)
        self._index.close()
        atomic_write_text(self.index_path, buffer.getvalue())
        self._index = open(self.index_path, "a", encoding="utf-8", newline="")
        key = (row["source"], int(row["frame"]))
        self._done_hands.discard((*key, int(row["hand"])))
        if not any(done[:2] == key for done in self._done_hands):
            self._done.discard(key)
        return Sample(sample_id, row["label"], row["group"], row["source"], int(row["frame"]))

    def counts(self) -> dict[str, int]:
        """Samples per label, in label order."""
        counts = {label: 0 for label in self.labels}
        for row in read_rows(self.index_path):
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        return counts

    def close(self) -> None:
        if not self._index.closed:
            self._index.close()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(path: Path) -> list[dict]:
    """Read the index, dropping a partial last row (left by a crash mid-write)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if _complete(r)]


def _complete(row: dict) -> bool:
    """A whole index row: every column, and the last one (the settings JSON) not cut short."""
    if None in row or any(row.get(c) is None for c in COLUMNS):
        return False
    return _is_json_object(row["crop"])


@lru_cache(maxsize=64)
def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


