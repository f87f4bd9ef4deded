"""The landmark MLP baseline: the popular recipe's features, its net, and training on the CNN's splits."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from pipeline.data.load import affines_of, landmarks_of
from pipeline.data.store import LANDMARK_COLUMNS
from pipeline.errors import UserError
from pipeline.preprocess.crops import transform_points
from pipeline.training.landmark_mlp import (
    LANDMARK_CONFIG,
    LandmarkMLP,
    dataset_features,
    landmark_features,
    mirror_flags,
    predict_landmark_mlp,
    train_landmark_mlp,
)
from pipeline.training.loop import accuracy, predict_logits
from pipeline.training.run import Split, make_split

#: Short enough for the suite (about 2 s here); on data/fingers' default split it reached 0.93 test accuracy.
SHORT = replace(LANDMARK_CONFIG, epochs=100, lr=1e-2, patience=100)


@pytest.fixture(scope="module")
def marks(fingers) -> np.ndarray:
    return landmarks_of(fingers.index)


@pytest.fixture(scope="module")
def split(fingers) -> Split:
    return make_split(fingers, seed=0)


def reference_recipe(landmark_list: list[list[float]]) -> list[float]:
    """Kazuhito00's ``pre_process_landmark``, as written there (lists of [x, y] pixels)."""
    temp = [list(p) for p in landmark_list]
    base_x, base_y = temp[0]
    for p in temp:
        p[0], p[1] = p[0] - base_x, p[1] - base_y
    flat = [v for p in temp for v in p]
    max_value = max(map(abs, flat))
    return [v / max_value for v in flat]


def test_features_are_the_popular_recipe(marks: np.ndarray) -> None:
    features = landmark_features(marks[:20])
    assert features.shape == (20, 42) and features.dtype == np.float32
    for i in range(20):
        np.testing.assert_allclose(features[i], reference_recipe(marks[i, :, :2].tolist()), rtol=0, atol=1e-6)
    # z plays no part: (N, 21, 2) gives the same numbers.
    np.testing.assert_array_equal(landmark_features(marks[:20, :, :2]), features)


def test_features_ignore_translation_and_uniform_scale(marks: np.ndarray) -> None:
    features = landmark_features(marks)
    rng = np.random.default_rng(0)
    moved = marks.copy()
    moved[:, :, :2] = moved[:, :, :2] * rng.uniform(0.2, 5.0, (len(marks), 1, 1)) + rng.uniform(-900, 900, (len(marks), 1, 2))
    np.testing.assert_allclose(landmark_features(moved), features, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.abs(features).max(1), 1.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(features[:, :2], 0.0)  # the wrist is the origin


def test_a_sample_with_no_spread_gives_zeros_not_nans(marks: np.ndarray) -> None:
    flat = np.repeat(marks[:1, :1], 21, axis=1)  # every landmark on the wrist
    assert np.array_equal(landmark_features(np.concatenate([flat, marks[:1]]))[0], np.zeros(42, np.float32))
    with pytest.raises(ValueError, match="21"):
        landmark_features(marks[:, :20])


def test_mirror_negates_exactly_the_x_features_of_the_marked_samples(marks: np.ndarray) -> None:
    plain = landmark_features(marks)
    flip = np.arange(len(marks)) % 3 == 0
    mirrored = landmark_features(marks, flip)
    np.testing.assert_array_equal(mirrored[~flip], plain[~flip])
    np.testing.assert_array_equal(mirrored[flip, 1::2], plain[flip, 1::2])  # y untouched
    np.testing.assert_array_equal(mirrored[flip, 0::2], -plain[flip, 0::2])
    assert np.abs(plain[flip, 0::2]).max(1).min() > 0.05  # every flipped sample had x features to flip
    # It is the same as mirroring the frame itself (x -> W - x).
    frame = marks.copy()
    frame[:, :, 0] = 640 - frame[:, :, 0]
    np.testing.assert_allclose(landmark_features(frame), landmark_features(marks, np.ones(len(marks), bool)),
                               rtol=0, atol=1e-6)


def test_upright_features_are_the_hand_as_its_crop_shows_it(fingers, marks: np.ndarray) -> None:
    # The fair baseline sees what the CNN's crop sees: each hand's landmarks taken through the crop's own
    # frame -> crop affine (turned upright, mirrored as the crop was), relative to the wrist, scaled.
    assert fingers.settings.rotate
    features = landmark_features(marks, mirror_flags(fingers, "crops"), upright=True)
    in_crop = np.stack([transform_points(a, m[:, :2]) for a, m in zip(affines_of(fingers.index), marks)])
    in_crop -= in_crop[:, :1]
    expected = in_crop.reshape(len(marks), 42) / np.abs(in_crop.reshape(len(marks), 42)).max(1, keepdims=True)
    np.testing.assert_allclose(features, expected, rtol=0, atol=5e-5)  # the index stores affines rounded
    # Upright: the middle finger's base lies straight above the wrist.
    np.testing.assert_allclose(features[:, 2 * 9], 0.0, atol=1e-6)
    assert (features[:, 2 * 9 + 1] < 0).all()


def test_upright_features_do_not_change_when_the_photo_turns(marks: np.ndarray) -> None:
    angles = np.random.default_rng(1).uniform(np.pi / 6, 2 * np.pi - np.pi / 6, len(marks))  # each a real turn
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    turned = marks.copy()
    x, y = marks[:, :, 0] - 320, marks[:, :, 1] - 240
    turned[:, :, 0], turned[:, :, 1] = c * x - s * y + 320, s * x + c * y + 240
    np.testing.assert_allclose(landmark_features(turned, upright=True), landmark_features(marks, upright=True),
                               rtol=0, atol=1e-5)
    # The popular recipe's features move with the turn: that is what upright is for.
    assert np.abs(landmark_features(turned) - landmark_features(marks)).max(1).min() > 0.05


def test_mirror_rules(fingers) -> None:
    crops = mirror_flags(fingers, "crops")
    assert fingers.settings.mirror == "chirality" and 0.3 < crops.mean() < 0.7
    np.testing.assert_array_equal(mirror_flags(fingers, "chirality"), crops)  # the rule the crops were made with
    np.testing.assert_array_equal(mirror_flags(fingers, "handedness"), fingers.index["handedness"] == "Left")
    assert not mirror_flags(fingers, "none").any()
    with pytest.raises(UserError, match="chirality"):
        mirror_flags(fingers, "sideways")


def test_a_dataset_without_landmarks_is_refused_with_one_line(fingers) -> None:
    no_marks = replace(fingers, index=fingers.index.drop(columns=LANDMARK_COLUMNS))
    with pytest.raises(UserError, match="no hand landmarks"):
        dataset_features(no_marks)


def test_model_is_the_popular_net() -> None:
    model = LandmarkMLP(6)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(42, 20), (20, 10), (10, 6)]
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.2, 0.4]
    assert sum(p.numel() for p in model.parameters()) == 42 * 20 + 20 + 20 * 10 + 10 + 10 * 6 + 6  # 1136
    assert model(torch.zeros(5, 42)).shape == (5, 6)


