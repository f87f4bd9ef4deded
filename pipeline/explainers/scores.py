"""Scores for explanation maps on real crops: where they fall on the hand, how faithful they are, and
whether they survive the sanity checks.

- :func:`hand_masks` builds, from the landmarks each dataset row carries, the hand's area in crop pixels.
- :func:`pointing_game` and :func:`mass_inside` score maps against those masks (higher = on the hand).
- :func:`deletion_curves` / :func:`deletion_score`: zero the most salient pixels first and follow the
  class probability; the area under that curve is lower for a map that finds what the model uses.
- :func:`spearman`, :func:`constant_maps` and :func:`cascading_randomisation`: the cascading
  model-parameter randomisation of Adebayo et al. (2018).

- :func:`class_figures` writes the figures of ``python -m pipeline.explain``: maps of a few samples
  per class, and per-class mean maps.

Maps are (B, 1, S, S) tensors on the crop grid (:func:`pipeline.explainers.explain_all` makes them:
upsampled with the explainer's grid and min-max normalised).
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from pipeline.data.load import affines_of, landmarks_of
from pipeline.explainers import Explainer
from pipeline.preprocess.crops import hand_mask, transform_points

CASCADE = ("fc3", "fc2", "fc1", "conv2", "conv1")  # LeNet-5's weighted layers, from the top down
"""The order in which :func:`cascading_randomisation` re-initialises layers (cumulatively)."""


# ---------------------------------------------------------------------------------------------
# The hand in crop pixels


def crop_landmarks(index: "pd.DataFrame") -> np.ndarray:  # noqa: F821
    """(N, 21, 2) landmarks in crop pixels, from index rows (frame landmarks through each crop's affine)."""
    return np.stack([transform_points(a, m[:, :2]) for a, m in zip(affines_of(index), landmarks_of(index))])


def hand_masks(points: np.ndarray, size: int = 28, kind: str = "bones", bone_width: float = 0.25,
               scale: int = 4) -> np.ndarray:
    """(N, size, size) bool masks of the hand from (N, 21, 2) landmarks in crop pixels.

    Each mask is drawn by :func:`pipeline.preprocess.crops.hand_mask` at ``scale`` times the size (as crops are
    rendered) and reduced with area interpolation; a pixel is on the hand when at least half of it is.
    ``kind`` is ``"bones"`` (fingers and palm) or ``"hull"`` (their convex hull).
    """
    if kind not in ("bones", "hull"):
        raise ValueError(f"kind must be 'bones' or 'hull', got {kind!r}")
    out = np.empty((len(points), size, size), bool)
    for i, p in enumerate(np.asarray(points, np.float64)):
        big = hand_mask(p[:, :2] * scale, kind, size * scale, bone_width)
        out[i] = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA) >= 128
    return out


# ---------------------------------------------------------------------------------------------
# Localisation


