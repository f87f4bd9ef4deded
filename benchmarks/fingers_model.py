"""How well does a finger model do on sessions it never saw, upright and upside down?

For each of several session-grouped splits of ``data/fingers``: train (``--ensemble K`` seeds),
then run the *whole path* (MediaPipe -> crop -> model) on the held-out test photos, as they are and
turned 180 degrees, and on the multi-person ``four`` photos of ``../shared/data/images/gestures``.

    python benchmarks/fingers_model.py [--splits 3] [--ensemble 1] [--epochs 60]

Last line: ``heldout=... heldout_sd=... rot180=... rot180_sd=... four=... splits=... ensemble=...``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from pipeline.data.load import load_dataset  # noqa: E402
from pipeline.lenet.checkpoint import load_model  # noqa: E402
from pipeline.training.evaluation import evaluate_folder  # noqa: E402
from pipeline.training.loop import TrainConfig  # noqa: E402
from pipeline.training.run import make_split, train_run  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def test_photos(data, idx: np.ndarray, photos: Path, out: Path, rotate: int | None) -> Path:
    """Copy the test split's source photos into out/LABEL/, optionally turned (cv2 rotate code)."""
    rows = data.index.iloc[idx].drop_duplicates("source")
    for source, label in zip(rows["source"], rows["label"]):
        image = cv2.imread(str(photos / source))
        if rotate is not None:
            image = cv2.rotate(image, rotate)
        target = out / label / Path(source).name
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), image)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data" / "fingers"))
    parser.add_argument("--photos", default=str(SHARED / "fingers"))
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--model", default="lenet5")
    args = parser.parse_args()
    data = load_dataset(args.data)
    label_names = data.label_names
    up, down, four = [], [], []
    print(f"{'split':<6}{'crops':>8}{'photos':>8}{'rot180':>8}{'four':>8}")
    for s in range(args.splits):
        split = make_split(data, seed=s)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            run = train_run(data, args.model, tmp / "run", replace(TrainConfig(), epochs=args.epochs, seed=s),
                            members=args.ensemble, split=split, progress=False, log=lambda *_: None)
            model, ckpt = load_model(tmp / "run" / "model.pt")
            upright = evaluate_folder(model, label_names, ckpt["crop"],
                                      test_photos(data, split.test, Path(args.photos), tmp / "up", None), progress=False)
            turned = evaluate_folder(model, label_names, ckpt["crop"],
                                     test_photos(data, split.test, Path(args.photos), tmp / "down", cv2.ROTATE_180),
                                     progress=False)
            others = evaluate_folder(model, label_names, ckpt["crop"], SHARED / "images" / "gestures", progress=False)
        up.append(upright.accuracy)
        down.append(turned.accuracy)
        four.append(others.accuracy)
        print(f"{s:<6}{run.test_accuracy:>8.3f}{upright.accuracy:>8.3f}{turned.accuracy:>8.3f}{others.accuracy:>8.3f}"
              f"   (photos {len(upright.true)}, rot180 found {len(turned.true)}, four {len(others.true)})")
    print(f"heldout={np.mean(up):.4f} heldout_sd={np.std(up):.4f} rot180={np.mean(down):.4f} rot180_sd={np.std(down):.4f} "
          f"four={np.mean(four):.4f} splits={args.splits} ensemble={args.ensemble}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
