"""``python -m pipeline.study``: every LeNet-5 variant x several seeds on one dataset, one recipe.

    python -m pipeline.study --dataset fingers --out runs/study-fingers
    python -m pipeline.study --dataset mnist --out runs/study-mnist --epochs 4
    python -m pipeline.study --dataset fingers --quick            # a small grid, about a minute
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from typing import Sequence

from .errors import UserError, run_command
from .models import VARIANTS
from .studies import DATASETS, DEFAULT_PATHS, default_config, run_study, summary_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.study",
        description="Train every registered LeNet-5 variant with several seeds on one dataset, with one shared "
                    "recipe and one split, and write OUT/results.csv (one row per variant and seed), summary.md "
                    "(mean ± sd per variant) and two plots. Rerunning the same command continues an interrupted "
                    "study: finished variant/seed pairs are not trained again.",
        epilog="examples:\n"
               "  python -m pipeline.study --dataset fingers --out runs/study-fingers\n"
               "  python -m pipeline.study --dataset mnist --out runs/study-mnist --epochs 4\n"
               "  python -m pipeline.study --dataset signmnist --quick\n"
               "datasets and their default paths:\n" + "".join(f"  {k}: {v}\n" for k, v in DEFAULT_PATHS.items()) +
               f"variants: {', '.join(VARIANTS)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, metavar="NAME", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--path", metavar="PATH", help="where the dataset is (default: see below)")
    parser.add_argument("--out", metavar="DIR", help="study folder (default: runs/study-DATASET[-quick])")
    parser.add_argument("--quick", action="store_true",
                        help="a small grid (3 variants x 2 seeds, few epochs, a subset of MNIST/Sign-MNIST)")
    parser.add_argument("--variants", nargs="+", metavar="V", help="variants to train (default: all, or 3 with --quick)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="S", help="seeds (default: 0 1 2, or 0 1 with --quick)")
    parser.add_argument("--epochs", type=int, help="most epochs per run (default: per dataset)")
    parser.add_argument("--patience", type=int, help="early stop after this many epochs without a better validation score")
    parser.add_argument("--batch-size", type=int, help="batch size (default: per dataset)")
    parser.add_argument("--limit", type=int, metavar="N", help="use a seeded random subset of N samples")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the split shared by every run (default: 0)")
    parser.add_argument("--remeasure", action="store_true",
                        help="time the latency of every finished run again (e.g. once a shared machine is quiet)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dataset not in DATASETS:
        raise UserError(f"--dataset {args.dataset}: unknown; choose one of {', '.join(DATASETS)}")
    for name in ("epochs", "patience", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    config = default_config(args.dataset, args.quick, args.path)
    train = config.train
    for name in ("epochs", "patience", "batch_size"):
        if getattr(args, name) is not None:
            train = replace(train, **{name: getattr(args, name)})
    config = replace(config, train=train, split_seed=args.split_seed,
                     **({"variants": tuple(args.variants)} if args.variants else {}),
                     **({"seeds": tuple(args.seeds)} if args.seeds else {}),
                     **({"limit": args.limit} if args.limit is not None else {}))
    out = args.out or f"runs/study-{args.dataset}{'-quick' if args.quick else ''}"
    command = "python -m pipeline.study " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    result = run_study(config, out, progress=not args.quiet, command=command, remeasure=args.remeasure)
    if not result.summary.empty:
        print(summary_table(result.summary, args.dataset))
        best = result.summary["test_mean"].idxmax()
        print(f"wrote {out}/results.csv, summary.md, accuracy_vs_parameters.png, accuracy_per_variant.png")
        print(f"trained={result.trained} skipped={result.skipped} best={best} "
              f"test_acc={result.summary.loc[best, 'test_mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
