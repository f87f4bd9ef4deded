"""Training speed: our tensor loop vs a plain DataLoader with per-sample transforms, and an MNIST epoch.

Both loops train the same LeNet-5 with the same augmentation on the real finger crops, in one run:
ours augments whole batches on tensors; the baseline is the common pattern of a ``TensorDataset``
whose transform runs per sample inside a ``DataLoader``. Then one epoch of the 60k MNIST set.

    python benchmarks/train_speed.py [--epochs 2] [--mnist ../shared/data/mnist]

Last line: ``samples_per_s=... baseline_samples_per_s=... ratio=... mnist_epoch_s=...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

from pipeline.data.load import load_dataset  # noqa: E402
from pipeline.data.public import load_mnist  # noqa: E402
from pipeline.lenet.model import build_model  # noqa: E402
from pipeline.training.augment import NO_AUGMENT, AugmentConfig, augment  # noqa: E402
from pipeline.training.loop import TrainConfig, to_float, train_model  # noqa: E402


class PerSample(Dataset):
    """The baseline: a transform per sample, as torchvision-style pipelines do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, cfg: AugmentConfig):
        self.images, self.labels, self.cfg = images, labels, cfg
        self.gen = torch.Generator().manual_seed(0)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = to_float(self.images[i:i + 1])
        return augment(x, self.cfg, self.gen)[0], self.labels[i]


def baseline_epoch(images: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig) -> None:
    model = build_model("lenet5", int(labels.max()) + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader = DataLoader(PerSample(images, labels, cfg.augment), batch_size=cfg.batch_size, shuffle=True)
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "data" / "fingers"))
    parser.add_argument("--mnist", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data = load_dataset(args.data)
    images, labels = data.images, data.labels
    empty = (images[:0], labels[:0])
    cfg = replace(TrainConfig(), epochs=args.epochs, patience=args.epochs)
    ours, base = [], []
    for _ in range(args.epochs):  # interleaved, so both see the same machine load
        model = build_model("lenet5", len(data.label_names))
        start = time.perf_counter()
        train_model(model, (images, labels), empty, replace(cfg, epochs=1))
        ours.append(len(labels) / (time.perf_counter() - start))
        start = time.perf_counter()
        baseline_epoch(images, labels, cfg)
        base.append(len(labels) / (time.perf_counter() - start))
    ours_s, base_s = max(ours), max(base)
    print(f"finger crops, {len(labels)} per epoch: ours {ours_s:.0f}/s, per-sample DataLoader {base_s:.0f}/s")
    mnist_s = float("nan")
    if Path(args.mnist).is_dir():
        mnist = load_mnist(args.mnist)
        train = mnist.groups == "train"
        x, y = mnist.images[torch.from_numpy(train)], mnist.labels[torch.from_numpy(train)]
        model = build_model("lenet5", 10)
        start = time.perf_counter()
        train_model(model, (x, y), empty, replace(TrainConfig(), epochs=1, augment=NO_AUGMENT))
        mnist_s = time.perf_counter() - start
        print(f"MNIST: one epoch of {len(y)} digits (batch {TrainConfig().batch_size}, no augmentation) in {mnist_s:.2f} s")
    else:
        print(f"MNIST skipped: {args.mnist} not found")
    print(f"samples_per_s={ours_s:.0f} baseline_samples_per_s={base_s:.0f} ratio={ours_s / base_s:.2f} mnist_epoch_s={mnist_s:.2f}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
