"""``python -m pipeline.train``: the last line, several datasets at once, and bad inputs as one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import pipeline.evaluate as evaluate
import pipeline.train as train
from helpers import DATA, REPO, error_line, require, run_main
from pipeline.files import display_path
from pipeline.lenet.checkpoint import read_checkpoint

FINGERS = REPO / "data" / "fingers"
EPSRC = REPO / "data" / "epsrc"
ASL = REPO / "data" / "asl_letters"  # twelve groups: enough for a split


def test_the_last_line_is_the_test_accuracy_and_a_run_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    code, stdout, err = run_main(train, "--data", str(FINGERS), "--out", str(out), "--epochs", "2", "--quiet")
    assert code == 0, err
    last = stdout.strip().splitlines()[-1]
    ckpt = read_checkpoint(out / "model.pt")
    assert last == f"test_accuracy={ckpt['metrics']['test_accuracy']:.4f}"
    code, _, err = run_main(train, "--data", str(FINGERS), "--out", str(out), "--epochs", "2", "--quiet")
    assert code == 2 and "never overwritten" in error_line(err)


def test_several_datasets_train_one_model_and_the_checkpoint_names_them(tmp_path: Path) -> None:
    out = tmp_path / "two"
    code, _, err = run_main(train, "--data", str(FINGERS), "--data", str(EPSRC), "--out", str(out), "--epochs", "1", "--quiet")
    assert code == 0, err
    data = read_checkpoint(out / "model.pt")["data"]
    assert data["spec"]["paths"] == [display_path(FINGERS), display_path(EPSRC)]  # as given: no absolute paths
    assert data["datasets"] == ["epsrc", "fingers"]
    groups = [g for part in data["split_groups"].values() for g in part]
    assert {g.split("/")[0] for g in groups} == {"fingers", "epsrc"}  # two datasets' sessions never merge


def test_fill_depth_trains_on_crops_drawn_from_the_landmarks_with_pose_copies(tmp_path: Path, monkeypatch) -> None:
    """--fill depth: the checkpoint's crops are the depth-shaded ones (what evaluate and the demo will make), the
    member trains on its crops, two finger-pose copies of each and drawn non-gestures a quarter as many as those,
    labelled none; a recording's own crops are not changed."""
    import pipeline.training.run as run
    from pipeline.data.load import dataset_settings, load_dataset
    from pipeline.lenet.checkpoint import load_model

    seen = []

    def train_model(model, train_set, val_set, config, **kwargs):
        seen.append((len(train_set[0]), int((train_set[1] == NONE).sum())))
        return real(model, train_set, val_set, config, **kwargs)

    real = run.train_model
    monkeypatch.setattr(run, "train_model", train_model)
    NONE = load_dataset(ASL).label_names.index("none")
    out = tmp_path / "depth"
    code, stdout, err = run_main(train, "--data", str(ASL), "--fill", "depth", "--out", str(out), "--epochs", "1", "--quiet")
    assert code == 0, err
    split = json.loads((out / "run.json").read_text())["split_groups"]
    groups = load_dataset(ASL).groups
    in_train = np.array([g in split["train"] or f"asl_letters/{g}" in split["train"] for g in groups])
    n_train, real_nones = int(in_train.sum()), int((load_dataset(ASL).labels.numpy()[in_train] == NONE).sum())
    assert n_train > 100
    (trained, nones), = seen
    drawn = round(0.25 * 3 * n_train)
    assert trained == 3 * n_train + drawn and nones == 3 * real_nones + drawn
    model = load_model(out / "model.pt")
    assert model.crop_settings == dataset_settings(ASL, fill="depth")
    augment = json.loads((out / "run.json").read_text())["train"]["augment"]
    assert augment["pose_copies"] == 2 and augment["none_poses"] == 0.25
    assert augment["pose_tilt_deg"] == 30 and augment["none_circles"] == 0.2  # the shipped recipe's defaults
    assert load_dataset(ASL).settings.fill == "image"


