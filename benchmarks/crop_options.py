"""Which crop options classify other sessions best? LeNet-5 on the finger photos, held-out sessions.

Every option is measured on the very same hands: crops are re-made from the source photos with
the landmarks stored in ``data/fingers/index.csv`` (MediaPipe is not run again). Each setting is
trained on several session-grouped splits; the figure is the mean test accuracy over them.

    python benchmarks/crop_options.py [--splits 5] [--epochs 40]

Last line: ``plain=... aligned=... hull=... bones=... best=...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from pipeline.data.load import crops_from_sources, load_dataset  # noqa: E402
from pipeline.data.splits import split_by_group
from pipeline.lenet.model import build_model  # noqa: E402
from pipeline.preprocess.crops import CropSettings  # noqa: E402
from pipeline.training.loop import TrainConfig, accuracy, predict_logits, train_model  # noqa: E402

BASE = CropSettings()
SETTINGS = {
    "plain": replace(BASE, rotate=False, mirror="none", mask="none"),
    "aligned": replace(BASE, mask="none"),
    "hull": replace(BASE, mask="hull"),
    "bones": replace(BASE, mask="bones"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data" / "fingers"))
    parser.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "fingers"))
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--extra", action="store_true", help="also try margins and bone widths")
    parser.add_argument("--widths", type=float, nargs="*", default=[], help="bone widths to try (fraction of the palm)")
    parser.add_argument("--only-widths", action="store_true", help="skip the four main settings")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_dataset(args.data)
    labels, groups = data.labels, data.groups
    settings = {} if args.only_widths else dict(SETTINGS)
    for w in args.widths:
        settings[f"bones_width{w}"] = replace(BASE, bone_width=w)
    if args.extra:
        for m in (0.05, 0.25):
            settings[f"bones_margin{m}"] = replace(BASE, margin=m)
        for w in (0.25, 0.5):
            settings[f"bones_width{w}"] = replace(BASE, bone_width=w)
    splits = [split_by_group(groups, labels.numpy(), seed=s) for s in range(args.splits)]
    results = {}
    print(f"{'setting':<18}{'test acc (mean ± sd over splits)':>34}{'seconds':>10}")
    for name, s in settings.items():
        start = time.perf_counter()
        images = torch.from_numpy(crops_from_sources(data.index, args.photos, s)).unsqueeze(1)
        accs = []
        for k, (tr, va, te) in enumerate(splits):
            model = build_model("lenet5", len(data.label_names))
            cfg = TrainConfig(epochs=args.epochs, seed=k, patience=args.epochs)
            train_model(model, (images[tr], labels[tr]), (images[va], labels[va]), cfg)
            accs.append(accuracy(predict_logits(model, images[te]), labels[te]))
        results[name] = float(np.mean(accs))
        print(f"{name:<18}{np.mean(accs):>24.3f} ± {np.std(accs):.3f}{time.perf_counter() - start:>10.1f}")
    best = max(results, key=results.get)
    print(" ".join(f"{k}={v:.3f}" for k, v in results.items()) + f" best={best}")


if __name__ == "__main__":
    main()