def _flat(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    maps = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    return maps.reshape(len(maps), -1).astype(np.float64)


def pointing_game(maps: torch.Tensor | np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per map, whether its maximum falls inside the hand (bool, (N,)).

    ``maps`` (N, 1, S, S) or (N, S, S), ``masks`` (N, S, S) bool. Where several pixels share the
    maximum, the map hits only if *every* one of them is on the hand, so a plateau spilling off the
    hand counts as a miss. A constant map (no maximum) misses.
    """
    flat, inside = _flat(maps), np.asarray(masks, bool).reshape(len(masks), -1)
    if flat.shape != inside.shape:
        raise ValueError(f"maps {flat.shape} and masks {inside.shape} differ in size")
    peak = flat == flat.max(1, keepdims=True)
    varying = flat.max(1) > flat.min(1)
    return varying & ~(peak & ~inside).any(1)


def mass_inside(maps: torch.Tensor | np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per map, the share of its (non-negative) mass on the hand ((N,) floats; NaN for an all-zero map)."""
    flat, inside = np.clip(_flat(maps), 0, None), np.asarray(masks, bool).reshape(len(masks), -1)
    if flat.shape != inside.shape:
        raise ValueError(f"maps {flat.shape} and masks {inside.shape} differ in size")
    total = flat.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (flat * inside).sum(1) / total, np.nan)


def localisation_scores(maps: torch.Tensor | np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Mean pointing game, mean mass inside the hand, share of constant maps, and the chance levels
    (the hand's share of the crop: what a uniformly random peak or a flat map would score)."""
    hits, mass = pointing_game(maps, masks), mass_inside(maps, masks)
    return {"pointing": float(hits.mean()), "mass_inside": float(np.nanmean(mass)) if np.isfinite(mass).any() else float("nan"),
            "constant": float(constant_maps(torch.as_tensor(_flat(maps))).float().mean()),
            "hand_area": float(np.asarray(masks, bool).mean())}


# ---------------------------------------------------------------------------------------------
# Deletion


def deletion_order(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(B, S*S) pixel indices, most salient first; ties in random (seeded) order, not raster order."""
    flat = maps.detach().flatten(1).float()
    perm = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(seed))
    order = flat[:, perm].argsort(dim=1, descending=True, stable=True)
    return perm[order]


@torch.no_grad()
def deletion_curves(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor,
                    steps: int = 20, seed: int = 0) -> torch.Tensor:
    """(B, steps + 1) probability of each target class as the most salient pixels are set to 0 (black).

    Step k zeroes the top ``k / steps`` of the pixels of ``x`` (float (B, 1, S, S)) as ranked by
    ``maps`` (same size as ``x``); step 0 is the intact image and step ``steps`` an all-black one.
    The model is evaluated in eval mode and left in the mode it came in.
    """
    if maps.shape[0] != x.shape[0] or maps[0].numel() != x[0].numel():
        raise ValueError(f"maps {tuple(maps.shape)} do not match images {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        order = deletion_order(maps, seed)
        n = order.shape[1]
        flat = x.flatten(1)
        rows = torch.arange(len(x))[:, None]
        probs = []
        for k in range(steps + 1):
            cut = round(n * k / steps)
            deleted = flat.clone()
            deleted[rows, order[:, :cut]] = 0.0
            p = model(deleted.view_as(x)).softmax(1)
            probs.append(p[torch.arange(len(x)), targets])
        return torch.stack(probs, 1)
    finally:
        model.train(was_training)


def deletion_score(curves: torch.Tensor) -> torch.Tensor:
    """(B,) area under each deletion curve over the deleted fraction 0..1 (trapezoids); lower = better."""
    steps = curves.shape[1] - 1
    return (curves[:, 1:] + curves[:, :-1]).sum(1) / (2 * steps)


# ---------------------------------------------------------------------------------------------
# Sanity checks (Adebayo et al. 2018)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image Spearman rank correlation of two (B, 1, h, w) map batches, ties given average ranks.

    A constant map has no ranking: its correlation is undefined, and it is scored 0 (it shares no
    ordering with the other map).
    """
    def ranks(v: torch.Tensor) -> torch.Tensor:
        v = v.flatten(1)
        less = (v[:, :, None] > v[:, None, :]).sum(-1)
        ties = (v[:, :, None] == v[:, None, :]).sum(-1)
        r = less + (ties - 1) / 2
        return r - r.mean(1, keepdim=True)

    ra, rb = ranks(a), ranks(b)
    norm = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(norm > 0, (ra * rb).sum(1) / norm.clamp_min(1e-12), torch.zeros_like(norm))


def constant_maps(maps: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the maps that hold one value everywhere (they show nothing)."""
    flat = maps.flatten(1)
    return flat.amax(1) == flat.amin(1)


def cascading_randomisation(model: nn.Module, explainer: Callable[[nn.Module], Explainer], x: torch.Tensor,
                            targets: torch.Tensor, layers: Sequence[str] = CASCADE, draws: int = 16,
                            seed: int = 0) -> torch.Tensor:
    """Re-initialise ``layers`` one after another (cumulatively) and compare the maps with the trained model's.

    ``explainer(model)`` builds the explainer to test (e.g. ``lambda m: GradCAM(m, "conv2")``); maps are
    compared raw, by rank. One random network is one draw, so the figure is a mean over ``draws``
    seeded draws (layer ``i`` of draw ``d`` is re-initialised with PyTorch's default initialisation under
    seed ``100 * d + i + seed``). Returns a (len(layers), 3) tensor: per step, the mean Spearman
    correlation, the same over non-constant maps only, and the share of constant maps. The model
    is not changed (each draw randomises a copy).
    """
    reference = explainer(model)(x, targets)
    out = []
    for draw in range(draws):
        randomised, steps = copy.deepcopy(model), []
        for i, name in enumerate(layers):
            with torch.random.fork_rng():
                torch.manual_seed(100 * draw + i + seed)
                randomised.layer(name).reset_parameters()
            maps = explainer(randomised)(x, targets)
            rho, flat = spearman(reference, maps), constant_maps(maps)
            steps.append([rho.mean(), rho[~flat].mean() if (~flat).any() else rho.mean(), flat.float().mean()])
        out.append(steps)
    return torch.tensor(out).mean(0)
