"""Scores of explanation maps on real crops: hand masks, pointing game, background share, similarity measures, sanity checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.explainers import GradCAM, Saliency
from pipeline.explainers.scores import (
    SIMILARITIES,
    background_share,
    cascading_randomisation,
    compare_maps,
    constant_maps,
    crop_landmarks,
    hand_masks,
    hog_similarity,
    localisation_scores,
    mass_inside,
    pointing_game,
    spearman,
    spearman_within,
    ssim,
)
from pipeline.lenet.model import to_float

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
    # The fingers lie on the bones, without the palm; dilation by 2 px grows the mask, and keeps it.
    fingers = hand_masks(points, kind="fingers")
    assert (fingers & masks).sum() / fingers.sum() > 0.98 and 0.3 * masks.sum() < fingers.sum() < 0.9 * masks.sum()
    tips = points[:, [4, 8, 12, 16, 20]]
    cols, rows = np.clip(np.floor(tips[..., 0]).astype(int), 0, 27), np.clip(np.floor(tips[..., 1]).astype(int), 0, 27)
    assert fingers[np.arange(40)[:, None], rows, cols].all()
    dilated = hand_masks(points, dilate=2)
    assert (dilated | masks).sum() == dilated.sum() and dilated.sum() > 1.3 * masks.sum()


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
    assert np.allclose(background_share(both, masks), 0.5) and np.allclose(background_share(off_hand, masks), 1.0)
    scores = localisation_scores(on_hand, masks)
    assert scores["pointing"] == 1.0 and scores["mass_inside"] == 1.0 and scores["constant"] == 0.0
    with pytest.raises(ValueError):
        pointing_game(torch.zeros(n, 1, 14, 14), masks)


def test_spearman_and_constant_maps() -> None:
    a = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(spearman(a, a), torch.ones(3)) and torch.allclose(spearman(a, -a), -torch.ones(3))
    assert torch.allclose(spearman(a, a ** 3 + 2), torch.ones(3))  # ranks only
    flat = torch.ones(3, 1, 5, 5)
    assert constant_maps(flat).all() and not constant_maps(a).any()
    assert torch.equal(spearman(a, flat), torch.zeros(3))


def test_ssim_and_hog_similarity() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(4, 1, 28, 28, generator=gen)
    smooth = torch.nn.functional.avg_pool2d(a, 5, 1, 2)
    # Identical maps score 1 (SSIM after min-max scaling, so a rescaled map is identical too).
    assert torch.allclose(ssim(a, a), torch.ones(4), atol=1e-6) and torch.allclose(ssim(a, 3 * a + 1), torch.ones(4), atol=1e-5)
    assert torch.allclose(hog_similarity(a, a), torch.ones(4), atol=1e-6)
    # Unrelated noise is far from identical by both; a map and its inverse have opposite gradients.
    b = torch.rand(4, 1, 28, 28, generator=gen)
    assert (ssim(a, b) < 0.2).all() and (hog_similarity(smooth, torch.rand(4, 1, 28, 28, generator=gen)) < 0.5).all()
    assert (hog_similarity(smooth, 1 - smooth) > 0.8).all()  # HOG bins unsigned gradients: edges, not their sign
    scores = compare_maps(a, -a)
    assert set(scores) == set(SIMILARITIES)
    assert torch.allclose(scores["spearman"], -torch.ones(4)) and torch.allclose(scores["spearman_abs"], torch.ones(4))


def test_rank_correlation_inside_the_hand_ignores_the_shared_black_background() -> None:
    """Two unrelated maps that are both 0 off the hand (as gradient x input is) rank alike over the whole crop,
    only because of the tie; over the hand's pixels they do not."""
    gen = torch.Generator().manual_seed(0)
    hand = torch.zeros(8, 28, 28, dtype=torch.bool)
    hand[:, 8:20, 10:18] = True
    a = torch.rand(8, 1, 28, 28, generator=gen) * hand[:, None]
    b = torch.rand(8, 1, 28, 28, generator=gen) * hand[:, None]
    assert spearman(a, b).mean() > 0.6  # the tie at 0 alone
    inside = spearman_within(a, b, hand.numpy())
    assert inside.abs().mean() < 0.1 and torch.allclose(spearman_within(a, a, hand.numpy()), torch.ones(8))
    assert set(compare_maps(a, b, hand.numpy())) == {*SIMILARITIES, "spearman_hand"}


def test_cascading_randomisation_leaves_the_model_and_decorrelates(trained) -> None:
    model, x, y = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    curve = cascading_randomisation(model, lambda m: GradCAM(m, "conv2"), x[:48], y[:48], draws=2)
    assert set(curve) == {*SIMILARITIES, "constant"} and all(v.shape == (5,) for v in curve.values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert curve["spearman"][-1] < 0.4 and curve["spearman"][-1] < curve["spearman"][0]
    assert curve["ssim"][-1] < curve["ssim"][0]
    # Saliency of a fully randomised network keeps more of the trained one's ranking than Grad-CAM
    # does (Adebayo et al.'s finding: gradients follow the input's edges whatever the weights).
    sal = cascading_randomisation(model, Saliency, x[:16], y[:16], draws=1)
    print("cascade gradcam conv2:", curve["spearman"].tolist(), "saliency:", sal["spearman"].tolist())
    assert sal["spearman"][-1] < sal["spearman"][0] and sal["spearman"][-1] > curve["spearman"][-1]