def test_augment_settings_and_weight_decay_change_the_recipe_the_run_records_and_trains(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    """--augment KEY=VALUE: one copy per crop and no drawn non-gestures are what the member trains on, and what
    run.json records; the other fields keep the shipped recipe's defaults. --weight-decay reaches the member too."""
    import pipeline.training.run as run
    from pipeline.data.load import load_dataset
    from pipeline.training.augment import AugmentConfig

    seen = []

    def train_model(model, train_set, val_set, config, **kwargs):
        seen.append((len(train_set[0]), config))
        return real(model, train_set, val_set, config, **kwargs)

    real = run.train_model
    monkeypatch.setattr(run, "train_model", train_model)
    out = tmp_path / "one-copy"
    code, _, err = run_main(train, "--data", str(ASL), "--fill", "depth", "--augment", "pose_copies=3", "--augment",
                            "none_poses=0", "--augment", "pose_copies=1", "--augment", "rotate_deg=5", "--out", str(out),
                            "--epochs", "1", "--weight-decay", "0.05", "--quiet")
    assert code == 0, err
    split = json.loads((out / "run.json").read_text())["split_groups"]
    in_train = np.array([g in split["train"] or f"asl_letters/{g}" in split["train"] for g in load_dataset(ASL).groups])
    (trained, config), = seen
    assert trained == 2 * int(in_train.sum())  # each crop and one copy, nothing drawn
    expected = AugmentConfig(pose_copies=1, none_poses=0, rotate_deg=5)
    recorded = json.loads((out / "run.json").read_text())["train"]
    assert config.augment == expected and recorded["augment"] == expected.to_dict()
    assert config.weight_decay == recorded["weight_decay"] == 0.05


def hull_dataset(tmp_path: Path) -> Path:
    hull = tmp_path / "hull"
    shutil.copytree(EPSRC, hull, ignore=shutil.ignore_patterns(".cache", ".lock"))
    meta = json.loads((hull / "dataset.json").read_text())
    meta["crop_settings"]["mask"] = "hull"
    (hull / "dataset.json").write_text(json.dumps(meta))
    return hull


def one_class(tmp_path: Path) -> Path:
    one = tmp_path / "one"
    shutil.copytree(FINGERS, one, ignore=shutil.ignore_patterns(".cache", ".lock"))
    index = pd.read_csv(one / "index.csv", dtype=str)
    index[index["label"] == "fist"].to_csv(one / "index.csv", index=False)
    return one


def missing_crop(tmp_path: Path) -> Path:
    gone = tmp_path / "gone"
    shutil.copytree(FINGERS, gone, ignore=shutil.ignore_patterns(".cache", ".lock"))
    next((gone / "crops" / "two").glob("*.png")).unlink()
    return gone


@pytest.mark.parametrize("args, message", [
    (lambda t: ["--data", str(t / "nope")], "no such folder (--data)"),
    (lambda t: ["--data", str(one_class(t))], "only one class"),
    (lambda t: ["--data", str(missing_crop(t))], "missing or unreadable crop"),
    (lambda t: ["--data", str(FINGERS), "--lr", "-1"], "argument --lr: must be at least 0, got -1"),
    (lambda t: ["--data", str(FINGERS), "--lr", "0"], "argument --lr: must be above 0, got 0"),
    (lambda t: ["--data", str(FINGERS), "--weight-decay", "-0.1"], "argument --weight-decay: must be at least 0, got -0.1"),
    (lambda t: ["--data", str(FINGERS), "--weight-decay", "inf"], "argument --weight-decay: 'inf' is not a finite number"),
    (lambda t: ["--data", str(FINGERS), "--lr", "nan"], "argument --lr: 'nan' is not a finite number"),
    (lambda t: ["--data", str(FINGERS), "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (lambda t: ["--data", str(FINGERS), "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (lambda t: ["--data", str(FINGERS), "--ensemble", "x"], "argument --ensemble: 'x' is not an integer"),
    (lambda t: [], "no data given"),
    (lambda t: ["--data", str(FINGERS), "--augment", "tilt=5"], "argument --augment: 'tilt=5' is not KEY=VALUE with KEY one of rotate_deg,"),
    (lambda t: ["--data", str(FINGERS), "--augment", "pose_copies=1.5"], "argument --augment: pose_copies takes an integer, got '1.5'"),
    (lambda t: ["--data", str(FINGERS), "--augment", "rotate_deg=nan"], "argument --augment: rotate_deg takes a finite number, got 'nan'"),
    (lambda t: ["--data", str(FINGERS), "--augment", "pose_flip=2"], "copies seen from the other side need 0 <= pose_flip <= 1, got 2.0"),
    (lambda t: ["--data", str(FINGERS), "--augment", "rotate_deg=5", "--no-augment"], "--augment changes what --no-augment turns off"),
    (lambda t: ["--data", str(hull_dataset(t)), "--fill", "depth"], "needs the bones mask (--mask bones, collect's default), not hull"),
])
def test_bad_inputs_give_one_clear_line(tmp_path: Path, args, message) -> None:
    code, out, err = run_main(train, *args(tmp_path), "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2 and message in error_line(err) and "Traceback" not in err
    assert not (tmp_path / "o" / "model.pt").exists()


def test_fill_is_for_hand_crops(tmp_path: Path) -> None:
    require(DATA / "mnist", "MNIST idx files")
    code, out, err = run_main(train, "--mnist", str(DATA / "mnist"), "--fill", "depth", "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2 and error_line(err) == "error: --fill is for hand crops made by collect, not for mnist; leave it out"
    assert not (tmp_path / "o" / "model.pt").exists()


def test_an_out_that_is_a_file_or_a_folder_of_other_things_is_refused_before_the_data_loads(tmp_path: Path) -> None:
    """Checked first: the data named here does not even exist, and the message is still about --out."""
    notes = tmp_path / "notes.md"
    notes.write_text("mine\n")
    code, _, err = run_main(train, "--data", str(tmp_path / "nope"), "--out", str(notes), "--quiet")
    assert code == 2 and "notes.md: is a file, not a folder" in error_line(err) and "Traceback" not in err
    assert notes.read_text() == "mine\n"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    code, _, err = run_main(train, "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "other"), "--quiet")
    assert code == 2 and "is not empty and holds no run; choose another --out, or empty it" in error_line(err)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["keep.txt"]
    (tmp_path / "other" / "run.json").write_text("{}")  # a run that stopped before its model was written
    code, _, err = run_main(train, "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "other"), "--quiet")
    assert code == 2 and "holds an unfinished run; pass --resume to continue it" in error_line(err)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["model_config"].update(channels=[8, 16]), "do not fit"),
    (lambda c: c["crop_settings"].update(warp_mode="fancy"), "unknown crop setting"),
    (lambda c: c.pop("members"), "not a checkpoint of this package"),
])
def test_a_damaged_checkpoint_is_one_line(trained_run: Path, tmp_path: Path, change, message) -> None:
    ckpt = torch.load(trained_run / "model.pt", weights_only=True)
    change(ckpt)
    torch.save(ckpt, tmp_path / "bad.pt")
    code, _, err = run_main(evaluate, "--model", str(tmp_path / "bad.pt"), "--photos", str(tmp_path))
    assert code == 2 and message in error_line(err)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    code, _, err = run_main(evaluate, "--model", str(tmp_path / "junk.pt"), "--photos", str(tmp_path))
    assert code == 2 and "not a checkpoint" in error_line(err)
