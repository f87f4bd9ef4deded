"""``python -m pipeline.explain``: figures, and bad input as one line."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2

import pipeline.explain as explain
from helpers import run_main
from pipeline.lenet.checkpoint import make_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"






def run_explain(*args: str) -> SimpleNamespace:
    """``explain`` in this process: its exit code, stdout and stderr."""
    code, out, err = run_main(explain, *args)
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_cli_writes_figures(sanity_models, fingers, tmp_path: Path) -> None:
    model = sanity_models["true"]
    ckpt = tmp_path / "model.pt"
    save_checkpoint(make_checkpoint([model], "lenet5", fingers.label_names, fingers.settings), ckpt)
    out = tmp_path / "figures"
    result = run_explain("--model", str(ckpt), "--data", str(FINGERS), "--out", str(out), "--per-class", "2",
                         "--mean-per-class", "12", "--smooth-samples", "4", "--quiet")
    assert result.returncode == 0, result.stderr
    names = {f"samples_{label}.png" for label in fingers.label_names} | {"class_means.png"}
    assert {p.name for p in out.iterdir()} == names
    for name in names:
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 200 and image.std() > 10
    per_class = 2 * len(fingers.label_names)  # seven labels: 8 figures, 14 samples
    assert result.stdout.strip().splitlines()[-1] == f"figures={len(names)} samples={per_class} out={out}"


def test_cli_bad_input_gives_one_line(tmp_path: Path) -> None:
    result = run_explain("--model", str(tmp_path / "missing.pt"), "--data", str(FINGERS))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing.pt" in lines[0]


def test_dataset_mnist_writes_digit_figures_with_the_shipped_digit_model(shared_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """``--dataset mnist`` finds MNIST beside the checkout and explains its test digits with the shipped digit model:
    one figure per digit and the class means, each with saliency, SmoothGrad, Grad-CAM and the demo's map."""
    mnist = shared_dir / "data" / "mnist"
    if not mnist.is_dir():
        import pytest

        pytest.skip(f"real data missing: {mnist}")
    monkeypatch.chdir(REPO)  # --dataset looks in ../shared/data, beside the checkout
    out = tmp_path / "digits"
    result = run_explain("--dataset", "mnist", "--out", str(out), "--per-class", "2", "--mean-per-class", "20",
                         "--smooth-samples", "4", "--quiet")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {f"samples_{d}.png" for d in range(10)} | {"class_means.png"}
    image = cv2.imread(str(out / "samples_7.png"))
    # crop, saliency, SmoothGrad, Grad-CAM conv1, conv2, the demo's map: six columns of about 1.7 in at 110 dpi
    assert image.shape[1] > 6 * 150 and image.std() > 10
    assert result.stdout.strip().splitlines()[-1] == f"figures=11 samples=20 out={out}"
    # Digits with the hand model, and Sign-MNIST without a model, are one line each.
    for args in (("--dataset", "mnist", "--model", str(REPO / "pipeline" / "assets" / "fingers.pt")),
                 ("--signmnist", str(mnist / "t10k-images-idx3-ubyte.gz"))):
        bad = run_explain(*args, "--out", str(tmp_path / "bad"))
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), bad.stderr
