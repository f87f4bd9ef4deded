"""Importers for public 28x28 datasets: MNIST (idx files) and Sign Language MNIST (Kaggle CSV).

Both load into the same in-memory :class:`~pipeline.data.store.Dataset` as a collected dataset, with
groups to split by: MNIST keeps its official train/test split; Sign-MNIST's rows are
augmentations of far fewer source photos, so near-duplicates are linked into groups first.
"""

from __future__ import annotations

import gzip
import string
from pathlib import Path

import numpy as np

from pipeline.data.load import Dataset
from pipeline.data.near_copies import components, copy_groups
from pipeline.errors import UserError


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise UserError(f"{root}: no {stem}[.gz]; point --dataset-path at the folder holding the MNIST idx files")


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzipped) as a numpy array."""
    with _open(path) as f:
        data = f.read()
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise UserError(f"{path}: not an unsigned-byte idx file")
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", ndim, 4).astype(int)
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path}: truncated idx file ({body.size} of {int(np.prod(dims))} bytes)")
    return body.reshape(dims)


def _dataset(images: np.ndarray, labels: np.ndarray, groups: np.ndarray, names: list[str], root: Path) -> Dataset:
    import pandas as pd
    import torch

    index = pd.DataFrame({"label": [names[i] for i in labels], "group": groups})
    return Dataset(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)),
                   groups, names, index, None, root)


def load_mnist(root: str | Path) -> Dataset:
    """MNIST: 60k training and 10k test digits; ``groups`` is ``train`` or ``test`` (the official split)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; pass the folder with the MNIST idx files")
    parts = []
    for prefix, group in (("train", "train"), ("t10k", "test")):
        images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
        if len(images) != len(labels):
            raise UserError(f"{root}: {prefix} has {len(images)} images but {len(labels)} labels")
        parts.append((images, labels, np.full(len(labels), group)))
    images, labels, groups = (np.concatenate(x) for x in zip(*parts))
    return _dataset(images, labels, groups, [str(d) for d in range(10)], root)


SIGN_LETTERS = [c for c in string.ascii_uppercase if c not in "JZ"]  # no motion letters


def near_duplicate_groups(images: np.ndarray, threshold: float = 0.9, side: int = 14) -> np.ndarray:
    """Link images whose downsampled, standardised pixels correlate above ``threshold``; return group ids.

    Augmented copies of one photo (shifted, brightened, slightly turned) stay correlated, so the
    connected components approximate the source photos and keep them on one side of a split.
    """
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images).float().unsqueeze(1)
    x = F.interpolate(x, size=(side, side), mode="area").flatten(1)
    x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-6)
    x = x / np.sqrt(x.shape[1] - 1)
    pairs = []
    for start in range(0, len(x), 2048):
        corr = x[start:start + 2048] @ x.T
        rows, cols = torch.nonzero(corr > threshold, as_tuple=True)
        pairs += zip((rows + start).tolist(), cols.tolist())
    return components(len(images), pairs)


def load_signmnist(path: str | Path) -> Dataset:
    """Sign Language MNIST from its Kaggle CSV (``label,pixel1..pixel784``, gzipped or not).

    Labels are letters (J and Z need motion and are absent). ``groups`` links near-duplicates
    (see :func:`near_duplicate_groups`), so a split by group does not leak augmented copies.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; pass the Sign-MNIST CSV (sign_mnist_test.csv[.gz])")
    try:
        table = pd.read_csv(path)
    except Exception as e:
        raise UserError(f"{path}: not a readable CSV ({type(e).__name__})") from None
    if "label" not in table or table.shape[1] != 785:
        raise UserError(f"{path}: expected columns label,pixel1..pixel784 (Kaggle Sign-MNIST format)")
    raw = table["label"].to_numpy()
    images = table.drop(columns="label").to_numpy(np.uint8).reshape(-1, 28, 28)
    present = sorted(set(raw.tolist()))
    letters = [string.ascii_uppercase[i] for i in present]
    labels = np.searchsorted(present, raw)
    # Plain correlation misses copies cropped a few pixels off or zoomed; copy_groups links those too.
    groups = np.array([f"g{g}" for g in copy_groups(images, near_duplicate_groups(images))])
    return _dataset(images, labels, groups, letters, path)
