"""Loading a dataset folder into memory: crops as one uint8 tensor, labels, groups and the index rows.

A second load of the same folder is instant: results are cached in memory and on disk (see
:func:`load_dataset`). :func:`crops_from_sources` re-crops every row from its source photo with
other settings, using the stored landmarks (MediaPipe is not run again).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from pipeline.data.store import AFFINE_COLUMNS, COLUMNS, INDEX, LANDMARK_COLUMNS, META, N_LANDMARKS, read_meta, read_rows

from ..errors import UserError
from ..preprocess.crops import CropSettings, rerender, transform_points
from ..preprocess.hands import Hand

if TYPE_CHECKING:  # torch is imported lazily: collecting data does not need it
    import pandas as pd
    import torch



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


def load_datasets(roots: Sequence[str | Path], settings: CropSettings | None = None, progress: bool = False) -> Dataset:
    """Several dataset folders as one dataset, every crop made with the same settings.

    ``settings`` default to the first dataset's; the others are re-rendered to them where their
    large renders allow (:func:`load_dataset`), else refused with one line. Labels keep the first
    dataset's order, then each new label as it comes. The index gains a ``dataset`` column (the
    folder's name); with more than one folder, groups become ``NAME/GROUP``, so two datasets' sessions
    never merge.
    """
    import pandas as pd
    import torch

    roots = [Path(r) for r in roots]
    if not roots:
        raise UserError("no dataset given; name one or more with --data DIR")
    names = [r.name for r in roots]
    if len(set(names)) != len(names):
        raise UserError(f"two datasets share the name {next(n for n in names if names.count(n) > 1)!r}; "
                        "each --data folder needs its own name, since groups and reports name them")
    first = load_dataset(roots[0], settings, progress)
    if len(roots) == 1:
        return replace(first, index=first.index.assign(dataset=names[0]))
    parts = [first] + [load_dataset(r, first.settings, progress) for r in roots[1:]]
    label_names = list(dict.fromkeys(n for part in parts for n in part.label_names))
    labels, groups, tables = [], [], []
    for name, part in zip(names, parts):
        remap = torch.tensor([label_names.index(n) for n in part.label_names], dtype=torch.int64)
        labels.append(remap[part.labels])
        groups.append(np.char.add(f"{name}/", part.groups.astype(str)))
        tables.append(part.index.assign(dataset=name))
    return Dataset(torch.cat([p.images for p in parts]), torch.cat(labels), np.concatenate(groups), label_names,
                   pd.concat(tables, ignore_index=True), first.settings, roots[0])


@lru_cache(maxsize=8)
def _load_cached(key: tuple, settings_json: str, progress: bool) -> Dataset:
    import pandas as pd
    import torch
    from tqdm import tqdm

    root = Path(key[0])
    settings = CropSettings.from_json(settings_json)
    meta = read_meta(root)
    rows = read_rows(root / INDEX)
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



def crops_from_sources(index: "pd.DataFrame", source_root: str | Path, settings: CropSettings,
                       progress: bool = False) -> np.ndarray:
    """Re-crop every row from its source photo with other settings, using the stored landmarks.

    MediaPipe is not run again, so crop options (rotation, mirroring, margin, mask) can be
    compared on exactly the same hands. Video sources are read at the stored frame.
    """
    from tqdm import tqdm

    from pipeline.preprocess.crops import crop_hand
    from pipeline.preprocess.sources import read_image

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
