"""Deletion and insertion curves under three fills, their baselines, and the choice of a default explainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.explainers.faithfulness import (
    FILLS,
    curve_area,
    fill_images,
    intensity_maps,
    perturbation_curves,
    random_maps,
    ranking,
)
from pipeline.explainers.quality import (
    BASELINES,
    CAM_METHODS,
    CURVES,
    DEFAULT_EXPLAINER,
    MAX_BACKGROUND,
    candidates,
    choose_default,
    crop_scores,
    gains,
    margin,
    method_maps,
    session_means,
)
from pipeline.explainers.scores import crop_landmarks, hand_masks
from pipeline.lenet.model import predict_logits, to_float


@pytest.fixture(scope="module")
def shipped(fingers):
    """The shipped model and 64 real crops of its held-out test sessions in data/fingers, their predicted classes
    and masks."""
    from pipeline.lenet.checkpoint import load_model

    loaded = load_model()
    model = loaded.explained
    test = [g.split("/", 1)[1] for g in loaded.split_groups()["test"] if g.startswith("fingers/")]
    rows = np.flatnonzero(np.isin(fingers.groups, test))
    assert len(rows) >= 64, "the shipped model's test split holds sessions of data/fingers"
    rows = rows[np.linspace(0, len(rows) - 1, 64).astype(int)]
    x = to_float(fingers.images[rows])
    points = crop_landmarks(fingers.index.iloc[rows])
    return model, x, predict_logits(model, x).argmax(1), hand_masks(points, kind="fingers", dilate=1), hand_masks(points, dilate=2)


def test_ranking_breaks_ties_at_random() -> None:
    maps = torch.zeros(2, 1, 4, 4)
    maps[:, 0, 3, 3] = 1.0
    order = ranking(maps)
    assert (order[:, 0] == 15).all() and sorted(order[0].tolist()) == list(range(16))
    assert order[0, 1:].tolist() != list(range(15))  # not raster order
    assert torch.equal(ranking(maps, seed=3), ranking(maps, seed=3))


def test_fills() -> None:
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(fill_images(x, "zero"), torch.zeros_like(x))
    assert torch.allclose(fill_images(x, "mean"), x.mean((-2, -1), keepdim=True).expand_as(x))
    blurred = fill_images(x, "blur")
    # A normalised Gaussian: a constant image stays constant, the mean is kept, the noise is smoothed away.
    assert torch.allclose(fill_images(torch.full_like(x, 0.4), "blur"), torch.full_like(x, 0.4), atol=1e-6)
    assert blurred.std() < 0.2 * x.std() and abs(float(blurred.mean() - x.mean())) < 0.02
    with pytest.raises(ValueError):
        fill_images(x, "noise")


def test_curves_run_from_the_crop_to_the_fill_and_back(shipped) -> None:
    model, x, y, _, _ = shipped
    full = model(x).softmax(1)[torch.arange(len(x)), y].detach()
    for fill in FILLS:
        filled = model(fill_images(x, fill)).softmax(1)[torch.arange(len(x)), y].detach()
        deletion = perturbation_curves(model, x, y, intensity_maps(x), "deletion", fill)
        insertion = perturbation_curves(model, x, y, intensity_maps(x), "insertion", fill)
        assert deletion.shape == insertion.shape == (len(x), 21)
        assert torch.allclose(deletion[:, 0], full, atol=1e-6) and torch.allclose(deletion[:, -1], filled, atol=1e-6)
        assert torch.allclose(insertion[:, 0], filled, atol=1e-6) and torch.allclose(insertion[:, -1], full, atol=1e-6)
    assert not model.training
    # The area of a flat curve is its height.
    assert torch.allclose(curve_area(torch.full((3, 11), 0.25)), torch.full((3,), 0.25))


def test_the_default_explainer_beats_both_baselines_on_real_crops(shipped) -> None:
    """On these crops, with the blur fill: the default's deletion is lower and its insertion higher than both
    the random and the brightest-first orders', its heat stays on the hand, and plain Grad-CAM's does not."""
    model, x, y, fingers, hand = shipped
    scores = {name: crop_scores(model, x, y, method_maps(model, x, y, name, layer), fingers, hand)
              for name, layer in ((*DEFAULT_EXPLAINER,), ("gradcam", "conv1"), ("random", None), ("intensity", None))}
    mean = {name: {k: float(np.nanmean(v)) for k, v in s.items()} for name, s in scores.items()}
    default, base = mean[DEFAULT_EXPLAINER[0]], {b: mean[b] for b in BASELINES}
    print({k: {c: round(v, 3) for c, v in s.items()} for k, s in mean.items()})
    for b in BASELINES:
        assert default["deletion_blur"] < base[b]["deletion_blur"] and default["insertion_blur"] > base[b]["insertion_blur"]
    assert default["background_share"] <= MAX_BACKGROUND < mean["gradcam"]["background_share"]
    assert mean["intensity"]["background_share"] == 0.0  # the crop is black off the hand
    assert margin(default, base) > 0 > margin(mean["gradcam"], base)


def test_choose_default_takes_the_largest_margin_over_the_better_baseline() -> None:
    # random is the better baseline on deletion, intensity on insertion: a method must beat each where it is best.
    base = {"random": {c: 0.4 if c.startswith("deletion") else 0.5 for c in CURVES},
            "intensity": {c: 0.6 if c.startswith("deletion") else 0.7 for c in CURVES}}

    def method(deletion: float, insertion: float, background: float) -> dict:
        return {**{c: deletion if c.startswith("deletion") else insertion for c in CURVES}, "background_share": background}

    means = {"a": method(0.2, 0.9, 0.5),   # beats both by 0.2, but half its heat is off the hand
             "b": method(0.3, 0.8, 0.1),   # beats both by 0.1
             "c": method(0.5, 0.9, 0.0),   # beats intensity on deletion, not random
             "d": method(0.35, 0.75, 0.0)}  # beats both by 0.05
    assert gains(means["b"], base) == pytest.approx(dict.fromkeys(CURVES, 0.1))
    assert margin(means["c"], base) == pytest.approx((-0.1 + 0.2) / 2)
    assert choose_default(means, base) == "b"
    assert choose_default({k: means[k] for k in "cd"}, base) == "d"  # c loses to random on the blur deletion
    with pytest.raises(ValueError, match="background share"):
        choose_default({"a": means["a"], "c": means["c"]}, base)


def test_session_means_weigh_every_session_alike() -> None:
    groups = np.array(["big"] * 9 + ["small"])
    scores = {"x": np.array([1.0] * 9 + [0.0]), "y": np.array([np.nan] * 9 + [2.0])}
    assert session_means(scores, groups) == {"x": 0.5, "y": 2.0}


def test_candidates_cover_every_cam_at_every_layer() -> None:
    found = candidates(["conv1", "act2"])
    assert ("hirescam-rel", "input") in found and ("saliency", None) in found
    assert {m for m, layer in found if layer == "act2"} == set(CAM_METHODS)
    assert [m for m, layer in found if layer == "input"] == ["hirescam-rel"]  # the one per-cell method
    maps = random_maps((2, 1, 4, 4))
    assert maps.shape == (2, 1, 4, 4) and torch.equal(maps, random_maps((2, 1, 4, 4))) and maps.std() > 0.1