def test_short_training_beats_the_majority_class_by_far(fingers, split: Split) -> None:
    model, history = train_landmark_mlp(fingers, split, SHORT)
    test_labels = fingers.labels[split.test]
    acc = accuracy(predict_landmark_mlp(model, fingers, split.test), test_labels)
    majority = np.bincount(test_labels.numpy()).max() / len(test_labels)  # 0.43: the test split's own majority
    assert acc > 0.8 > majority + 0.3  # measured 0.93
    assert len(history) == SHORT.epochs and history[-1].train_loss < 0.7 * history[0].train_loss
    # The model returned is the epoch best on validation (accuracy, then loss), not the last one.
    best = max(history, key=lambda r: (r.val_acc, -r.val_loss))
    assert accuracy(predict_landmark_mlp(model, fingers, split.val), fingers.labels[split.val]) == best.val_acc


def test_same_seed_same_model_and_the_test_split_is_never_read(fingers, split: Split) -> None:
    config = replace(SHORT, epochs=4)
    a, history_a = train_landmark_mlp(fingers, split, config, mirror="crops")
    # Scrambling the test rows' landmarks must not change training at all.
    scrambled = fingers.index.copy()
    cols = [c for c in LANDMARK_COLUMNS if c[0] in "xy"]
    scrambled.loc[split.test, cols] = np.random.default_rng(1).uniform(0, 640, (len(split.test), len(cols)))
    b, history_b = train_landmark_mlp(replace(fingers, index=scrambled), split, config, mirror="crops")
    assert history_a == history_b
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    logits = predict_landmark_mlp(a, fingers, split.test)
    assert torch.equal(logits, predict_landmark_mlp(b, fingers, split.test))
    # Prediction makes the features with the model's own mirror rule.
    assert a.mirror == "crops"
    torch.testing.assert_close(logits, predict_logits(a, dataset_features(fingers, "crops")[split.test]), rtol=0, atol=0)
    c, _ = train_landmark_mlp(fingers, split, replace(config, seed=1), mirror="crops")
    assert not torch.equal(predict_landmark_mlp(c, fingers, split.test), logits)


def test_patience_stops_early(fingers, split: Split) -> None:
    _, history = train_landmark_mlp(fingers, split, replace(SHORT, epochs=200, patience=2))
    best = max(range(len(history)), key=lambda i: (history[i].val_acc, -history[i].val_loss))
    assert len(history) < 200 and len(history) - 1 - best == 2  # stopped two epochs after the best one


def test_prediction_makes_the_features_upright_when_the_model_was_trained_upright(fingers, split: Split) -> None:
    model, _ = train_landmark_mlp(fingers, split, replace(SHORT, epochs=4), mirror="crops", upright=True)
    assert model.upright and model.mirror == "crops"
    logits = predict_landmark_mlp(model, fingers, split.test)
    upright = dataset_features(fingers, "crops", upright=True)[split.test]
    torch.testing.assert_close(logits, predict_logits(model, upright), rtol=0, atol=0)
    assert not torch.equal(logits, predict_logits(model, dataset_features(fingers, "crops")[split.test]))


def test_a_saved_model_predicts_as_it_did_upright_or_not(fingers, split: Split, tmp_path) -> None:
    """save/load keeps the weights and how the features are made: an upright model loads upright and answers the
    test split to the last bit; a file written before ``upright`` was saved loads as the popular recipe."""
    model, _ = train_landmark_mlp(fingers, split, replace(SHORT, epochs=4), mirror="crops", upright=True)
    model.save(tmp_path / "mlp.pt")
    again = LandmarkMLP.load(tmp_path / "mlp.pt")
    assert (again.upright, again.mirror, again.training) == (True, "crops", False)
    assert torch.equal(predict_landmark_mlp(again, fingers, split.test), predict_landmark_mlp(model, fingers, split.test))
    old = torch.load(tmp_path / "mlp.pt", weights_only=True)
    del old["upright"]
    torch.save(old, tmp_path / "old.pt")
    assert not LandmarkMLP.load(tmp_path / "old.pt").upright
