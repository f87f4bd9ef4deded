"""Loading a dataset folder into memory: crops as one uint8 tensor, labels, groups and the index rows.

A second load of the same folder is instant: results are cached in memory and on disk (see
:func:`load_dataset`). On disk the crops are packed, one array file per shard of :data:`SHARD_ROWS`
index rows, each named after its rows' content: appending to a dataset repacks only its last shard,
and a shard whose rows changed is not used. The index and the PNGs stay the source of truth.
:func:`crops_from_sources` re-crops every row from its source photo with other settings, using the
stored landmarks (MediaPipe is not run again).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from pipeline.data.store import AFFINE_COLUMNS, COLUMNS, INDEX, LANDMARK_COLUMNS, N_LANDMARKS, DatasetMeta, read_meta, read_rows
from pipeline.errors import UserError
from pipeline.preprocess.crops import CropSettings, crop_points, mirrors, rerender
from pipeline.preprocess.hands import Hand

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


#: Settings a dataset's large renders can be re-rendered to: size, mask, fill and the mirror rule.
RERENDERABLE = ("size", "mask", "bone_width", "fill", "mirror")


def dataset_settings(root: str | Path, **changes) -> CropSettings:
    """The crop settings a dataset folder was made with, with ``changes`` (e.g. ``fill="mask"``) applied."""
    return replace(read_meta(Path(root)).settings, **changes)


def load_dataset(root: str | Path, settings: CropSettings | None = None, progress: bool = False) -> Dataset:
    """Load a dataset folder into memory.

    With ``settings`` that differ from the dataset's in size, mask, fill or mirror rule only, the crops
    are re-rendered from the stored large renders (a hand the other rule mirrors is flipped).
    Results are cached in memory (keyed by the index file's size and time) and the crops on disk,
    packed by shards of rows (keyed by the rows' content), so a second load reads no PNG: in
    ``ROOT/.cache/``, or the user's cache folder when the dataset's own folder is read-only.
    """
    root = Path(root)
    meta = read_meta(root)
    wanted = settings or meta.settings
    if not (root / INDEX).is_file():
        raise UserError(f"{root}: dataset has no {INDEX}; collect some samples first")
    fixed = lambda s: {k: v for k, v in s.to_dict().items() if k not in RERENDERABLE}  # noqa: E731
    if fixed(wanted) != fixed(meta.settings):
        differ = sorted(k for k in fixed(wanted) if fixed(wanted)[k] != fixed(meta.settings)[k])
        raise UserError(
            f"{root}: made with other crop settings ({', '.join(f'{k}={getattr(meta.settings, k)}' for k in differ)}); "
            f"only {', '.join(RERENDERABLE)} can be changed from the stored renders: import the photos again to change the rest"
        )
    stat = (root / INDEX).stat()
    return _load_cached(str(root.resolve()), stat.st_size, stat.st_mtime_ns, meta, wanted, progress)


def qualified_groups(data: Dataset) -> np.ndarray:
    """Every row's group as ``NAME/GROUP`` (NAME: its dataset folder), as :func:`concat_datasets` names groups, also
    for a dataset loaded alone: what a checkpoint trained on several datasets records in its split."""
    if "dataset" not in data.index or all(str(g).startswith(f"{n}/") for n, g in zip(data.index["dataset"], data.groups)):
        return data.groups
    return np.char.add(np.char.add(data.index["dataset"].to_numpy().astype(str), "/"), data.groups.astype(str))


def load_datasets(roots: Sequence[str | Path], settings: CropSettings | None = None, progress: bool = False) -> Dataset:
    """Several dataset folders as one dataset, every crop made with the same settings.

    ``settings`` default to the first dataset's; the others are re-rendered to them where their
    large renders allow (:func:`load_dataset`), else refused with one line. With more than one
    folder, see :func:`concat_datasets`; the index always gains a ``dataset`` column (the folder's name).
    """
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
    return concat_datasets([first] + [load_dataset(r, first.settings, progress) for r in roots[1:]])


def concat_datasets(parts: Sequence[Dataset], label_names: Sequence[str] | None = None) -> Dataset:
    """Datasets of one crop setting as one: groups become ``NAME/GROUP`` (NAME: the folder's name), so two
    datasets' sessions never merge, and the index gains a ``dataset`` column.

    Labels keep ``label_names``' order when given (every label must be in it), else the first
    dataset's order, then each new label as it comes.
    """
    import pandas as pd
    import torch

    if len({p.settings for p in parts}) > 1:
        raise ValueError("datasets of different crop settings; load them with load_datasets")
    names = list(label_names) if label_names is not None else list(dict.fromkeys(n for p in parts for n in p.label_names))
    labels, groups, tables = [], [], []
    for part in parts:
        name = part.root.name
        remap = torch.tensor([names.index(n) for n in part.label_names], dtype=torch.int64)
        labels.append(remap[part.labels])
        groups.append(np.char.add(f"{name}/", part.groups.astype(str)))
        tables.append(part.index.assign(dataset=name))
    return Dataset(torch.cat([p.images for p in parts]), torch.cat(labels), np.concatenate(groups), names,
                   pd.concat(tables, ignore_index=True), parts[0].settings, parts[0].root)


@lru_cache(maxsize=8)
def _load_cached(root_text: str, size: int, mtime_ns: int, meta: DatasetMeta, settings: CropSettings,
                 progress: bool) -> Dataset:
    import pandas as pd
    import torch

    root = Path(root_text)
    rows = read_rows(root / INDEX)
    if not rows:
        raise UserError(f"{root}: dataset is empty; collect some samples first")
    index = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("frame", "timestamp_ms", "hand", "width", "height", "mirrored"):
        index[col] = index[col].astype(np.int64)
    for col in ("score", *LANDMARK_COLUMNS, *AFFINE_COLUMNS):
        index[col] = index[col].astype(np.float64)
    label_names = list(meta.labels or dict.fromkeys(index["label"]))
    label_names += sorted(set(index["label"]) - set(label_names))
    images = _packed_images(root, rows, index, meta.settings, settings, progress)
    if settings.mirror != meta.settings.mirror:
        index = _remirrored(index, meta.settings, settings)
    if settings.size != meta.settings.size:  # the affines then map onto the crops as loaded
        index = index.copy()
        index[AFFINE_COLUMNS] = index[AFFINE_COLUMNS].to_numpy() * (settings.size / meta.settings.size)
    labels = np.array(index["label"].map({name: i for i, name in enumerate(label_names)}), np.int64)
    return Dataset(
        torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels), index["group"].to_numpy(str),
        label_names, index, settings, root,
    )


#: Index rows per packed shard of crops (``.cache/images-SETTINGS-SHARD-ROWS.npy``).
SHARD_ROWS = 10_000


def _packed_images(root: Path, rows: list[dict], index: "pd.DataFrame", saved: CropSettings, settings: CropSettings,
                   progress: bool) -> np.ndarray:
    """Every row's crop, shard by shard: from the packed shard whose name matches the shard's rows, else
    rendered from the PNGs and packed (stale shards of that place removed)."""
    from tqdm import tqdm

    # hashlib, not hash(): str hashes change with every process, which made every load miss the cache.
    digest = hashlib.sha1(f"{Path(root).resolve()}|{settings.to_json()}".encode()).hexdigest()[:12]
    images = np.empty((len(rows), settings.size, settings.size), np.uint8)
    shards = range(0, len(rows), SHARD_ROWS)
    bar = tqdm(total=len(rows), desc=f"load {root.name}", unit="crop", disable=not progress)
    for k, start in enumerate(shards):
        stop = min(start + SHARD_ROWS, len(rows))
        content = hashlib.sha1("\n".join("\x1f".join(rows[i].values()) for i in range(start, stop)).encode()).hexdigest()[:16]
        name = f"images-{digest}-{k:05d}-{content}.npy"
        packed = _read_cache(root, name)
        if packed is None or packed.shape != (stop - start, settings.size, settings.size):
            packed = _render(root, rows, index, saved, settings, range(start, stop), bar)
            _write_cache(root, name, f"images-{digest}-{k:05d}-*.npy", packed)
        else:
            bar.update(stop - start)
        images[start:stop] = packed
    bar.close()
    _drop_cache(root, [f"images-{digest}-{k:05d}-*.npy" for k in _shards_beyond(root, digest, len(shards))]
                + [f"images-*-{digest}.npy"])  # a dataset cut short by undo; the unsharded cache of before
    return images


def _shards_beyond(root: Path, digest: str, count: int) -> list[int]:
    """Shard numbers of ``digest`` in the cache folders at or above ``count`` (left by a longer index)."""
    found = set()
    for folder in cache_dirs(root):
        for path in folder.glob(f"images-{digest}-*-*.npy"):
            number = path.name.split("-")[2]
            if number.isdigit() and int(number) >= count:
                found.add(int(number))
    return sorted(found)


def _render(root: Path, rows: list[dict], index: "pd.DataFrame", saved: CropSettings, settings: CropSettings,
            which: range, bar) -> np.ndarray:
    """The crops of rows ``which``: the stored ones, or re-rendered from their large renders for other settings."""
    images = np.empty((len(which), settings.size, settings.size), np.uint8)
    use_large = settings != saved
    part = index.iloc[which.start:which.stop]
    affines, marks = affines_of(part), landmarks_of(part)
    flips = _flips(part, saved, settings)
    for j, i in enumerate(which):
        row = rows[i]
        path = root / ("large" if use_large else "crops") / row["label"] / f"{row['id']}.png"
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
        if image is None:
            raise UserError(f"{path}: missing or unreadable crop listed in {root / INDEX}; restore it or remove its row")
        if use_large:
            big = image.shape[0]
            points = crop_points(affines[j] * (big / saved.size), marks[j])
            if flips[j]:  # the other mirror rule: the render is the mirror image, about the square's centre
                image, points = np.ascontiguousarray(image[:, ::-1]), np.column_stack([big - points[:, 0], points[:, 1:]])
            image = rerender(image, points, settings)
        images[j] = image
        bar.update()
    return images


def _flips(index: "pd.DataFrame", saved: CropSettings, settings: CropSettings) -> np.ndarray:
    """(N,) bool: the rows whose hand ``settings`` mirrors differently from how its render was made."""
    if settings.mirror == saved.mirror:
        return np.zeros(len(index), bool)
    marks = landmarks_of(index)
    wanted = np.array([mirrors(Hand(m.astype(np.float32), m.astype(np.float32), h, 1.0), settings)
                       for m, h in zip(marks, index["handedness"])])
    return wanted != index["mirrored"].to_numpy().astype(bool)


def _remirrored(index: "pd.DataFrame", saved: CropSettings, settings: CropSettings) -> "pd.DataFrame":
    """The index with ``mirrored`` and the frame->crop affine of re-mirrored rows as ``settings`` make them."""
    flips = _flips(index, saved, settings)
    index = index.copy()
    affines = affines_of(index).copy()
    linear, shift = np.diag([-1.0, 1.0]), np.array([float(saved.size), 0.0])  # crop -> its mirror image
    for i in np.flatnonzero(flips):
        affines[i] = np.hstack([linear @ affines[i][:, :2], (linear @ affines[i][:, 2] + shift)[:, None]])
    index[AFFINE_COLUMNS] = affines.reshape(len(index), 6)
    index["mirrored"] = index["mirrored"].to_numpy() ^ flips.astype(np.int64)
    return index


def cache_dirs(root: Path) -> list[Path]:
    """Where a dataset's image cache may live: its own ``.cache``, then the user's cache folder."""
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "handcam"
    return [root / ".cache", user / hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]]


def _read_cache(root: Path, name: str) -> np.ndarray | None:
    for folder in cache_dirs(root):
        if (folder / name).is_file():
            try:
                return np.load(folder / name)
            except (OSError, ValueError):
                continue  # a damaged cache file: render again
    return None


def _write_cache(root: Path, name: str, replaces: str, images: np.ndarray) -> None:
    """Save ``name`` atomically in the first writable cache folder, removing the files matching ``replaces``
    that it supersedes (none writable: no cache, no error)."""
    for folder in cache_dirs(root):
        tmp = folder / f"{name}.{os.getpid()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.save(f, images)
            os.replace(tmp, folder / name)
        except OSError:
            tmp.unlink(missing_ok=True) if folder.is_dir() and os.access(folder, os.W_OK) else None
            continue
        for old in folder.glob(replaces):
            if old.name != name:
                old.unlink(missing_ok=True)
        return


def _drop_cache(root: Path, patterns: list[str]) -> None:
    """Remove the cache files matching ``patterns`` wherever they are (where they can be removed)."""
    for folder in cache_dirs(root):
        for pattern in patterns:
            for old in folder.glob(pattern):
                try:
                    old.unlink()
                except OSError:
                    pass


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
