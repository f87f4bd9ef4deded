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
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import cv2
import numpy as np

from .crops import Crop, CropSettings, rerender, transform_points
from .errors import UserError
from .hands import Hand

if TYPE_CHECKING:  # torch is imported lazily: collecting data does not need it
    import pandas as pd
    import torch

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
_BAD_LABEL = re.compile(r'[/\\<>:"|?*\x00-\x1f]')


def check_label(name: str) -> str:
    """Return ``name`` if it is a safe label (it becomes a folder name); else raise :class:`UserError`."""
    if not name or not name.strip():
        raise UserError("empty label name; give each label a name such as 'fist' or 'open_palm'")
    if name != name.strip() or name.startswith(".") or _BAD_LABEL.search(name) or len(name) > 64:
        raise UserError(
            f"bad label name {name!r}: labels become folder names, so use letters, digits, '-' and '_' "
            "(no slashes, no leading dot, at most 64 characters)"
        )
    return name


@dataclass
class Sample:
    """One saved crop's index row (what :meth:`DatasetWriter.add` wrote)."""

    id: str
    label: str
    group: str
    source: str
    frame: int


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
            for row in _read_rows(self.index_path):
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
        _atomic_write(self.root / META, json.dumps(meta, indent=2) + "\n")

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
        rows = _read_rows(self.index_path)
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
        _atomic_write(self.index_path, buffer.getvalue())
        self._index = open(self.index_path, "a", encoding="utf-8", newline="")
        key = (row["source"], int(row["frame"]))
        self._done_hands.discard((*key, int(row["hand"])))
        if not any(done[:2] == key for done in self._done_hands):
            self._done.discard(key)
        return Sample(sample_id, row["label"], row["group"], row["source"], int(row["frame"]))

    def counts(self) -> dict[str, int]:
        """Samples per label, in label order."""
        counts = {label: 0 for label in self.labels}
        for row in _read_rows(self.index_path):
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        return counts

    def close(self) -> None:
        if not self._index.closed:
            self._index.close()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_rows(path: Path) -> list[dict]:
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


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class Dataset:
    """A dataset in memory.

    Attributes:
        images: (N, 1, S, S) uint8 tensor of crops.
        labels: (N,) int64 tensor of label indices into ``label_names``.
        groups: (N,) array of group names (session or person): split by these, never by frame.
        label_names: label names, in the dataset's order.
        index: the index rows as a pandas DataFrame (landmarks, sources, ...).
        settings: the crop settings the images were made with (None for imported non-hand
            images such as MNIST).
        root: the folder (or file) it came from.
    """

    images: "torch.Tensor"
    labels: "torch.Tensor"
    groups: np.ndarray
    label_names: list[str]
    index: "pd.DataFrame"
    settings: CropSettings | None
    root: Path

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray | Sequence[int]) -> "Dataset":
        """The samples at ``indices`` (same label names and settings)."""
        import torch

        idx = np.asarray(indices, dtype=np.int64)
        t = torch.from_numpy(idx)
        return Dataset(self.images[t], self.labels[t], self.groups[idx], self.label_names,
                       self.index.iloc[idx].reset_index(drop=True), self.settings, self.root)


def landmarks_of(index: "pd.DataFrame") -> np.ndarray:
    """(N, 21, 3) frame-pixel landmarks from index rows."""
    return index[LANDMARK_COLUMNS].to_numpy(np.float64).reshape(-1, 3, N_LANDMARKS).transpose(0, 2, 1)


def affines_of(index: "pd.DataFrame") -> np.ndarray:
    """(N, 2, 3) frame->crop affines from index rows."""
    return index[AFFINE_COLUMNS].to_numpy(np.float64).reshape(-1, 2, 3)


def _index_key(root: Path) -> tuple:
    stat = (root / INDEX).stat()
    return (str(root.resolve()), stat.st_size, stat.st_mtime_ns)


def load_dataset(root: str | Path, settings: CropSettings | None = None, progress: bool = False) -> Dataset:
    """Load a dataset folder into memory.

    With ``settings`` that differ from the dataset's in size or mask only, the crops are
    re-rendered from the stored large renders. Results are cached in memory and in
    ``ROOT/.cache/`` (keyed by the index file's size and time), so a second load is instant.
    """
    root = Path(root)
    meta = read_meta(root)
    saved = CropSettings.from_dict(meta["crop"], str(root / META))
    wanted = settings or saved
    if not (root / INDEX).is_file():
        raise UserError(f"{root}: dataset has no {INDEX}; collect some samples first")
    same_geometry = {k: v for k, v in wanted.to_dict().items() if k not in ("size", "mask", "bone_width")}
    saved_geometry = {k: v for k, v in saved.to_dict().items() if k not in ("size", "mask", "bone_width")}
    if same_geometry != saved_geometry:
        raise UserError(
            f"{root}: made with crop settings {saved.to_json()}; only size and mask can be changed "
            "from the stored renders. Re-import the photos to change the rest"
        )
    return _load_cached(_index_key(root), wanted.to_json(), progress)


