"""Shared fixtures: the real data in ``../shared/data`` and one IMAGE-mode hand detector per session.

Tests that need real data skip with a clear reason when the shared folder is absent, so the
suite still runs (and says what it skipped) on a checkout without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, SHARED, require

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported


#: A few real photos used across the tests (all from ``fingers/5``: open palms, fingers spread).
OPEN_PALM = "5/2_pic00004.jpg"  # one right hand, fingers spread, light wall behind
TWO_PALMS = "5/996_pic00037.jpg"  # two open hands, a right and a left
LEFT_PALM = "5/2_pic00094.jpg"  # one left hand, large in the frame


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require(SHARED, "shared folder")


@pytest.fixture(scope="session")
def data_dir(shared_dir: Path) -> Path:
    return require(shared_dir / "data", "shared data")


@pytest.fixture(scope="session")
def fingers_dir(data_dir: Path) -> Path:
    path = require(data_dir / "fingers", "fingers photos")
    for label in "012345":
        require(path / label, f"fingers/{label}")
    return path


@pytest.fixture(scope="session")
def videos_dir(data_dir: Path) -> Path:
    return require(data_dir / "videos", "videos")


@pytest.fixture(scope="session")
def images_dir(data_dir: Path) -> Path:
    return require(data_dir / "images", "images")


@pytest.fixture(scope="session")
def detector():
    """One IMAGE-mode HandDetector (2 hands) for the whole session, closed at the end."""
    from pipeline.preprocess.hands import HandDetector

    with HandDetector(num_hands=2) as d:
        yield d


@dataclass(frozen=True)
class Detected:
    """A real photo and the hands MediaPipe found in it."""

    path: Path
    image: np.ndarray
    hands: list

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


@pytest.fixture(scope="session")
def detect(fingers_dir: Path, detector):
    """``detect("5/2_pic00004.jpg")``: the photo and its hands, detected once per session."""
    from pipeline.preprocess.sources import read_image

    cache: dict[str, Detected] = {}

    def run(name: str) -> Detected:
        if name not in cache:
            path = require(fingers_dir / name, f"photo fingers/{name}")
            image = read_image(path)
            cache[name] = Detected(path, image, detector.detect(image))
        return cache[name]

    return run


@pytest.fixture(scope="session")
def open_palm(detect) -> Detected:
    found = detect(OPEN_PALM)
    assert len(found.hands) == 1, f"{OPEN_PALM}: expected one hand, MediaPipe found {len(found.hands)}"
    return found


@pytest.fixture(scope="session")
def two_palms(detect) -> Detected:
    found = detect(TWO_PALMS)
    assert len(found.hands) == 2, f"{TWO_PALMS}: expected two hands, MediaPipe found {len(found.hands)}"
    return found


@pytest.fixture(scope="session")
def left_palm(detect) -> Detected:
    found = detect(LEFT_PALM)
    assert [h.handedness for h in found.hands] == ["Left"], f"{LEFT_PALM}: expected one left hand"
    return found


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray of 2 CPUs for the whole session (the Ray tests share it), shut down at the end.

    Skips without Ray. The engine uses a session that is already open and leaves it open.
    """
    pytest.importorskip("ray", reason="Ray is not installed; pip install -e \".[ray]\" runs the Ray tests")
    from pipeline.engines.ray import ray_session

    with ray_session(cpus=2) as ray:
        yield ray


# ---------------------------------------------------------------------------------------------
# A real window: a private X display, and waiting on a program's effects


@pytest.fixture
def xvfb():
    """A private X display; yields its DISPLAY value. Skips without Xvfb and xdotool."""
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: the window test needs them (apt-get install xvfb xdotool)")
    # -displayfd: Xvfb picks a free display number and writes it to us once it accepts clients.
    server = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        number = server.stdout.readline().strip()
        if not number.isdigit():
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# Models trained once per session, on the committed finger crops


@pytest.fixture(scope="session")
def fingers():
    """``data/fingers``, the committed dataset, in memory."""
    from pipeline.data.load import load_dataset

    return load_dataset(REPO / "data" / "fingers")


