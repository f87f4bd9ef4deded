"""Training runs on real crops: better than chance, seeded, resumable, ensembles."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import pipeline.training.run as runs
from pipeline.errors import UserError
from pipeline.lenet.checkpoint import build_from_checkpoint, load_model, read_checkpoint
from pipeline.lenet.model import predict_logits
from pipeline.training.loop import TrainConfig

REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"




@pytest.fixture(scope="module")
def small(fingers):
    """A few sessions only, so repeated runs stay fast."""
    keep = np.flatnonzero(np.isin(fingers.groups, ["2", "996", "55", "5", "3_1528505750.77"]))
    return fingers.subset(keep)




def test_short_training_beats_chance_by_far(trained_run: Path, fingers) -> None:
    ckpt = read_checkpoint(trained_run / "model.pt")
    majority = np.bincount(fingers.labels.numpy()).max() / len(fingers)  # 0.28
    assert ckpt["metrics"]["test_accuracy"] > 0.75 > majority + 0.4
    for name in ("metrics.csv", "curves.png", "confusion.png", "per_class.csv", "summary.json"):
        assert (trained_run / name).stat().st_size > 0
    metrics = pd.read_csv(trained_run / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(1, 9))
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]


def test_same_seed_gives_identical_metrics(small, tmp_path: Path) -> None:
    config = replace(TrainConfig(), epochs=3)
    a = runs.train_run(small, "lenet5", tmp_path / "a", config, progress=False, log=lambda *_: None)
    b = runs.train_run(small, "lenet5", tmp_path / "b", config, progress=False, log=lambda *_: None)
    assert a.test_accuracy == b.test_accuracy
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "metrics.csv"), pd.read_csv(tmp_path / "b" / "metrics.csv"))
    runs.train_run(small, "lenet5", tmp_path / "c", replace(config, seed=1), progress=False, log=lambda *_: None)
    assert not pd.read_csv(tmp_path / "c" / "metrics.csv").equals(pd.read_csv(tmp_path / "a" / "metrics.csv"))


def test_resume_continues_an_interrupted_run_to_the_same_numbers(small, tmp_path: Path, monkeypatch) -> None:
    config = replace(TrainConfig(), epochs=4)
    straight = runs.train_run(small, "lenet5", tmp_path / "straight", config, progress=False, log=lambda *_: None)

    real = runs.train_model

    def interrupted(*args, on_epoch=None, **kwargs):
        def stop_after_two(record, state):
            on_epoch(record, state)
            if record.epoch == 2:
                raise KeyboardInterrupt

        return real(*args, on_epoch=stop_after_two, **kwargs)

    monkeypatch.setattr(runs, "train_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runs.train_run(small, "lenet5", tmp_path / "cut", config, progress=False, log=lambda *_: None)
    monkeypatch.setattr(runs, "train_model", real)
    assert (tmp_path / "cut" / "resume0.pt").exists() and not (tmp_path / "cut" / "model.pt").exists()
    with pytest.raises(UserError, match="--resume"):
        runs.train_run(small, "lenet5", tmp_path / "cut", config, progress=False, log=lambda *_: None)
    resumed = runs.train_run(small, "lenet5", tmp_path / "cut", config, resume=True, progress=False, log=lambda *_: None)
    assert resumed.test_accuracy == straight.test_accuracy
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cut" / "metrics.csv"),
                                  pd.read_csv(tmp_path / "straight" / "metrics.csv"))


def test_ensemble_checkpoint_holds_every_member(small, tmp_path: Path) -> None:
    result = runs.train_run(small, "lenet5", tmp_path / "e", replace(TrainConfig(), epochs=2), members=2,
                            progress=False, log=lambda *_: None)
    ckpt = read_checkpoint(tmp_path / "e" / "model.pt")
    assert len(ckpt["members"]) == 2 and len(result.member_test_accuracy) == 2
    ensemble = load_model(tmp_path / "e" / "model.pt").network
    # Its answer is the mean of its members' log-probabilities, each member as trained (seeds 0 and 1).
    members = [load_model_member(ckpt, k) for k in range(2)]
    expected = torch.stack([predict_logits(m, small.images[:32]).log_softmax(1) for m in members]).mean(0)
    expected = expected / ckpt["temperature"]  # calibrated as a whole, on validation
    torch.testing.assert_close(predict_logits(ensemble, small.images[:32]), expected, rtol=0, atol=1e-6)
    assert not torch.equal(members[0].layer("fc3").weight, members[1].layer("fc3").weight)


def load_model_member(ckpt: dict, k: int):
    """Member ``k`` of an ensemble checkpoint, as a model of its own."""
    return build_from_checkpoint({**ckpt, "members": [ckpt["members"][k]], "temperature": 1.0})  # as trained


def test_the_run_is_calibrated_on_validation_and_reports_it(trained_run: Path, fingers) -> None:
    ckpt = read_checkpoint(trained_run / "model.pt")
    temperature = ckpt["temperature"]
    assert 0.05 < temperature < 20 and temperature != 1.0
    assert ckpt["metrics"]["temperature"] == temperature
    assert ckpt["metrics"]["test_ece"] <= ckpt["metrics"]["test_ece_raw"] + 0.02
    served = load_model(trained_run / "model.pt").network
    raw = build_from_checkpoint({**ckpt, "temperature": 1.0})
    x = fingers.images[:32]
    torch.testing.assert_close(predict_logits(served, x), predict_logits(raw, x) / temperature, rtol=1e-5, atol=1e-5)
    assert (trained_run / "reliability.png").read_bytes()[:4] == b"\x89PNG"