@lru_cache(maxsize=8)
def _load_cached(key: tuple, settings_json: str, progress: bool) -> Dataset:
    import pandas as pd
    import torch
    from tqdm import tqdm

    root = Path(key[0])
    settings = CropSettings.from_json(settings_json)
    meta = read_meta(root)
    rows = _read_rows(root / INDEX)
    if not rows:
        raise UserError(f"{root}: dataset is empty; collect some samples first")
    index = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("frame", "timestamp_ms", "hand", "width", "height", "mirrored"):
        index[col] = index[col].astype(np.int64)
    for col in ("score", *LANDMARK_COLUMNS, *AFFINE_COLUMNS):
        index[col] = index[col].astype(np.float64)
    label_names = list(meta.get("labels") or dict.fromkeys(index["label"]))
    missing = sorted(set(index["label"]) - set(label_names))
    label_names += missing

    cache_dir = root / ".cache"
    # hashlib, not hash(): str hashes change with every process, which made every load miss the cache.
    digest = f"{key[1]}-{key[2]}-{hashlib.sha1(settings_json.encode()).hexdigest()[:8]}"
    cache_file = cache_dir / f"images-{settings.size}-{settings.mask}-{digest}.npy"
    saved = CropSettings.from_dict(meta["crop"])
    if cache_file.is_file():
        images = np.load(cache_file)
    else:
        images = np.empty((len(index), settings.size, settings.size), np.uint8)
        use_large = settings != saved
        affines = affines_of(index)
        marks = landmarks_of(index)
        iterator = tqdm(range(len(index)), desc=f"load {root.name}", unit="crop", disable=not progress)
        for i in iterator:
            row = rows[i]
            sub = "large" if use_large else "crops"
            path = root / sub / row["label"] / f"{row['id']}.png"
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
            if image is None:
                raise UserError(f"{path}: missing or unreadable crop listed in {root / INDEX}; restore it or remove its row")
            if use_large:
                scale = image.shape[0] / saved.size
                points = transform_points(affines[i] * scale, marks[i, :, :2])
                image = rerender(image, points, settings)
            images[i] = image
        cache_dir.mkdir(exist_ok=True)
        for old in cache_dir.glob(f"images-{settings.size}-{settings.mask}-*.npy"):
            old.unlink()
        np.save(cache_file, images)
    labels = np.array(index["label"].map({name: i for i, name in enumerate(label_names)}), np.int64)
    return Dataset(
        torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels), index["group"].to_numpy(str),
        label_names, index, settings, root,
    )


# ---------------------------------------------------------------------------------------------
# Splits: always by group, never by frame


def split_by_group(groups: Sequence[str], labels: Sequence[int], val: float = 0.15, test: float = 0.15,
                   seed: int = 0, tries: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split sample indices into train / validation / test so that no group spans two splits.

    Groups are dealt in random orders (``tries`` of them, from ``seed``); the deal whose
    validation and test shares come closest to ``val`` and ``test`` while holding every class
    wins. Deterministic for a given seed.
    """
    groups = np.asarray(groups)
    labels = np.asarray(labels)
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < 3:
        raise UserError(f"only {len(names)} group(s); a split by group needs at least 3 (record more sessions)")
    n = len(groups)
    sizes = np.bincount(inverse, minlength=len(names))
    classes = [set(labels[inverse == g].tolist()) for g in range(len(names))]
    all_classes = set(labels.tolist())
    rng = np.random.default_rng(seed)
    best, best_score = None, np.inf
    for _ in range(tries):
        order = rng.permutation(len(names))
        part = np.zeros(len(names), np.int64)  # 0 train, 1 val, 2 test
        filled = [0, 0, 0]
        for g in order:
            for split, share in ((2, test), (1, val)):
                if filled[split] + sizes[g] / 2 <= share * n:
                    part[g] = split
                    break
            filled[part[g]] += sizes[g]
        score = abs(filled[1] / n - val) + abs(filled[2] / n - test)
        for split, share in ((1, val), (2, test)):
            if share > 0:
                covered = set().union(*[classes[g] for g in np.flatnonzero(part == split)]) if (part == split).any() else set()
                score += len(all_classes - covered) / max(len(all_classes), 1)
        if filled[0] == 0:
            score += 10
        if score < best_score:
            best, best_score = part, score
    where = best[inverse]
    return tuple(np.flatnonzero(where == s) for s in range(3))  # type: ignore[return-value]


def split_by_named_groups(groups: Sequence[str], val_groups: Iterable[str], test_groups: Iterable[str]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split by explicit group names; every other group is training data."""
    groups = np.asarray(groups)
    val_groups, test_groups = set(val_groups), set(test_groups)
    unknown = (val_groups | test_groups) - set(groups.tolist())
    if unknown:
        raise UserError(f"unknown group(s) {', '.join(sorted(unknown))}; the dataset has {', '.join(sorted(set(groups.tolist())))}")
    if val_groups & test_groups:
        raise UserError(f"group(s) {', '.join(sorted(val_groups & test_groups))} named for both validation and test")
    in_val = np.isin(groups, list(val_groups))
    in_test = np.isin(groups, list(test_groups))
    return np.flatnonzero(~in_val & ~in_test), np.flatnonzero(in_val), np.flatnonzero(in_test)


def crops_from_sources(index: "pd.DataFrame", source_root: str | Path, settings: CropSettings,
                       progress: bool = False) -> np.ndarray:
    """Re-crop every row from its source photo with other settings, using the stored landmarks.

    MediaPipe is not run again, so crop options (rotation, mirroring, margin, mask) can be
    compared on exactly the same hands. Video sources are read at the stored frame.
    """
    from tqdm import tqdm

    from .crops import crop_hand
    from .sources import read_image

    root = Path(source_root)
    marks = landmarks_of(index)
    out = np.empty((len(index), settings.size, settings.size), np.uint8)
    cache: dict[str, np.ndarray] = {}
    rows = tqdm(range(len(index)), desc="re-crop", unit="crop", disable=not progress)
    for i in rows:
        source = index["source"].iloc[i]
        if source not in cache:
            cache.clear()  # rows of one photo are adjacent
            cache[source] = read_image(root / source)
        hand = Hand(marks[i].astype(np.float32), np.zeros((N_LANDMARKS, 3), np.float32),
                    index["handedness"].iloc[i], float(index["score"].iloc[i]))
        out[i] = crop_hand(cache[source], hand, settings).image
    return out
