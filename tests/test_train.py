"""Training, checkpoints and evaluation on the real crops in ``data/fingers``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import pipeline.runs as runs
from pipeline.checkpoint import load_model, read_checkpoint
from pipeline.data import load_dataset
from pipeline.errors import UserError
from pipeline.models import predict_logits
from pipeline.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]
FINGERS = REPO / "data" / "fingers"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def fingers():
    return load_dataset(FINGERS)


@pytest.fixture(scope="module")
def small(fingers):
    """A few sessions only, so repeated runs stay fast."""
    keep = np.flatnonzero(np.isin(fingers.groups, ["2", "996", "55", "5", "3_1528505750.77"]))
    return fingers.subset(keep)


@pytest.fixture(scope="module")
def trained(fingers, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "fingers"
    runs.train_run(fingers, "lenet5", out, replace(TrainConfig(), epochs=8), progress=False, log=lambda *_: None)
    return out


def test_short_training_beats_chance_by_far(trained: Path, fingers) -> None:
    ckpt = read_checkpoint(trained / "model.pt")
    majority = np.bincount(fingers.labels.numpy()).max() / len(fingers)  # 0.28
    assert ckpt["metrics"]["test_accuracy"] > 0.75 > majority + 0.4
    for name in ("metrics.csv", "curves.png", "confusion.png", "per_class.csv", "summary.json"):
        assert (trained / name).stat().st_size > 0
    metrics = pd.read_csv(trained / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(1, 9))
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]


def test_checkpoint_round_trips_with_weights_only(trained: Path, fingers) -> None:
    raw = torch.load(trained / "model.pt", weights_only=True)  # a plain dict, no pickled classes
    assert raw["label_names"] == ["fist", "one", "two", "three", "four", "five"]
    assert raw["crop_settings"] == fingers.settings.to_dict()
    assert raw["model_name"] == "lenet5" and raw["package_version"]
    assert 0 < raw["input"]["mean"] < 1 and raw["input"]["std"] > 0
    model, ckpt = load_model(trained / "model.pt")
    assert ckpt["crop"] == fingers.settings
    logits = predict_logits(model, fingers.images[:64])
    again = predict_logits(load_model(trained / "model.pt")[0], fingers.images[:64])
    assert torch.equal(logits, again)
    split = ckpt["data"]["split_groups"]
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(split["test"])


def test_same_seed_gives_identical_metrics(small, tmp_path: Path) -> None:
    config = replace(TrainConfig(), epochs=3)
    a = runs.train_run(small, "lenet5", tmp_path / "a", config, progress=False, log=lambda *_: None)
    b = runs.train_run(small, "lenet5", tmp_path / "b", config, progress=False, log=lambda *_: None)
    assert a.test_accuracy == b.test_accuracy
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "metrics.csv"), pd.read_csv(tmp_path / "b" / "metrics.csv"))
    c = runs.train_run(small, "lenet5", tmp_path / "c", replace(config, seed=1), progress=False, log=lambda *_: None)
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
    model, _ = load_model(tmp_path / "e" / "model.pt")
    probs = predict_logits(model, small.images[:8]).exp()
    assert torch.allclose(probs.sum(1), torch.ones(8), atol=1e-3) or probs.sum(1).max() <= 1.0 + 1e-5


def test_train_cli_prints_the_test_accuracy_last(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    proc = run_cli("pipeline.train", "--data", str(FINGERS), "--out", str(out), "--epochs", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("test_accuracy=") and 0 <= float(last.split("=")[1]) <= 1
    again = run_cli("pipeline.train", "--data", str(FINGERS), "--out", str(out), "--epochs", "2", "--quiet")
    assert again.returncode == 2 and again.stderr.startswith("error:") and "never overwritten" in again.stderr


def test_mnist_importer_reads_the_real_idx_files(tmp_path: Path) -> None:
    from pipeline.datasets import load_mnist

    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    if not root.is_dir():
        pytest.skip(f"real data missing: MNIST idx files ({root})")
    data = load_mnist(root)
    assert data.images.shape == (70_000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert (data.groups == "test").sum() == 10_000
    assert np.bincount(data.labels.numpy()).min() > 5_000
    split = runs.make_split(data)
    assert len(split.test) == 10_000 and len(split.val) == 6_000
    assert not set(split.train) & set(split.val)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


def test_bad_inputs_give_one_clear_line(tmp_path: Path, trained: Path) -> None:
    assert "no such" in _error_line(run_cli("pipeline.train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")))\
        or "not a dataset" in _error_line(run_cli("pipeline.train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")))
    # A dataset with one class only.
    one = tmp_path / "one"
    shutil.copytree(FINGERS, one, ignore=shutil.ignore_patterns(".cache"))
    index = pd.read_csv(one / "index.csv", dtype=str)
    index[index["label"] == "fist"].to_csv(one / "index.csv", index=False)
    assert "only one class" in _error_line(run_cli("pipeline.train", "--data", str(one), "--out", str(tmp_path / "o1"), "--quiet"))
    # An empty dataset.
    index.iloc[:0].to_csv(one / "index.csv", index=False)
    assert "empty" in _error_line(run_cli("pipeline.train", "--data", str(one), "--out", str(tmp_path / "o2"), "--quiet"))
    # A listed crop whose file is missing.
    gone = tmp_path / "gone"
    shutil.copytree(FINGERS, gone, ignore=shutil.ignore_patterns(".cache"))
    next((gone / "crops" / "two").glob("*.png")).unlink()
    assert "missing" in _error_line(run_cli("pipeline.train", "--data", str(gone), "--out", str(tmp_path / "o3"), "--quiet"))
    # Checkpoints: not one at all, and one whose weights do not fit its model.
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert "not a checkpoint" in _error_line(run_cli("pipeline.evaluate", "--model", str(junk), str(tmp_path)))
    ckpt = torch.load(trained / "model.pt", weights_only=True)
    ckpt["model_config"]["channels"] = [8, 16]
    torch.save(ckpt, tmp_path / "wrong.pt")
    assert "do not fit" in _error_line(run_cli("pipeline.evaluate", "--model", str(tmp_path / "wrong.pt"), str(tmp_path)))
    ckpt = torch.load(trained / "model.pt", weights_only=True)
    ckpt["crop_settings"]["warp_mode"] = "fancy"
    torch.save(ckpt, tmp_path / "newer.pt")
    assert "unknown crop setting" in _error_line(run_cli("pipeline.evaluate", "--model", str(tmp_path / "newer.pt"), str(tmp_path)))


def test_evaluate_runs_the_whole_path_on_real_photos(trained: Path, tmp_path: Path, fingers_dir: Path) -> None:
    folder = tmp_path / "photos"
    for label, source in (("one", "1"), ("five", "5"), ("rock", "5")):
        (folder / label).mkdir(parents=True)
        for photo in sorted((fingers_dir / source).glob("996_pic*.jpg"))[:3]:
            shutil.copy(photo, folder / label / photo.name)
    proc = run_cli("pipeline.evaluate", "--model", str(trained / "model.pt"), str(folder), "--quiet",
                   "--out", str(tmp_path / "eval"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert any("skipped 3 file(s) of label 'rock'" in line for line in lines)
    fields = dict(kv.split("=") for kv in lines[-1].split())
    assert set(fields) == {"accuracy", "n", "no_hand"}
    assert int(fields["n"]) + int(fields["no_hand"]) == 6
    assert 0 <= float(fields["accuracy"]) <= 1
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "eval" / "predictions.csv")) == int(fields["n"])
