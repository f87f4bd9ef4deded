"""``python -m pipeline.train``: train a LeNet-5 variant on a dataset, split by session.

    python -m pipeline.train --data data/fingers --model lenet5 --out runs/fingers
    python -m pipeline.train --mnist ../shared/data/mnist --model lenet5 --out runs/mnist --epochs 10
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from pipeline.cli_options import add_data_options, add_fill_option, at_least, augment_item, command_name, data_spec_from, positive
from pipeline.data.spec import fill_settings, load_data
from pipeline.errors import run_command
from pipeline.lenet.model import VARIANTS
from pipeline.training.augment import NO_AUGMENT, AugmentConfig
from pipeline.training.loop import TrainConfig
from pipeline.training.run import check_run_folder, make_split, train_run


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    parser = argparse.ArgumentParser(
        prog=command_name("train"),
        description="Train a LeNet-5 variant. Train/validation/test are split by group (recording session or "
                    "person), never by frame; the best epoch is chosen on validation and the test split is used "
                    "once, at the end. Writes OUT/model.pt, metrics.csv, curves.png, confusion.png, per_class.csv; "
                    "the last printed line is the test accuracy.",
        epilog="examples:\n"
               "  python -m pipeline.train --data data/fingers --model lenet5 --out runs/fingers\n"
               "  python -m pipeline.train --data data/fingers --data data/sign_digits --out runs/two-sets\n"
               "  python -m pipeline.train --data data/fingers --fill mask --out runs/silhouettes\n"
               "  python -m pipeline.train --data data/fingers --fill depth --augment pose_tilt_deg=0 --out runs/no-tilt\n"
               "  python -m pipeline.train --mnist ../shared/data/mnist --out runs/mnist --epochs 10\n"
               "  python -m pipeline.train --signmnist ../shared/data/signmnist/sign_mnist_test.csv.gz --out runs/sign\n"
               f"models: {', '.join(VARIANTS)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_options(parser)
    parser.add_argument("--model", default="lenet5", choices=list(VARIANTS), metavar="NAME",
                        help=f"architecture (default: lenet5; one of {', '.join(VARIANTS)})")
    parser.add_argument("--out", required=True, metavar="DIR", help="run folder, e.g. runs/NAME (never overwritten)")
    parser.add_argument("--epochs", type=at_least(1), default=d.epochs, metavar="N", help=f"most epochs (default: {d.epochs})")
    parser.add_argument("--patience", type=at_least(1), default=d.patience, metavar="N",
                        help=f"stop after N epochs without a better validation score (default: {d.patience})")
    parser.add_argument("--batch-size", type=at_least(1), default=d.batch_size, metavar="N",
                        help=f"samples per optimisation step (default: {d.batch_size})")
    parser.add_argument("--lr", type=positive, default=d.lr, metavar="RATE", help=f"AdamW learning rate (default: {d.lr})")
    parser.add_argument("--weight-decay", type=at_least(0.0, float), default=d.weight_decay, metavar="W",
                        help=f"AdamW's decoupled weight decay (default: {d.weight_decay:g})")
    parser.add_argument("--seed", type=int, default=d.seed, metavar="S", help="seed of the split and of the first member (default: 0)")
    parser.add_argument("--ensemble", type=at_least(1), default=1, metavar="K", help="train K seeds and average them (default: 1)")
    parser.add_argument("--no-augment", action="store_true", help="train on the crops as they are")
    parser.add_argument("--augment", action="append", type=augment_item, default=[], metavar="KEY=VALUE",
                        help="change one augmentation setting (repeat for several), e.g. rotate_deg=5, pose_copies=0, "
                             "style_poses=0.07: the fields of pipeline.training.augment.AugmentConfig, whose comments "
                             "say what each does and whose defaults are the shipped recipe's, but for style_poses, which the "
                             "shipped model sets to 0.07 (models/MODEL_CARD.md names the ones tried)")
    add_fill_option(parser.add_argument_group("crop settings (the datasets' crops are re-rendered to them)"), None)
    parser.add_argument("--val-groups", nargs="+", metavar="G", help="groups for validation (default: chosen by seed)")
    parser.add_argument("--test-groups", nargs="+", metavar="G", help="groups for test (default: chosen by seed)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out (the same command, "
                        "with --resume: data, model, labels, crop settings and recipe must agree)")
    parser.add_argument("--force", action="store_true", help="replace a finished run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.augment and args.no_augment:
        parser.error("--augment changes what --no-augment turns off; give one of them")
    settings = dict(args.augment)  # the last of a key wins
    replace(AugmentConfig(), **settings)  # a setting out of its range is one line now, before the data loads
    check_run_folder(Path(args.out), args.resume, args.force)  # before the data loads, which may take a while
    spec = data_spec_from(args)
    data = load_data(spec, fill_settings(spec, args.fill), progress=not args.quiet)
    config = replace(TrainConfig(), epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, lr=args.lr,
                     weight_decay=args.weight_decay, seed=args.seed,
                     **({"augment": NO_AUGMENT} if args.no_augment or not spec.hands else {}))
    config = replace(config, augment=replace(config.augment, **settings))
    split = make_split(data, args.val_groups, args.test_groups, seed=args.seed)
    try:
        train_run(data, args.model, args.out, config, members=args.ensemble, split=split, resume=args.resume,
                  progress=not args.quiet, data_spec=spec, force=args.force)
    except KeyboardInterrupt:
        print(f"interrupted: {args.out} keeps every finished epoch; run the same command with --resume to continue",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
