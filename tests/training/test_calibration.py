"""Calibration: a temperature fitted on validation recovers a known one, and the answers the demo would show."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.training.calibration import answers, fit_temperature, none_scores, reliability


def sampled(temperature: float, n: int = 20000, classes: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits, and labels drawn from softmax(logits / temperature): the temperature that calibrates them is known."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=gen) * 3
    labels = torch.multinomial((logits / temperature).softmax(1), 1, generator=gen)[:, 0]
    return logits, labels


@pytest.mark.parametrize("true", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(true: float) -> None:
    logits, labels = sampled(true)
    assert fit_temperature(logits, labels) == pytest.approx(true, rel=0.05)
    assert fit_temperature(logits[:0], labels[:0]) == 1.0  # nothing to fit on: leave the logits alone


def test_calibrated_probabilities_have_a_small_expected_calibration_error() -> None:
    logits, labels = sampled(2.0)
    over = reliability((logits / 0.5).softmax(1).numpy(), labels.numpy())[3]  # far too confident
    right = reliability((logits / fit_temperature(logits, labels)).softmax(1).numpy(), labels.numpy())[3]
    assert right < 0.015 < 0.1 < over


def test_answers_and_none_scores() -> None:
    labels = ["fist", "one", "none"]
    probs = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1]])
    shown = answers(probs, labels, 0.5)
    assert shown.tolist() == [0, 2, 2, 1]  # below the threshold: none
    assert answers(probs, ["fist", "one", "two"], 0.5).tolist() == [0, -1, 2, 1]  # no none class: no answer
    truth = np.array([0, 2, 1, 2])
    scores = none_scores(shown, truth, labels)
    assert scores == {"none_precision": 0.5, "none_recall": 0.5, "false_positive_rate": 0.5}
    assert none_scores(shown, truth, ["fist", "one", "two"]) == {}