@pytest.fixture(scope="session")
def trained_run(fingers, tmp_path_factory) -> Path:
    """A run folder: ``lenet5``, 8 epochs on ``data/fingers`` split by session (about 10 s)."""
    from dataclasses import replace

    from pipeline.training.loop import TrainConfig
    from pipeline.training.run import train_run

    out = tmp_path_factory.mktemp("run") / "fingers"
    train_run(fingers, "lenet5", out, replace(TrainConfig(), epochs=8), progress=False, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def sanity_models(fingers) -> dict:
    """LeNet-5s for the explainers' sanity checks, on a session-grouped split of the real crops (about 10 s).

    ``true``, ``true2``: true labels, seeds 0 and 1, twelve epochs without augmentation, label
    smoothing or weight decay (they fit quickly). ``permuted``: labels permuted over the whole set,
    seed 2 (a third initialisation, so that only the labels set it apart from ``true2``), trained
    longer (20 epochs, lr 3e-3, batch 32): after 12 epochs a random-label model has barely left its
    initialisation, and its maps are those of a random network of that seed. It is selected on its
    own training data, as a held-out split of random labels would pick an arbitrary epoch.
    ``x``, ``y``: the test split's crops and labels.
    """
    from dataclasses import replace

    import torch

    from pipeline.data.splits import split_by_group
    from pipeline.lenet.model import build_model, predict_logits, to_float
    from pipeline.training.loop import NO_AUGMENT, TrainConfig, train_model

    train, val, test = split_by_group(fingers.groups, fingers.labels.numpy(), seed=0)
    config = TrainConfig(epochs=12, patience=100, weight_decay=0.0, label_smoothing=0.0, augment=NO_AUGMENT)
    perm = fingers.labels[torch.randperm(len(fingers), generator=torch.Generator().manual_seed(0))]
    models = {}
    for name, labels, check, cfg in (("true", fingers.labels, val, replace(config, seed=0)),
                                     ("true2", fingers.labels, val, replace(config, seed=1)),
                                     ("permuted", perm, train, replace(config, seed=2, epochs=20, lr=3e-3, batch_size=32))):
        torch.manual_seed(cfg.seed)  # the initial weights: train_model seeds only what comes after
        model = build_model("lenet5", len(fingers.label_names))
        history, _ = train_model(model, (fingers.images[train], labels[train]), (fingers.images[check], labels[check]), cfg)
        models[name] = model.eval()
        models[f"{name}_train_acc"] = max(r.train_acc for r in history)
    x, y = to_float(fingers.images[test]), fingers.labels[test]
    return {**models, "x": x, "y": y, "test_acc": float((predict_logits(models["true"], x).argmax(1) == y).float().mean())}


@pytest.fixture(scope="session")
def bn_checkpoints(fingers, tmp_path_factory) -> dict[str, Path]:
    """A two-member ``lenet5-bn`` ensemble trained briefly (batch norm must export in eval mode), and its first member alone."""
    from dataclasses import replace

    from pipeline.lenet.checkpoint import read_checkpoint, save_checkpoint
    from pipeline.training.loop import TrainConfig
    from pipeline.training.run import train_run

    root = tmp_path_factory.mktemp("export")
    keep = np.flatnonzero(np.isin(fingers.groups, ["2", "996", "55", "5", "3_1528505750.77"]))
    train_run(fingers.subset(keep), "lenet5-bn", root / "run", replace(TrainConfig(), epochs=2), members=2,
              progress=False, log=lambda *_: None)
    ckpt = read_checkpoint(root / "run" / "model.pt")
    single = root / "single.pt"
    save_checkpoint({**ckpt, "members": ckpt["members"][:1]}, single)
    return {"ensemble": root / "run" / "model.pt", "single": single}


@pytest.fixture(scope="session")
def samples(open_palm, two_palms, left_palm):
    """Four real hands from three photos, cropped with the default settings: (photo, hand index, hand, crop)."""
    from pipeline.preprocess.crops import CropSettings, crop_hand

    out = [(photo, i, hand, crop_hand(photo.image, hand, CropSettings()))
           for photo in (open_palm, two_palms, left_palm) for i, hand in enumerate(photo.hands)]
    assert len(out) == 4
    return out
