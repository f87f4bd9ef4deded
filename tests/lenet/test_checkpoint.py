"""Checkpoints: a plain dict that torch.load(weights_only=True) reads back to the same model."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.lenet.checkpoint import load_model
from pipeline.lenet.model import predict_logits

REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"


def test_checkpoint_round_trips_with_weights_only(trained_run: Path, fingers) -> None:
    raw = torch.load(trained_run / "model.pt", weights_only=True)  # a plain dict, no pickled classes
    assert raw["label_names"] == ["fist", "one", "two", "three", "four", "five", "none"]
    assert raw["crop_settings"] == fingers.settings.to_dict()
    assert raw["model_name"] == "lenet5" and raw["package_version"]
    assert 0 < raw["input"]["mean"] < 1 and raw["input"]["std"] > 0
    loaded = load_model(trained_run / "model.pt")
    assert loaded.crop_settings == fingers.settings and loaded.labels == raw["label_names"] and loaded.name == "lenet5"
    logits = predict_logits(loaded.network, fingers.images[:64])
    again = predict_logits(load_model(trained_run / "model.pt").network, fingers.images[:64])
    assert torch.equal(logits, again)
    split = loaded.checkpoint["data"]["split_groups"]
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(split["test"])


def test_the_shipped_model_names_its_datasets_and_split() -> None:
    """The checkpoint records what it was trained on: seven committed datasets (relative to the checkout) and
    its split by group, whose test groups the explanation benchmark reads."""
    loaded = load_model()
    repo = Path(__file__).resolve().parents[2]
    paths = loaded.data_paths(repo)
    assert [p.name for p in paths] == ["fingers", "sign_digits", "homes", "rps_green", "asl_letters", "epsrc", "gestures"]
    assert all(p.is_dir() and (p / "index.csv").is_file() for p in paths)
    groups = loaded.split_groups()
    assert set(groups) == {"train", "val", "test"} and not set(groups["test"]) & set(groups["train"])
    assert all("/" in g for g in groups["test"])  # NAME/GROUP: two datasets' sessions never merge


def test_output_folders_are_named_so_that_the_shipped_model_and_a_users_runs_fingers_never_share_one(tmp_path) -> None:
    """evaluate and explain name their default folders after the model: the README trains runs/fingers, and the
    shipped model's file is fingers.pt."""
    shipped = load_model()
    assert shipped.short_name == "shipped-fingers"
    (tmp_path / "runs" / "fingers").mkdir(parents=True)
    copy = tmp_path / "runs" / "fingers" / "model.pt"
    copy.write_bytes(shipped.path.read_bytes())
    (tmp_path / "mine.pt").write_bytes(shipped.path.read_bytes())
    assert load_model(copy).short_name == "fingers" and load_model(tmp_path / "mine.pt").short_name == "mine"
