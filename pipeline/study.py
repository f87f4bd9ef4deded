"""``python -m pipeline.study``: every LeNet-5 variant x several seeds on one dataset, one recipe.

    python -m pipeline.study --data data/fingers --out runs/study-fingers
    python -m pipeline.study --mnist ../shared/data/mnist --out runs/study-mnist --epochs 4
    python -m pipeline.study --quick            # a small grid on data/fingers, about a minute
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from pipeline.cli_options import add_data_options, add_engine_options, at_least, data_spec_from, engine_from
from pipeline.errors import run_command
from pipeline.lenet.model import VARIANTS
from pipeline.training.architecture_study import default_config, run_study, summary_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.study",
        description="Train every registered LeNet-5 variant with several seeds on one dataset, with one shared "
                    "recipe and one split, and write OUT/results.csv (one row per variant and seed), summary.md "
                    "(mean ± sd per variant) and two plots. Rerunning the same command continues an interrupted "
                    "study: finished variant/seed pairs are not trained again.",
        epilog="examples:\n"
               "  python -m pipeline.study --data data/fingers --out runs/study-fingers\n"
               "  python -m pipeline.study --mnist ../shared/data/mnist --out runs/study-mnist --epochs 4\n"
               "  python -m pipeline.study --signmnist ../shared/data/signmnist/sign_mnist_test.csv.gz --quick\n"
               f"variants: {', '.join(VARIANTS)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_options(parser, default_data="data/fingers")
    parser.add_argument("--out", metavar="DIR", help="study folder (default: runs/study-NAME[-quick])")
    parser.add_argument("--quick", action="store_true",
                        help="a small grid (3 variants x 2 seeds, few epochs, a subset of MNIST/Sign-MNIST)")
    parser.add_argument("--variants", nargs="+", metavar="V", help="variants to train (default: all, or 3 with --quick)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="S", help="seeds (default: 0 1 2, or 0 1 with --quick)")
    parser.add_argument("--epochs", type=at_least(1), metavar="N", help="most epochs per run (default: per kind of data)")
    parser.add_argument("--patience", type=at_least(1), metavar="N",
                        help="early stop after N epochs without a better validation score")
    parser.add_argument("--batch-size", type=at_least(1), metavar="N", help="batch size (default: per kind of data)")
    parser.add_argument("--limit", type=at_least(10), metavar="N", help="use a seeded random subset of N samples")
    parser.add_argument("--split-seed", type=int, default=0, metavar="S", help="seed of the split shared by every run (default: 0)")
    parser.add_argument("--remeasure", action="store_true",
                        help="time the latency of every finished run again (e.g. once a shared machine is quiet)")
    add_engine_options(parser, "training (one cell per CPU, each on one thread)", workers=False)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    engine = engine_from(args)
    config = default_config(data_spec_from(args), args.quick)
    train = config.train
    for name in ("epochs", "patience", "batch_size"):
        if getattr(args, name) is not None:
            train = replace(train, **{name: getattr(args, name)})
    config = replace(config, train=train, split_seed=args.split_seed,
                     **({"variants": tuple(args.variants)} if args.variants else {}),
                     **({"seeds": tuple(args.seeds)} if args.seeds else {}),
                     **({"limit": args.limit} if args.limit is not None else {}))
    out = Path(args.out or f"runs/study-{config.name}{'-quick' if args.quick else ''}")
    command = "python -m pipeline.study " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    result = run_study(config, out, progress=not args.quiet, command=command, remeasure=args.remeasure, engine=engine)
    if not result.summary.empty:
        print(summary_table(result.summary, config.data.kind))
        best = result.summary["test_mean"].idxmax()
        print(f"wrote {out}/results.csv, summary.md, accuracy_vs_parameters.png, accuracy_per_variant.png")
        print(f"trained={result.trained} skipped={result.skipped} best={best} "
              f"test_acc={result.summary.loc[best, 'test_mean']:.4f}")
    for line in result.failed:
        print(f"failed twice: {line}; rerun the same command to try it again", file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(run_command(main))
