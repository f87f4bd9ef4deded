"""How good an explanation method is on held-out crops: every faithfulness and localisation score per crop.

:func:`method_maps` builds the maps of a named method at a layer (:data:`METHODS`), and the two
baselines. :func:`crop_scores` gives each crop its deletion and insertion areas under every fill,
whether its peak is on a finger, and its heat outside the dilated hand. :func:`choose_default`
picks the method and layer that beat the better of the two baselines by the most, among those
that keep at most :data:`MAX_BACKGROUND` of their heat off the hand and beat both baselines on the
blur-fill curves; call it on validation sessions only, each session weighted alike
(:func:`session_means`). ``benchmarks/explain_quality.py`` runs it all with bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from pipeline.explainers.base import Explainer, explain_all
from pipeline.explainers.faithfulness import FILLS, curve_area, intensity_maps, perturbation_curves, random_maps
from pipeline.explainers.gradcam import INPUT, GradCAM, GradCAMPlusPlus, HiResCAM
from pipeline.explainers.saliency import Saliency, SmoothGrad
from pipeline.explainers.scores import background_share, pointing_game

#: Method name -> builder(model, layer). Pixel methods take layer None; CAMs a layer with a spatial map.
#: ``-rel``: activations relative to the all-black crop (see :mod:`pipeline.explainers.gradcam`).
METHODS: dict[str, Callable[[nn.Module, str | None], Explainer]] = {
    "saliency": lambda m, _layer: Saliency(m),
    "smoothgrad": lambda m, _layer: SmoothGrad(m, samples=16),
    "gradcam": lambda m, layer: GradCAM(m, layer),
    "gradcam-rel": lambda m, layer: GradCAM(m, layer, relative=True),
    "gradcam++": lambda m, layer: GradCAMPlusPlus(m, layer),
    "hirescam-rel": lambda m, layer: HiResCAM(m, layer, relative=True),
}
PIXEL_METHODS = ("saliency", "smoothgrad")
CAM_METHODS = tuple(m for m in METHODS if m not in PIXEL_METHODS)
"""The methods that explain at a layer (the demo's ``--cam``)."""
#: The demo's explainer and first layer, chosen on validation sessions by benchmarks/explain_quality.py (which
#: fails when its choice differs from this).
DEFAULT_EXPLAINER = ("hirescam-rel", "input")
BASELINES = ("random", "intensity")
CURVES = tuple(f"{mode}_{fill}" for mode in ("deletion", "insertion") for fill in FILLS)
"""The six faithfulness scores: deletion and insertion areas under each fill (deletion: lower is better)."""
MAX_BACKGROUND = 0.25
"""The most heat a default explainer may put outside the dilated hand."""


def method_name(method: str, layer: str | None) -> str:
    """``"gradcam conv2"``, or ``"saliency"`` for a pixel method."""
    return method if layer is None else f"{method} {layer}"


def candidates(layers: list[str]) -> list[tuple[str, str | None]]:
    """Every (method, layer) the benchmark scores: each pixel method, each CAM at each layer, and the
    relative HiResCAM at the input (gradient x input)."""
    return ([(m, None) for m in PIXEL_METHODS] + [("hirescam-rel", INPUT)]
            + [(m, layer) for layer in layers for m in CAM_METHODS])


def method_maps(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str, layer: str | None = None,
                batch: int = 256, seed: int = 0) -> torch.Tensor:
    """(B, 1, S, S) maps in [0, 1] of ``method`` at ``layer`` (a method of :data:`METHODS` or a baseline)."""
    if method == "random":
        return random_maps(x.shape, seed)
    if method == "intensity":
        return intensity_maps(x)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join([*METHODS, *BASELINES])}")
    return explain_all({method: METHODS[method](model, layer)}, x, targets, x.shape[-1], batch)[method]


def crop_scores(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor, fingers: np.ndarray,
                dilated_hand: np.ndarray, steps: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Per crop: the six :data:`CURVES` areas, ``pointing`` (peak on a finger) and ``background_share``."""
    out = {f"{mode}_{fill}": curve_area(perturbation_curves(model, x, targets, maps, mode, fill, steps, seed)).numpy()
           for mode in ("deletion", "insertion") for fill in FILLS}
    out["pointing"] = pointing_game(maps, fingers).astype(np.float64)
    out["background_share"] = background_share(maps, dilated_hand)
    return out


def gains(scores: dict[str, float], baselines: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per curve of :data:`CURVES`, how far a method beats the *better* baseline (positive: it beats both).

    Deletion counts ``baseline - method`` (lower is better), insertion ``method - baseline``.
    """
    return {curve: min((-1 if curve.startswith("deletion") else 1) * (scores[curve] - b[curve]) for b in baselines.values())
            for curve in CURVES}


def margin(scores: dict[str, float], baselines: dict[str, dict[str, float]]) -> float:
    """The mean of :func:`gains` over the six curves."""
    return float(np.mean(list(gains(scores, baselines).values())))


def session_means(scores: dict[str, np.ndarray], groups: np.ndarray) -> dict[str, float]:
    """Each score's mean over sessions, each session the mean of its crops: a session of 500 crops weighs as much
    as one of 5, so a choice is not made on one large session."""
    out = {}
    for key, values in scores.items():
        per = [np.nanmean(values[groups == g]) for g in np.unique(groups) if np.isfinite(values[groups == g]).any()]
        out[key] = float(np.mean(per)) if per else float("nan")
    return out


def choose_default(means: dict[str, dict[str, float]], baselines: dict[str, dict[str, float]],
                   required: tuple[str, ...] = ("deletion_blur", "insertion_blur")) -> str:
    """The method (name as :func:`method_name`) with the largest :func:`margin`, among those that keep a mean
    ``background_share`` of at most :data:`MAX_BACKGROUND` and beat both baselines on every ``required`` curve.

    Give it validation scores only (:func:`session_means` of them). One line when no method qualifies.
    """
    allowed = {name: s for name, s in means.items() if s["background_share"] <= MAX_BACKGROUND
               and all(gains(s, baselines)[c] > 0 for c in required)}
    if not allowed:
        raise ValueError(f"no method keeps its background share at or below {MAX_BACKGROUND} and beats both "
                         f"baselines on {', '.join(required)}")
    return max(allowed, key=lambda name: margin(allowed[name], baselines))
