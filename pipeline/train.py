"""``python -m pipeline.train``: train a LeNet-5 variant on a dataset, split by session.

    python -m pipeline.train --data data/fingers --model lenet5 --out runs/fingers
    python -m pipeline.train --dataset mnist ../shared/data/mnist --model lenet5 --out runs/mnist --epochs 10
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Sequence

from .augment import NO_AUGMENT
from .data import load_dataset
from .datasets import load_mnist, load_signmnist
from .errors import UserError, run_command
from .models import VARIANTS
from .runs import make_split, train_run
from .training import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.train",
        description="Train a LeNet-5 variant. Train/validation/test are split by group (recording session or "
                    "person), never by frame; the best epoch is chosen on validation and the test split is used "
                    "once, at the end. Writes OUT/model.pt, metrics.csv, curves.png, confusion.png, per_class.csv; "
                    "the last printed line is the test accuracy.",
        epilog="examples:\n"
               "  python -m pipeline.train --data data/fingers --model lenet5 --out runs/fingers\n"
               "  python -m pipeline.train --dataset mnist ../shared/data/mnist --out runs/mnist --epochs 10\n"
               "  python -m pipeline.train --dataset signmnist ../shared/data/signmnist/sign_mnist_test.csv.gz --out runs/sign\n"
               f"models: {', '.join(VARIANTS)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="a dataset folder made by pipeline.collect")
    src.add_argument("--dataset", nargs=2, metavar=("KIND", "PATH"),
                     help="an imported dataset: 'mnist DIR' (idx files) or 'signmnist FILE' (Kaggle CSV)")
    parser.add_argument("--model", default="lenet5", choices=list(VARIANTS), metavar="NAME",
                        help=f"architecture (default: lenet5; one of {', '.join(VARIANTS)})")
    parser.add_argument("--out", required=True, metavar="DIR", help="run folder, e.g. runs/NAME (never overwritten)")
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"most epochs (default: {d.epochs})")
    parser.add_argument("--patience", type=int, default=d.patience, help=f"stop after this many epochs without a better validation score (default: {d.patience})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default: {d.batch_size})")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default: {d.lr})")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the split and of the first member (default: 0)")
    parser.add_argument("--ensemble", type=int, default=1, metavar="K", help="train K seeds and average them (default: 1)")
    parser.add_argument("--no-augment", action="store_true", help="train on the crops as they are")
    parser.add_argument("--val-groups", nargs="+", metavar="G", help="groups for validation (default: chosen by seed)")
    parser.add_argument("--test-groups", nargs="+", metavar="G", help="groups for test (default: chosen by seed)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.epochs < 1 or args.ensemble < 1 or args.batch_size < 1:
        raise UserError("--epochs, --ensemble and --batch-size must be at least 1")
    if args.data:
        data = load_dataset(args.data, progress=not args.quiet)
    else:
        kind, path = args.dataset
        loaders = {"mnist": load_mnist, "signmnist": load_signmnist}
        if kind not in loaders:
            raise UserError(f"--dataset {kind}: unknown kind; use mnist or signmnist")
        data = loaders[kind](path)
    config = replace(TrainConfig(), epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
                     lr=args.lr, seed=args.seed, **({"augment": NO_AUGMENT} if args.no_augment or not args.data else {}))
    split = make_split(data, args.val_groups, args.test_groups, seed=args.seed)
    train_run(data, args.model, args.out, config, members=args.ensemble, split=split, resume=args.resume,
              progress=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
