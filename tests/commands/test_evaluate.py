"""``python -m pipeline.evaluate`` through the whole path on real photos: answers, none, files written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import pipeline.evaluate as evaluate
from helpers import error_line, run_main


@pytest.fixture(scope="module")
def photos(fingers_dir: Path, tmp_path_factory) -> Path:
    """3 photos each of one and five, 3 fists filed as none (hands to answer with no gesture), 2 of an unknown label."""
    folder = tmp_path_factory.mktemp("photos")
    for label, source, n in (("one", "1", 3), ("five", "5", 3), ("none", "0", 3), ("rock", "5", 2)):
        (folder / label).mkdir(parents=True)
        for photo in sorted((fingers_dir / source).glob("996_pic*.jpg"))[:n]:
            shutil.copy(photo, folder / label / photo.name)
    import cv2
    import numpy as np

    cv2.imwrite(str(folder / "five" / "wall.png"), np.full((240, 320, 3), 200, np.uint8))  # a photo with no hand
    return folder


def last_fields(out: str) -> dict[str, float]:
    return {k: float(v) for k, v in (kv.split("=") for kv in out.strip().splitlines()[-1].split())}


def test_answers_and_files(trained_run: Path, photos: Path, tmp_path: Path) -> None:
    code, out, err = run_main(evaluate, "--model", str(trained_run / "model.pt"), "--photos", str(photos), "--quiet",
                              "--out", str(tmp_path / "eval"))
    assert code == 0, err
    assert "skipped 2 file(s) of label 'rock'" in out
    fields = last_fields(out)
    assert set(fields) == {"accuracy", "n", "no_hand", "none_precision", "none_recall", "false_positive_rate"}
    table = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    found = table[table["predicted"] != "no_hand"]
    assert len(found) == fields["n"] and (table["predicted"] == "no_hand").sum() == fields["no_hand"]
    assert fields["accuracy"] == pytest.approx((found["true"] == found["predicted"]).mean(), abs=1e-4)
    assert set(found["true"]) == {"one", "five", "none"}
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 0


def test_threshold_one_answers_none_unless_the_top_probability_is_one(trained_run: Path, photos: Path,
                                                                      tmp_path: Path) -> None:
    """A hand whose top probability is below the threshold is answered none; at 1 only a probability that rounds
    to 1 in float32 keeps its gesture (a confident model reaches it), and the scores follow from the table."""
    code, out, err = run_main(evaluate, "--model", str(trained_run / "model.pt"), "--photos", str(photos), "--quiet",
                              "--threshold", "1", "--out", str(tmp_path / "eval"))
    assert code == 0, err
    fields = last_fields(out)
    table = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    found = table[table["predicted"] != "no_hand"]
    unsure = found["confidence"] < 1
    assert unsure.sum() >= 2 and (found.loc[unsure, "predicted"] == "none").all()
    assert (found.loc[~unsure, "predicted"] != "none").all()  # the model never answers its none class at 1.0 here
    said, true = found["predicted"] == "none", found["true"] == "none"
    assert fields["accuracy"] == pytest.approx((found["true"] == found["predicted"]).mean(), abs=1e-4)
    assert fields["none_recall"] == pytest.approx((said & true).sum() / true.sum(), abs=1e-4)
    assert fields["none_precision"] == pytest.approx((said & true).sum() / said.sum(), abs=1e-4)
    assert fields["false_positive_rate"] == pytest.approx((~said & true).sum() / true.sum(), abs=1e-4)


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    code, _, err = run_main(evaluate, "--photos", str(tmp_path / "nowhere"), "--quiet")
    line = error_line(err)
    assert code == 2 and "nowhere: no such folder" in line and "--from" not in line  # evaluate has no --from


def test_the_default_out_is_named_after_the_model_and_never_replaced(trained_run: Path, photos: Path, tmp_path: Path,
                                                                     monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = str(trained_run / "model.pt")
    assert run_main(evaluate, "--model", model, "--photos", str(photos), "--quiet")[0] == 0
    out = tmp_path / "runs" / "evaluate" / f"{trained_run.name}-{photos.name}"  # named after the run folder
    before = (out / "predictions.csv").read_bytes()
    code, _, err = run_main(evaluate, "--model", model, "--photos", str(photos), "--quiet")
    assert code == 2 and "pass --force" in error_line(err) and (out / "predictions.csv").read_bytes() == before
    assert run_main(evaluate, "--model", model, "--photos", str(photos), "--quiet", "--force")[0] == 0


def test_folders_the_model_does_not_know_or_photos_without_hands_are_one_line_or_counted(fingers_dir: Path,
                                                                                          tmp_path: Path) -> None:
    import cv2
    import numpy as np

    unknown = tmp_path / "unknown"
    for label in ("0", "5"):
        (unknown / label).mkdir(parents=True)
        shutil.copy(next((fingers_dir / label).glob("*.jpg")), unknown / label / "a.jpg")
    code, _, err = run_main(evaluate, "--photos", str(unknown), "--quiet", "--out", str(tmp_path / "o1"))
    assert code == 2 and "no folder has a label the model knows" in error_line(err) and "--map" in error_line(err)
    assert not (tmp_path / "o1").exists()
    code, out, err = run_main(evaluate, "--photos", str(unknown), "--map", "0=fist", "--map", "5=five", "--quiet",
                              "--out", str(tmp_path / "o2"))
    assert code == 0 and "n=2" in out.strip().splitlines()[-1], err
    walls = tmp_path / "walls"
    (walls / "fist").mkdir(parents=True)
    cv2.imwrite(str(walls / "fist" / "wall.png"), np.full((200, 200, 3), 180, np.uint8))
    code, out, err = run_main(evaluate, "--photos", str(walls), "--quiet", "--out", str(tmp_path / "o3"))
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("accuracy=nan n=0 no_hand=1")


def test_on_ray_the_same_answers_as_here(ray_local, photos: Path, tmp_path: Path) -> None:
    """``--engine ray`` detects on Ray actors (the shared local Ray): the same predictions, line for line."""
    outputs = {}
    for engine in ("local", "ray"):
        code, out, err = run_main(evaluate, "--photos", str(photos), "--quiet", "--engine", engine, "--workers", "2",
                                  "--out", str(tmp_path / engine))
        assert code == 0, err
        outputs[engine] = out.strip().splitlines()[-1], (tmp_path / engine / "predictions.csv").read_text()
    assert outputs["ray"] == outputs["local"]
    assert last_fields(outputs["ray"][0])["n"] >= 8
