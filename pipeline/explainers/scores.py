"""Scores for explanation maps on real crops: where they fall on the hand, how faithful they are, and
whether they survive the sanity checks.

- :func:`hand_masks` builds, from the landmarks each dataset row carries, the hand's area in crop
  pixels (``bones``, ``hull``, or the ``fingers`` alone), optionally dilated.
- :func:`pointing_game` and :func:`mass_inside` score maps against those masks (higher = on the hand);
  :func:`background_share` is the heat outside the dilated hand. On a masked crop any peak on a lit
  pixel lands on the hand, so the pointing game is scored against the fingers (where a count is
  shown) and compared with the brightest-pixel baseline.
- :func:`spearman`, :func:`ssim`, :func:`hog_similarity`, :func:`constant_maps`,
  :func:`cascading_randomisation` and :func:`compare_maps`: the sanity checks of Adebayo et al.
  (2018), model-parameter (cascading) and data randomisation, with their similarity measures.

Faithfulness (deletion, insertion) is in :mod:`pipeline.explainers.faithfulness`.

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


def weighted_layers(model: nn.Module) -> tuple[str, ...]:
    """The conv and linear layers (not batch norm) of a LeNet (``model.features``, ``model.classifier``), from the top down:
    the order in which :func:`cascading_randomisation` re-initialises them (``fc3 fc2 fc1 conv2 conv1`` for
    LeNet-5; a deeper variant's ``conv3`` too)."""
    names = [name for part in (model.features, model.classifier) for name, layer in part.named_children()
             if isinstance(layer, (nn.Conv2d, nn.Linear))]
    return tuple(reversed(names))


# ---------------------------------------------------------------------------------------------
# The hand in crop pixels


def crop_landmarks(index: "pd.DataFrame") -> np.ndarray:  # noqa: F821
    """(N, 21, 2) landmarks in crop pixels, from index rows (frame landmarks through each crop's affine)."""
    return np.stack([transform_points(a, m[:, :2]) for a, m in zip(affines_of(index), landmarks_of(index))])


MASK_KINDS = ("bones", "hull", "fingers")


def hand_masks(points: np.ndarray, size: int = 28, kind: str = "bones", bone_width: float = 0.25,
               scale: int = 4, dilate: int = 0) -> np.ndarray:
    """(N, size, size) bool masks of the hand from (N, 21, 2) landmarks in crop pixels.

    Each mask is drawn by :func:`pipeline.preprocess.crops.hand_mask` at ``scale`` times the size (as crops are
    rendered) and reduced with area interpolation; a pixel is on the hand when at least half of it is.
    ``kind`` is ``"bones"`` (fingers and palm), ``"hull"`` (their convex hull) or ``"fingers"``
    (finger bones beyond the knuckles). ``dilate`` grows each mask by that many crop pixels (a 3x3
    cross per pixel), the tolerance a map at a coarse layer needs around a thin finger.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"kind must be one of {', '.join(MASK_KINDS)}, got {kind!r}")
    out = np.empty((len(points), size, size), bool)
    for i, p in enumerate(np.asarray(points, np.float64)):
        big = hand_mask(p[:, :2] * scale, kind, size * scale, bone_width)
        out[i] = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA) >= 128
    return dilate_masks(out, dilate)


def dilate_masks(masks: np.ndarray, pixels: int) -> np.ndarray:
    """(N, S, S) bool masks grown by ``pixels`` (a 3x3 cross per pixel); 0 leaves them as they are."""
    masks = np.asarray(masks, bool)
    if not pixels:
        return masks
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return np.stack([cv2.dilate(m.astype(np.uint8), cross, iterations=pixels) > 0 for m in masks])


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


def background_share(maps: torch.Tensor | np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per map, the share of its (non-negative) mass outside ``masks`` (the dilated hand); NaN for an all-zero map."""
    return 1.0 - mass_inside(maps, masks)


def localisation_scores(maps: torch.Tensor | np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Mean pointing game, mean mass inside the hand, share of constant maps, and the chance levels
    (the hand's share of the crop: what a uniformly random peak or a flat map would score)."""
    hits, mass = pointing_game(maps, masks), mass_inside(maps, masks)
    return {"pointing": float(hits.mean()), "mass_inside": float(np.nanmean(mass)) if np.isfinite(mass).any() else float("nan"),
            "constant": float(constant_maps(torch.as_tensor(_flat(maps))).float().mean()),
            "hand_area": float(np.asarray(masks, bool).mean())}


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


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Per-image structural similarity (Wang et al. 2004) of two (B, 1, h, w) batches of maps.

    Each map is min-max scaled to [0, 1] first (maps of two models have no common scale), then the
    usual SSIM with a ``window`` x ``window`` uniform window, C1 = 0.01^2, C2 = 0.03^2, averaged
    over the valid windows. Two constant maps are identical (1); a constant map against a varying one
    scores near 0. Maps that are both 0 on a shared background score high on that background alone.
    """
    def unit(v: torch.Tensor) -> torch.Tensor:
        lo, hi = v.amin((-2, -1), keepdim=True), v.amax((-2, -1), keepdim=True)
        return (v - lo) / (hi - lo).clamp_min(1e-12)

    a, b = unit(a.double()), unit(b.double())
    window = min(window, a.shape[-1], a.shape[-2])
    pool = lambda v: torch.nn.functional.avg_pool2d(v, window, 1)  # noqa: E731
    mu_a, mu_b = pool(a), pool(b)
    var_a, var_b = pool(a * a) - mu_a ** 2, pool(b * b) - mu_b ** 2
    cov = pool(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1).float()


def hog_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image Pearson correlation of the HOG descriptors of two (B, 1, h, w) batches of maps.

    HOG (Dalal & Triggs 2005, OpenCV's ``HOGDescriptor``: a 4x4 grid of cells of side // 4 pixels (7 on a
    28x28 map), 2x2-cell blocks, 9 bins) on each map min-max scaled to 0..255, as Adebayo et al. compare the
    maps' edges. A constant descriptor has no correlation and scores 0.
    """
    side = a.shape[-1]
    cell = max(2, side // 4)
    hog = cv2.HOGDescriptor((cell * 4, cell * 4), (2 * cell, 2 * cell), (cell, cell), (cell, cell), 9)

    def describe(maps: torch.Tensor) -> np.ndarray:
        flat = _flat(maps)
        lo, hi = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
        scaled = np.round(255 * (flat - lo) / np.maximum(hi - lo, 1e-12)).astype(np.uint8)
        images = scaled.reshape(len(flat), maps.shape[-2], maps.shape[-1])
        return np.stack([hog.compute(cv2.resize(im, (cell * 4, cell * 4), interpolation=cv2.INTER_AREA)).ravel()
                         for im in images]).astype(np.float64)

    da, db = describe(a), describe(b)
    da, db = da - da.mean(1, keepdims=True), db - db.mean(1, keepdims=True)
    norm = np.linalg.norm(da, axis=1) * np.linalg.norm(db, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(norm > 0, (da * db).sum(1) / np.maximum(norm, 1e-300), 0.0)
    return torch.from_numpy(r).float()


SIMILARITIES = ("spearman", "spearman_abs", "ssim", "hog")
"""What :func:`compare_maps` reports: rank correlation of the raw and the absolute maps, SSIM, HOG correlation
(and, given the crops' lit pixels, ``spearman_hand``: the rank correlation over those pixels only)."""


def spearman_within(a: torch.Tensor, b: torch.Tensor, masks: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per-image Spearman correlation of two (B, 1, h, w) map batches over the pixels of ``masks`` (B, h, w) only.

    A map that is 0 wherever the crop is black (gradient x input) ties most pixels of every crop at
    0 in both maps, which alone makes two unrelated maps rank alike; inside the hand there is no such tie.
    """
    masks = torch.as_tensor(np.asarray(masks, bool)).reshape(len(a), -1)
    fa, fb = a.flatten(1), b.flatten(1)
    return torch.stack([spearman(fa[i, m][None], fb[i, m][None])[0] if m.sum() > 1 else torch.tensor(0.0)
                        for i, m in enumerate(masks)])


def compare_maps(reference: torch.Tensor, other: torch.Tensor, masks: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Per-image similarity of two batches of raw maps, by each measure of :data:`SIMILARITIES`, and with
    ``masks`` (the hand's pixels, (B, h, w)) also ``spearman_hand`` (:func:`spearman_within`)."""
    out = {"spearman": spearman(reference, other), "spearman_abs": spearman(reference.abs(), other.abs()),
           "ssim": ssim(reference, other), "hog": hog_similarity(reference, other)}
    if masks is not None:
        out["spearman_hand"] = spearman_within(reference, other, masks)
    return out


def constant_maps(maps: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the maps that hold one value everywhere (they show nothing)."""
    flat = maps.flatten(1)
    return flat.amax(1) == flat.amin(1)


def cascading_randomisation(model: nn.Module, explainer: Callable[[nn.Module], Explainer], x: torch.Tensor,
                            targets: torch.Tensor, layers: Sequence[str] | None = None, draws: int = 16,
                            seed: int = 0, masks: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Re-initialise ``layers`` (default: :func:`weighted_layers`) one after another (cumulatively) and compare the
    maps with the trained model's.

    ``explainer(model)`` builds the explainer to test (e.g. ``lambda m: GradCAM(m, "conv2")``); maps are
    compared raw. One random network is one draw, so each figure is a mean over ``draws`` seeded
    draws (layer ``i`` of draw ``d`` is re-initialised with PyTorch's default initialisation under
    seed ``100 * d + i + seed``). Returns, per measure of :data:`SIMILARITIES` and for
    ``"constant"`` (the share of constant maps), a (len(layers),) tensor: one value per step; with
    ``masks`` (maps' resolution) also ``"spearman_hand"``. The model is not changed (each draw
    randomises a copy).
    """
    layers = weighted_layers(model) if layers is None else layers
    reference = explainer(model)(x, targets)
    names = (*SIMILARITIES, "constant", *(("spearman_hand",) if masks is not None else ()))
    sums = {name: torch.zeros(len(layers)) for name in names}
    for draw in range(draws):
        randomised = copy.deepcopy(model)
        for i, name in enumerate(layers):
            with torch.random.fork_rng():
                torch.manual_seed(100 * draw + i + seed)
                randomised.layer(name).reset_parameters()
            maps = explainer(randomised)(x, targets)
            for measure, values in compare_maps(reference, maps, masks).items():
                sums[measure][i] += values.mean()
            sums["constant"][i] += constant_maps(maps).float().mean()
    return {name: total / draws for name, total in sums.items()}
