"""How good an explanation method is on held-out crops: every faithfulness and localisation score per crop.

:func:`method_maps` builds the maps of a named method at a layer (:data:`METHODS`), and the two
baselines. :func:`crop_scores` gives each crop its deletion and insertion areas under every fill,
whether its peak is on a finger, and its heat outside the dilated hand. :func:`choose_default`
picks the method and layer that beat the better of the two baselines by the most, among those
that keep at most :data:`MAX_BACKGROUND` of their heat off the hand; call it on validation crops
only. ``benchmarks/explain_quality.py`` runs it all with bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from pipeline.explainers.base import Explainer, normalize, upsample
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
#: The demo's explainer and first layer, chosen on validation sessions by benchmarks/explain_quality.py (it
#: says when its choice differs from this). Plain Grad-CAM put 64-99 % of its heat on the black background.
DEFAULT_EXPLAINER = ("hirescam-rel", "input")
BASELINES = ("random", "intensity")
CURVES = tuple(f"{mode}_{fill}" for mode in ("deletion", "insertion") for fill in FILLS)
"""The six faithfulness scores: deletion and insertion areas under each fill (deletion: lower is better)."""
MAX_BACKGROUND = 0.25
"""The most heat a default explainer may put outside the dilated hand."""


def method_name(method: str, layer: str | None) -> str:
    """``"gradcam conv2"``, or ``"saliency"`` for a pixel method."""
    return method if layer is None else f"{method} {layer}"


def candidates(model: nn.Module, layers: list[str]) -> list[tuple[str, str | None]]:
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
    explainer = METHODS[method](model, layer)
    side = x.shape[-1]
    return torch.cat([normalize(upsample(explainer(x[s:s + batch], targets[s:s + batch]), side, explainer.grid))
                      for s in range(0, len(x), batch)])


def crop_scores(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor, fingers: np.ndarray,
                dilated_hand: np.ndarray, steps: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Per crop: the six :data:`CURVES` areas, ``pointing`` (peak on a finger) and ``background_share``."""
    out = {f"{mode}_{fill}": curve_area(perturbation_curves(model, x, targets, maps, mode, fill, steps, seed)).numpy()
           for mode in ("deletion", "insertion") for fill in FILLS}
    out["pointing"] = pointing_game(maps, fingers).astype(np.float64)
    out["background_share"] = background_share(maps, dilated_hand)
    return out


def margin(scores: dict[str, float], baselines: dict[str, dict[str, float]]) -> float:
    """How far a method beats the *better* baseline, averaged over the six curves (positive: beats both).

    Deletion counts ``baseline - method`` (lower is better), insertion ``method - baseline``.
    """
    gains = []
    for curve in CURVES:
        sign = -1 if curve.startswith("deletion") else 1
        gains.append(min(sign * (scores[curve] - b[curve]) for b in baselines.values()))
    return float(np.mean(gains))


def choose_default(means: dict[str, dict[str, float]], baselines: dict[str, dict[str, float]]) -> str:
    """The method (name as :func:`method_name`) with the largest :func:`margin` among those with a mean
    ``background_share`` of at most :data:`MAX_BACKGROUND`. Give it validation scores only."""
    allowed = {name: s for name, s in means.items() if s["background_share"] <= MAX_BACKGROUND}
    if not allowed:
        raise ValueError(f"no method keeps its background share at or below {MAX_BACKGROUND}")
    return max(allowed, key=lambda name: margin(allowed[name], baselines))
