"""Scores of explanation maps on real crops: hand masks, pointing game, deletion, sanity checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.explainers import GradCAM, Saliency, normalize, upsample
from pipeline.explainers.scores import (
    cascading_randomisation,
    constant_maps,
    crop_landmarks,
    deletion_curves,
    deletion_order,
    deletion_score,
    hand_masks,
    localisation_scores,
    mass_inside,
    pointing_game,
    spearman,
)
from pipeline.lenet.model import predict_logits, to_float

FINGERS = Path(__file__).resolve().parents[2] / "data" / "fingers"




@pytest.fixture(scope="module")
def hands(fingers):
    """The first 40 crops, their landmarks in crop pixels and their hand masks."""
    rows = fingers.index.iloc[:40]
    points = crop_landmarks(rows)
    return to_float(fingers.images[:40]), points, hand_masks(points)


@pytest.fixture(scope="module")
def trained(sanity_models):
    """The session's true-label LeNet-5 and 96 of its held-out test crops."""
    return sanity_models["true"], sanity_models["x"][:96], sanity_models["y"][:96]


def test_hand_masks_cover_the_landmarks_and_the_visible_hand(fingers, hands) -> None:
    x, points, masks = hands
    assert masks.shape == (40, 28, 28) and masks.dtype == bool
    # Every landmark lies on its own mask.
    cols, rows = np.clip(np.floor(points[..., 0]).astype(int), 0, 27), np.clip(np.floor(points[..., 1]).astype(int), 0, 27)
    assert masks[np.arange(40)[:, None], rows, cols].all()
    # The crops are masked with the same bones: nearly all of their bright pixels lie on the mask,
    # and the mask is a small part of the crop.
    bright = x[:, 0].numpy() > 0.2
    assert (bright & masks).sum() / bright.sum() > 0.9
    assert 0.1 < masks.mean() < 0.6
    hull = hand_masks(points, kind="hull")
    assert (hull & masks).sum() / masks.sum() > 0.98 and hull.sum() > masks.sum()  # the hull holds the bones
    with pytest.raises(ValueError):
        hand_masks(points, kind="none")


def test_pointing_game_and_mass_inside(hands) -> None:
    _, points, masks = hands
    n = len(masks)
    on_hand = torch.zeros(n, 1, 28, 28)
    off_hand = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        x, y = np.floor(points[i, 9]).astype(int)  # the middle finger's base: on the palm
        on_hand[i, 0, y, x] = 1.0
        ys, xs = np.nonzero(~masks[i])
        off_hand[i, 0, ys[0], xs[0]] = 1.0  # a background pixel
    assert pointing_game(on_hand, masks).all() and not pointing_game(off_hand, masks).any()
    assert np.allclose(mass_inside(on_hand, masks), 1.0) and np.allclose(mass_inside(off_hand, masks), 0.0)
    # A plateau spilling off the hand misses; a constant map misses; half the mass inside is 0.5.
    both = on_hand + off_hand
    assert not pointing_game(both, masks).any() and np.allclose(mass_inside(both, masks), 0.5)
    assert not pointing_game(torch.ones(n, 1, 28, 28), masks).any()
    assert np.allclose(mass_inside(torch.ones(n, 1, 28, 28), masks), masks.mean((1, 2)))
    assert np.isnan(mass_inside(torch.zeros(n, 1, 28, 28), masks)).all()
    scores = localisation_scores(on_hand, masks)
    assert scores["pointing"] == 1.0 and scores["mass_inside"] == 1.0 and scores["constant"] == 0.0
    with pytest.raises(ValueError):
        pointing_game(torch.zeros(n, 1, 14, 14), masks)


def test_deletion_order_breaks_ties_at_random() -> None:
    maps = torch.zeros(2, 1, 4, 4)
    maps[:, 0, 3, 3] = 1.0
    order = deletion_order(maps)
    assert (order[:, 0] == 15).all() and sorted(order[0].tolist()) == list(range(16))
    assert order[0, 1:].tolist() != list(range(15))  # not raster order
    assert torch.equal(deletion_order(maps, seed=3), deletion_order(maps, seed=3))


def test_deletion_of_a_faithful_map_beats_a_random_map(trained) -> None:
    model, x, y = trained
    assert (predict_logits(model, x).argmax(1) == y).float().mean() > 0.7
    # "Perfect" for deletion: the crop itself (the bright hand pixels first) ...
    curves = deletion_curves(model, x, y, x)
    assert curves.shape == (len(x), 21)
    full = model(x).softmax(1)[torch.arange(len(x)), y]
    assert torch.allclose(curves[:, 0], full.detach(), atol=1e-6)  # step 0: the intact crop
    black = model(torch.zeros_like(x)).softmax(1)[torch.arange(len(x)), y].detach()
    assert torch.allclose(curves[:, -1], black, atol=1e-6)  # last step: an all-black image
    random_maps = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    faithful, random = deletion_score(curves).mean(), deletion_score(deletion_curves(model, x, y, random_maps)).mean()
    # ... and the model's own Grad-CAM beat a random order by far.
    cam = GradCAM(model, "act1")
    gradcam = deletion_score(deletion_curves(model, x, y, normalize(upsample(cam(x, y), 28, cam.grid)))).mean()
    assert faithful < random - 0.1 and gradcam < random - 0.1, (faithful, gradcam, random)
    assert model.training is False
    # The area of a flat curve is its height.
    assert torch.allclose(deletion_score(torch.full((3, 11), 0.25)), torch.full((3,), 0.25))


def test_spearman_and_constant_maps() -> None:
    a = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(spearman(a, a), torch.ones(3)) and torch.allclose(spearman(a, -a), -torch.ones(3))
    assert torch.allclose(spearman(a, a ** 3 + 2), torch.ones(3))  # ranks only
    flat = torch.ones(3, 1, 5, 5)
    assert constant_maps(flat).all() and not constant_maps(a).any()
    assert torch.equal(spearman(a, flat), torch.zeros(3))


def test_cascading_randomisation_leaves_the_model_and_decorrelates(trained) -> None:
    model, x, y = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    curve = cascading_randomisation(model, lambda m: GradCAM(m, "conv2"), x[:48], y[:48], draws=2)
    assert curve.shape == (5, 3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert curve[-1, 0] < 0.4 and curve[-1, 0] < curve[0, 0]
    # Saliency of a fully randomised network keeps more of the trained one's ranking than Grad-CAM
    # does (Adebayo et al.'s finding: gradients follow the input's edges whatever the weights).
    sal = cascading_randomisation(model, Saliency, x[:16], y[:16], draws=1)
    print("cascade gradcam conv2:", curve[:, 0].tolist(), "saliency:", sal[:, 0].tolist())
    assert sal[-1, 0] < sal[0, 0] and sal[-1, 0] > curve[-1, 0]
