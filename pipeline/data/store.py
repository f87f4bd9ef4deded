"""The on-disk dataset: boring and durable.

A dataset is a folder::

    data/NAME/
      dataset.json          crop settings and label order
      index.csv             one row per crop, appended and flushed (fsync) per sample
      .lock                 held by the one process writing (collect); its pid inside
      crops/LABEL/ID.png    the crop the CNN sees (e.g. 28x28)
      large/LABEL/ID.png    the same hand rendered larger and unmasked, for re-rendering later
      files.csv             imported files that are finished, with what was found (re-imports skip them)
      trash/                samples removed by undo or the review (moved, never deleted; rows in trash/index.csv;
                            the review's in trash/review-drops.txt, so that a drop taken back restores them)
      .moves                while a relabel is finishing: the old names of the files it moved (see update)

Files are created exclusively (never overwritten) and a row is written only after its images,
so a Ctrl-C or a crash at any moment loses at most the sample being written, never a saved one.
One writer at a time holds the folder's lock (:class:`DatasetLock`); readers (train) need none.
Reading the index checks its header and every row, and names the file and line of any damage
(:func:`read_rows`); only a torn last line, what a crash mid-write leaves, is dropped (and cut off
by the next writer).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np

from pipeline.errors import UserError
from pipeline.files import atomic_write_text
from pipeline.labels import check_label
from pipeline.preprocess.crops import Crop, CropSettings
from pipeline.preprocess.hands import Hand

INDEX = "index.csv"
FILES = "files.csv"
META = "dataset.json"
N_LANDMARKS = 21
LANDMARK_COLUMNS = [f"{axis}{i}" for axis in "xyz" for i in range(N_LANDMARKS)]
AFFINE_COLUMNS = ["a00", "a01", "a02", "a10", "a11", "a12"]
COLUMNS = [
    "id", "label", "group", "source", "frame", "timestamp_ms", "hand", "handedness", "score",
    "width", "height", "mirrored", *LANDMARK_COLUMNS, *AFFINE_COLUMNS, "crop_settings",
]
#: The header of datasets written before the last column had the name checkpoints use.
LEGACY_COLUMNS = [*COLUMNS[:-1], "crop"]
#: The key of the crop settings in ``dataset.json`` (the same as in a checkpoint).
CROP_KEY = "crop_settings"
LOCK = ".lock"
MOVES = ".moves"  # the old names of files a relabel moved, until it has removed them
#: Where removed samples go: their files under the same sub-folders, their rows in its own index.csv.
TRASH = "trash"
#: In ``trash/``: the ids of the samples a review's drop put there (``remove_samples(..., by_review=True)``), one a
#: line, so that an import whose review takes the drop back can bring them back, and not those removed by hand.
REVIEW_DROPS = "review-drops.txt"


@dataclass(frozen=True)
class Origin:
    """Where a hand was found: the source file (relative to an import's folder) or stream, the frame,
    its time and size (width, height), and which hand of that frame."""

    source: str
    frame: int = 0
    timestamp_ms: int = 0
    hand: int = 0
    frame_size: tuple[int, int] = (0, 0)


@dataclass
class Sample:
    """One saved crop's index row (what :meth:`DatasetWriter.add` wrote)."""

    id: str
    label: str
    group: str
    source: str
    frame: int


@dataclass(frozen=True)
class Removed:
    """A sample taken out of the dataset by :meth:`DatasetWriter.remove`: its whole index row."""

    row: dict

    @property
    def sample(self) -> Sample:
        r = self.row
        return Sample(r["id"], r["label"], r["group"], r["source"], int(r["frame"]))


def _rows_csv(rows: Iterable[dict], header: bool = True) -> str:
    """Index rows as CSV text (with the header line unless told not)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as a second name of ``src`` (a copy where the file system has no hard links), put in place
    atomically, over a ``dst`` an interrupted run left."""
    if dst.exists() and os.path.samefile(src, dst):
        return  # linked by an interrupted run (and a rename onto the same file would leave the temporary name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as f:  # the old name is removed later: the copy must be on disk first
            os.fsync(f.fileno())
    os.replace(tmp, dst)


def _write_png_exclusive(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as f:  # "x": never overwrite a sample
        f.write(data.tobytes())


@dataclass(frozen=True)
class DatasetMeta:
    """What ``dataset.json`` holds: the crop settings every crop was made with, and the label order."""

    settings: CropSettings
    labels: tuple[str, ...]


def read_meta(root: Path) -> DatasetMeta:
    """Read ``dataset.json``; a missing or broken file raises :class:`UserError`."""
    path = root / META
    if not path.is_file():
        raise UserError(f"{root}: not a dataset (no {META}); make one with 'python -m pipeline.collect --data {root}'")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: broken JSON ({e}); restore it from version control or a backup") from None
    saved = meta.get(CROP_KEY, meta.get("crop"))  # "crop": datasets of format 1
    if not isinstance(saved, dict):
        raise UserError(f"{path}: no crop settings ({CROP_KEY}); restore it from version control or a backup")
    return DatasetMeta(CropSettings.from_dict(saved, str(path)), tuple(meta.get("labels") or ()))


class DatasetLock:
    """The one-writer lock of a dataset folder: ``DATASET/.lock``, held with ``flock`` while a writer is open.

    The kernel releases it when the holder exits in any way (SIGKILL included), so a lock file left
    by a killed process is no obstacle. A second writer is refused with one line naming the holder's pid.
    """

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK
        self._file = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; one writer at a time is then the user's to keep
            return
        try:
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as e:
            raise UserError(f"{self.path.parent}: cannot write here ({e.strerror}); choose a writable --data folder") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(f"{self.path.parent} is being written by another process (pid {holder}); wait until it "
                            "finishes, or stop it, then run this again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


class DatasetWriter:
    """Appends samples to a dataset folder, creating it on first use.

    A dataset has one set of crop settings: adding with other settings is refused, because a
    model must be fed the crops it was trained on. The writer holds the folder's :class:`DatasetLock`
    until it is closed; an index that cannot be read is never appended to.
    """

    def __init__(self, root: str | Path, settings: CropSettings, labels: Sequence[str] = ()):
        self.root = Path(root)
        self.settings = settings
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root}: exists and is not a folder; choose another --data")
        existing = (self.root / META).is_file()
        if not existing and self.root.exists() and any(self.root.iterdir()):
            raise UserError(f"{self.root}: folder exists, is not empty and is not a dataset; choose another --data")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{self.root}: cannot make the dataset folder ({e.strerror}); choose a writable --data") from None
        self._lock = DatasetLock(self.root)
        self._lock.acquire()
        self._index = None
        try:
            self._open(existing, labels)
        except BaseException:
            self.close()
            raise

    def _open(self, existing: bool, labels: Sequence[str]) -> None:
        settings = self.settings
        if existing:
            meta = read_meta(self.root)
            if meta.settings != settings:
                saved, asked = meta.settings.to_dict(), settings.to_dict()
                differ = "; ".join(f"{k} {saved.get(k)!r}, not {asked.get(k)!r}" for k in sorted(set(saved) | set(asked))
                                   if saved.get(k) != asked.get(k))
                raise UserError(f"{self.root} was made with other crop settings ({differ}); use the same crop options "
                                "or another --data folder")
            self.labels = list(meta.labels)
        else:
            self.labels = []
            self._save_meta(self.labels)
        for label in labels:
            self._ensure_label(label)
        self.index_path = self.root / INDEX
        self._done: set[tuple[str, int]] = set()
        self._done_hands: set[tuple[str, int, int]] = set()
        self._last_ids: list[str] = []
        next_id = 0
        rows = []
        if self.index_path.is_file():
            self._repair_tail()
            rows = read_rows(self.index_path)
            for row in rows:
                self._done.add((row["source"], int(row["frame"])))
                self._done_hands.add((row["source"], int(row["frame"]), int(row["hand"])))
                next_id = max(next_id, int(row["id"]) + 1)
        self._finish_moves(rows)
        # Files of a sample whose row never got written (a crash in between) must not be reused, nor the ids of the
        # trash's rows (review-drops.txt names them).
        for sub in ("crops", "large", "trash"):
            for png in (self.root / sub).glob("**/*.png"):
                if png.stem.isdigit():
                    next_id = max(next_id, int(png.stem) + 1)
        trashed = self.root / TRASH / INDEX
        for row in read_rows(trashed) if trashed.is_file() and trashed.stat().st_size else ():
            next_id = max(next_id, int(row["id"]) + 1)
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

    def _save_meta(self, labels: list[str]) -> None:
        meta = {"format": 2, CROP_KEY: self.settings.to_dict(), "labels": labels}
        atomic_write_text(self.root / META, json.dumps(meta, indent=2) + "\n")

    def _ensure_label(self, label: str) -> None:
        check_label(label)
        if label not in self.labels:
            labels = [*self.labels, label]
            self._save_meta(labels)  # on disk first: a failed save leaves the label list as it was
            self.labels = labels

    def _finish_moves(self, rows: list[dict]) -> None:
        # A relabel killed after its index was rewritten left old names behind (see update): remove those whose
        # row now has another label. Killed before, the rows still have the old labels, and the names stay.
        moves = self.root / MOVES
        if not moves.is_file():
            return
        labels = {row["id"]: row["label"] for row in rows}
        for line in moves.read_text(encoding="utf-8").splitlines():
            sub, label, name = line.split("/")
            if label != labels.get(Path(name).stem, label):
                (self.root / sub / label / name).unlink(missing_ok=True)
        moves.unlink()

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
            whole = values in (COLUMNS, LEGACY_COLUMNS) or row_problem(values) is None
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
        """Record that every sample of an imported file is saved (so a re-import skips it); a status already
        recorded is not written again (a file searched again and still without a hand)."""
        if self._files.get(source) == status:
            return
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

    def add(self, crop: Crop, hand: Hand, label: str, group: str, origin: Origin) -> Sample:
        """Save one crop (both renders) and append its row; returns the saved :class:`Sample`."""
        if crop.settings != self.settings:
            raise ValueError("crop made with other settings than the dataset's")
        self._ensure_label(label)
        sample_id = f"{self._next_id:06d}"
        self._next_id += 1
        _write_png_exclusive(self.root / "crops" / label / f"{sample_id}.png", crop.image)
        _write_png_exclusive(self.root / "large" / label / f"{sample_id}.png", crop.large)
        marks = hand.landmarks.astype(np.float64)
        source, frame = origin.source, origin.frame
        self._write_line([
            sample_id, label, group, source, frame, origin.timestamp_ms, origin.hand, hand.handedness,
            f"{hand.score:.4f}", origin.frame_size[0], origin.frame_size[1], int(crop.mirrored),
            *(f"{v:.3f}" for v in marks.T.reshape(-1)),
            *(f"{v:.8g}" for v in crop.affine.reshape(-1)),
            self.settings.to_json(),
        ])
        self._done.add((source, frame))
        self._done_hands.add((source, frame, origin.hand))
        self._last_ids.append(sample_id)
        return Sample(sample_id, label, group, source, frame)

    def undo(self) -> Sample | None:
        """Remove the last sample added in this session (see :meth:`remove`); None when there is none."""
        while self._last_ids:
            removed = self.remove(self._last_ids[-1])
            if removed is not None:
                return removed.sample
            self._last_ids.pop()  # already removed another way (the review grid)
        return None

    def remove(self, sample_id: str) -> "Removed | None":
        """Take one sample out of the dataset (see :meth:`remove_samples`); returns what :meth:`restore` needs to
        put it back, or None when no row has that id."""
        removed = self.remove_samples([sample_id])
        return removed[0] if removed else None

    def remove_samples(self, sample_ids: Iterable[str], by_review: bool = False) -> "list[Removed]":
        """Take samples out of the dataset: their rows leave the index (rewritten atomically, once), their files
        move to ``trash/`` and their rows are added to ``trash/index.csv`` (rewritten atomically), so nothing is
        deleted. ``by_review``: a review's drop takes them out, and :meth:`dropped_by_review` lists them after.

        Returns one :class:`Removed` per sample found, in index order. In this order, a crash at any point leaves
        a dataset that loads: the review's list gains them (an id there but not in the trash is ignored), the rows
        go to the trash index, then leave the index, and only then do the files move (files no row names are
        ignored).
        """
        wanted = set(sample_ids)
        rows = read_rows(self.index_path)
        gone = [r for r in rows if r["id"] in wanted]
        if not gone:
            return []
        trash = self.root / TRASH
        trash.mkdir(exist_ok=True)
        # The review's list names exactly the samples its drops trashed: a removal by hand takes an id off it.
        ids, drops = {r["id"] for r in gone}, self._review_drops()
        listed = drops | ids if by_review else drops - ids
        if listed != drops:
            self._write_review_drops(listed)
        self._add_to_trash_index(gone)
        self._rewrite_index([r for r in rows if r["id"] not in wanted])
        hands_left = Counter((source, frame) for source, frame, _ in self._done_hands)
        for row in gone:
            for sub in ("crops", "large"):
                src = self.root / sub / row["label"] / f"{row['id']}.png"
                if src.exists():
                    dst = trash / sub / row["label"] / src.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dst)
            if row["id"] in self._last_ids:
                self._last_ids.remove(row["id"])
            key = (row["source"], int(row["frame"]))
            if (*key, int(row["hand"])) in self._done_hands:
                self._done_hands.discard((*key, int(row["hand"])))
                hands_left[key] -= 1
            if hands_left[key] <= 0:
                self._done.discard(key)
        return [Removed(row) for row in gone]

    def update(self, changes: Mapping[str, Mapping[str, str]]) -> int:
        """Give samples another label or group: ``{sample_id: {"label": ..., "group": ...}}`` (either key);
        returns how many rows changed. A relabelled sample's files move to its new label's folders.

        In this order, a crash at any point leaves a dataset that loads, with the old rows or the new: each
        moving file is first linked (or copied) under its new label, its old name is written to ``.moves``,
        the index is rewritten atomically, and only then do the old names go. A writer opened after a crash
        (and so does the next update) removes the old names ``.moves`` lists whose rows have the new label (none,
        when the index was not yet rewritten: a second update then links again).
        """
        unknown = {key for change in changes.values() for key in change} - {"label", "group"}
        if unknown:
            raise ValueError(f"only a sample's label and group can change, not {sorted(unknown)}")
        rows = read_rows(self.index_path)
        self._finish_moves(rows)  # an earlier update of this writer killed while removing old names: finish it first
        new_rows, moved = [], []
        for row in rows:
            change = {k: v for k, v in changes.get(row["id"], {}).items() if row[k] != v}
            if "label" in change:
                self._ensure_label(change["label"])
                moved.append((row["id"], row["label"], change["label"]))
            new_rows.append({**row, **change} if change else row)
        changed = sum(a is not b for a, b in zip(rows, new_rows))
        if not changed:
            return 0
        old_names = []
        for sample_id, old, new in moved:
            for sub in ("crops", "large"):
                src = self.root / sub / old / f"{sample_id}.png"
                if src.exists():
                    _link_or_copy(src, self.root / sub / new / src.name)
                    old_names.append(f"{sub}/{old}/{src.name}")
        if old_names:
            atomic_write_text(self.root / MOVES, "".join(f"{name}\n" for name in old_names))
        self._rewrite_index(new_rows)
        for name in old_names:
            (self.root / name).unlink(missing_ok=True)
        (self.root / MOVES).unlink(missing_ok=True)
        return changed

    def restore(self, removed: "Removed") -> Sample:
        """Put a sample taken out by :meth:`remove` back: its files return from ``trash/`` and its row is
        appended to the index again (same id), and it leaves ``trash/index.csv``.

        Files first, then the row: a crash in between leaves files no row names, which loading ignores;
        a sample already back in the index is not added twice.
        """
        row, trash = removed.row, self.root / TRASH
        sample_id = row["id"]
        for sub in ("crops", "large"):
            src = trash / sub / row["label"] / f"{sample_id}.png"
            if src.exists():
                dst = self.root / sub / row["label"] / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        if all(r["id"] != sample_id for r in read_rows(self.index_path)):
            self._write_line([row[c] for c in COLUMNS])
        kept = [r for r in read_rows(trash / INDEX) if r["id"] != sample_id]
        atomic_write_text(trash / INDEX, _rows_csv(kept))
        if sample_id in (drops := self._review_drops()):
            self._write_review_drops(drops - {sample_id})
        key = (row["source"], int(row["frame"]))
        self._done.add(key)
        self._done_hands.add((*key, int(row["hand"])))
        return removed.sample

    def dropped_by_review(self) -> "list[Removed]":
        """The samples in the trash that a review's drop put there (:meth:`remove_samples` with ``by_review``), in
        trash order: what :meth:`restore` brings back when the review takes the drop back. Left out: a row whose
        sample is in the index (a restore stopped by a crash before the trash index was rewritten) and one whose
        crop is in neither folder (a trash emptied by hand), which could not load."""
        path, drops = self.root / TRASH / INDEX, self._review_drops()
        if not drops or not path.is_file() or not path.stat().st_size:
            return []
        live = {r["id"] for r in read_rows(self.index_path)}
        return [Removed(row) for row in read_rows(path) if row["id"] in drops and row["id"] not in live
                and any((self.root / sub / row["label"] / f"{row['id']}.png").is_file() for sub in (TRASH + "/crops", "crops"))]

    def _review_drops(self) -> set[str]:
        path = self.root / TRASH / REVIEW_DROPS
        return set(path.read_text(encoding="utf-8").split()) if path.is_file() else set()

    def _write_review_drops(self, ids: set[str]) -> None:
        atomic_write_text(self.root / TRASH / REVIEW_DROPS, "".join(f"{i}\n" for i in sorted(ids)))

    def _add_to_trash_index(self, rows: list[dict]) -> None:
        path = self.root / TRASH / INDEX
        ids = {r["id"] for r in rows}  # a sample trashed again replaces its old row
        kept = [r for r in read_rows(path) if r["id"] not in ids] if path.is_file() and path.stat().st_size else []
        atomic_write_text(path, _rows_csv([*kept, *rows]))  # whole, never a torn append

    def _rewrite_index(self, rows: list[dict]) -> None:
        self._index.close()
        atomic_write_text(self.index_path, _rows_csv(rows))
        self._index = open(self.index_path, "a", encoding="utf-8", newline="")

    def rows(self) -> list[dict]:
        """Every row of the index, checked (:func:`read_rows`)."""
        return read_rows(self.index_path)

    def counts(self) -> dict[str, int]:
        """Samples per label, in label order."""
        counts = {label: 0 for label in self.labels}
        for row in self.rows():
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        return counts

    def close(self) -> None:
        """Close the index and release the lock (safe to call twice)."""
        if self._index is not None and not self._index.closed:
            self._index.close()
        self._lock.release()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(path: Path) -> list[dict]:
    """Read the index: one dict per row, keyed by :data:`COLUMNS`, every row checked.

    A torn last line (a crash mid-write left it without its newline) is dropped, as the next
    writer cuts it off. Any other damage raises :class:`UserError` naming the file and the line:
    a header that is not this package's, a row with missing or extra fields, a row cut short and
    run into the next line, a number or settings column that does not parse.
    """
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    torn = bool(text) and not text.endswith("\n")
    total = text.count("\n") + (1 if torn else 0)
    reader = csv.reader(io.StringIO(text))
    fix = "restore the file from a backup, or delete that line to drop its sample"
    try:
        header = next(reader)
    except StopIteration:
        return []
    if header not in (COLUMNS, LEGACY_COLUMNS):
        missing = [c for c in COLUMNS[:-1] if c not in header]
        what = f"missing column(s) {', '.join(missing)}" if missing else "its columns are not this package's, in order"
        raise UserError(f"{path}, line 1: not a dataset index header ({what}); restore the file from a backup, "
                        "or import the photos again into a new --data folder")
    rows = []
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise UserError(f"{path}, line {start}: unreadable row ({e}); {fix}") from None
        last = reader.line_num >= total
        # A record over several lines: a row cut inside its quoted settings column swallowed the next one.
        problem = "a row cut short and run into the next line" if reader.line_num > start else row_problem(values)
        if problem is not None:
            if last and torn:
                break  # what a crash mid-write leaves: the writer cuts it off
            raise UserError(f"{path}, line {start}: {problem}; {fix}")
        rows.append(dict(zip(COLUMNS, values)))
    return rows


_INTS = [COLUMNS.index(c) for c in ("frame", "timestamp_ms", "hand", "width", "height", "mirrored")]
_FLOATS = [COLUMNS.index(c) for c in ("score", *LANDMARK_COLUMNS, *AFFINE_COLUMNS)]


def row_problem(values: Sequence[str]) -> str | None:
    """What is wrong with one index row's fields, or None for a whole, well-formed row."""
    if len(values) != len(COLUMNS):
        joined = " (a row cut short, and the next row run into it)" if len(values) > len(COLUMNS) else ""
        return f"{len(values)} fields instead of {len(COLUMNS)}{joined}"
    if not values[0].isdigit():
        return f"id {values[0]!r} is not a number"
    if not values[1] or not values[2]:
        return "empty label or group"
    for i in _INTS:
        if not values[i].lstrip("-").isdigit():
            return f"{COLUMNS[i]} {values[i]!r} is not a whole number"
    for i in _FLOATS:
        try:
            float(values[i])
        except ValueError:
            return f"{COLUMNS[i]} {values[i]!r} is not a number"
    if not _is_json_object(values[-1]):
        return "the crop settings column is cut short or not JSON"
    return None


@lru_cache(maxsize=64)
def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False
