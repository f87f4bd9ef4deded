"""Near-copies in 28x28 image sets: a similarity that tolerates small shifts and zooms, copy groups, leak checks.

Sign-MNIST's rows are augmentations of far fewer source photos: re-sampled, brightened, slightly
turned, and cropped a few pixels off or a little larger. Plain pixel correlation links the
re-sampled and brightened copies, but a copy cropped 2 px to the side can fall below any
threshold that keeps different photos apart, and then lands on the other side of a split. So
copies are compared here by the best correlation of their central windows over small shifts
(+-3 px) and zooms (0.9, 1, 1.1).

Measured on the 7,172 rows of ``sign_mnist_test.csv`` (see :func:`check_leak` and
``notebooks/02_architecture_study.ipynb``): among its 447 distinct images (rows closer than 0.98
collapsed), most have a copy at 0.96-1.0, while two images of *different* letters reach at most
0.91 (0.92 over a sample of all rows). Copies are linked at 0.9: the result is 228 groups (median
21 rows, largest 143) instead of the plain grouping's 304, and 4 of them mix letters (harmless for
a split: a merge only makes a group larger). On a group split, no test item keeps a training
copy above 0.95 (the plain grouping left one to 23 % of them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

SHIFT = 3
SCALES = (0.9, 1.0, 1.1)
MARGIN = 4  # the window compared is the central (S - 2*MARGIN)^2 pixels, so shifts stay inside the image


def _standardise(windows: torch.Tensor) -> torch.Tensor:
    """Rows of zero mean and unit norm: a dot product is then the Pearson correlation."""
    w = windows.flatten(1)
    w = w - w.mean(1, keepdim=True)
    return w / w.norm(dim=1, keepdim=True).clamp_min(1e-6)


def _zoom(x: torch.Tensor, scale: float) -> torch.Tensor:
    if scale == 1.0:
        return x
    theta = torch.tensor([[1 / scale, 0.0, 0.0], [0.0, 1 / scale, 0.0]]).expand(len(x), 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="border")


def _as_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images)).float()
    return x.unsqueeze(1) if x.dim() == 3 else x  # (N, 1, S, S)


@torch.no_grad()
def copy_similarity(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, shift: int = SHIFT,
                    scales: tuple[float, ...] = SCALES, margin: int = MARGIN, chunk: int = 512) -> torch.Tensor:
    """(len(a), len(b)): the best correlation of each pair's central windows over shifts and zooms of ``a``."""
    xa, xb = _as_float(a), _as_float(b)
    side = xa.shape[-1]
    if margin < shift:
        raise ValueError("margin must be at least shift")
    inner = slice(margin, side - margin)
    wb = _standardise(xb[:, 0, inner, inner])
    best = torch.full((len(xa), len(xb)), -1.0)
    for start in range(0, len(xa), chunk):
        part = xa[start:start + chunk]
        out = best[start:start + chunk]
        for scale in scales:
            z = _zoom(part, scale)[:, 0]
            for dy in range(-shift, shift + 1):
                for dx in range(-shift, shift + 1):
                    w = _standardise(z[:, margin + dy:side - margin + dy, margin + dx:side - margin + dx])
                    torch.maximum(out, w @ wb.T, out=out)
    return best


def components(n: int, pairs) -> np.ndarray:
    """Connected components of ``n`` nodes: the smallest node of each component, per node."""
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)])


@torch.no_grad()
def copy_groups(images: np.ndarray | torch.Tensor, base_groups: np.ndarray | None = None, threshold: float = 0.9,
                same: float = 0.98) -> np.ndarray:
    """Group ids that put every shifted or zoomed copy of a photo in one group.

    Images whose plain correlation is at least ``same`` are collapsed onto one representative
    first (greedily, in order); representatives whose :func:`copy_similarity` (either way round)
    reaches ``threshold`` are linked. ``base_groups`` (e.g. from a plain-correlation grouping) are
    kept: the result only merges them. Returns one int per image (the smallest member's index).
    """
    x = _as_float(images)
    n = len(x)
    flat = _standardise(x[:, 0])
    rep = np.full(n, -1)
    reps: list[int] = []
    for i in range(n):
        if rep[i] >= 0:
            continue
        close = (flat @ flat[i]).numpy() >= same
        rep[close & (rep < 0)] = len(reps)
        rep[i] = len(reps)
        reps.append(i)
    sim = copy_similarity(x[reps], x[reps])
    sim = torch.maximum(sim, sim.T)
    links = torch.nonzero(torch.triu(sim >= threshold, diagonal=1)).numpy()
    rep_component = components(len(reps), links)
    # Nodes 0..n-1 are images, n.. the representatives' components, 2n.. the base groups.
    pairs = [(i, n + rep_component[rep[i]]) for i in range(n)]
    if base_groups is not None:
        base = np.unique(np.asarray(base_groups), return_inverse=True)[1]
        pairs += [(i, 2 * n + base[i]) for i in range(n)]
    return components(3 * n, pairs)[:n]


@dataclass
class LeakCheck:
    """How close the test items of one split come to the training items.

    ``nearest`` quantiles are of each sampled test item's best :func:`copy_similarity` to any
    training item; ``over_090``/``over_095`` the share above 0.9 and 0.95. ``other_class_max``
    is the highest similarity of a test item to a training item of another class: what unrelated
    photos reach, the level a leak-free split stays near.
    """

    split: str
    test_items: int
    nearest_median: float
    nearest_p90: float
    nearest_max: float
    over_090: float
    over_095: float
    other_class_max: float

    def to_dict(self) -> dict:
        return asdict(self)


def check_leak(images: np.ndarray | torch.Tensor, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
               name: str, sample: int = 300, seed: int = 0) -> LeakCheck:
    """Measure near-copies across a split on up to ``sample`` test items (seeded)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = np.sort(rng.choice(test, min(sample, len(test)), replace=False))
    x = _as_float(images)
    sim = copy_similarity(x[test], x[train])
    nearest = sim.max(1).values.numpy()
    other = labels[test][:, None] != labels[train][None, :]
    other_max = float(sim.masked_fill(~torch.from_numpy(other), -1.0).max())
    return LeakCheck(name, len(test), float(np.median(nearest)), float(np.percentile(nearest, 90)),
                     float(nearest.max()), float((nearest > 0.9).mean()), float((nearest > 0.95).mean()), other_max)


def random_split_like(n: int, n_val: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random (ungrouped) split with the given sizes: the leaking baseline to compare a group split with."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val + n_test:]), np.sort(order[:n_val]), np.sort(order[n_val:n_val + n_test])
