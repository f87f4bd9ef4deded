"""``python -m pipeline.study``: every LeNet-5 variant x seeds x group splits on one dataset, one recipe.

    python -m pipeline.study --data data/fingers --out runs/study-fingers   # 15 variants + landmark MLP, 5 splits x 3 seeds
    python -m pipeline.study --mnist ../shared/data/mnist --out runs/study-mnist --epochs 4
    python -m pipeline.study --quick            # a small grid on data/fingers, a few minutes
    python -m pipeline.study --data data/fingers --data data/homes --fill depth   # crops drawn from the landmarks
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from pipeline.cli_options import add_data_options, add_engine_options, add_fill_option, at_least, command_name, data_spec_from, engine_from
from pipeline.data.spec import changed_fill
from pipeline.errors import run_command
from pipeline.lenet.model import VARIANTS
from pipeline.training.architecture_study import MLP, REFERENCE, default_config, paired_table, run_study, summary_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("study"),
        description="Train every registered LeNet-5 variant (and, on hand data, the landmark-MLP baseline) on "
                    "several group splits with several seeds, one shared recipe, and write OUT/results.csv (one row "
                    f"per variant, split and seed), summary.md (each variant paired with {REFERENCE}: mean difference "
                    "with a bootstrap interval, Wilcoxon and Holm p-values; mean ± sd and cost per variant) and three "
                    "plots. Rerunning the same command continues an interrupted study: finished cells are not trained "
                    "again, and variants, seeds and splits may be added.",
        epilog="examples:\n"
               "  python -m pipeline.study --data data/fingers --out runs/study-fingers\n"
               "  python -m pipeline.study --data data/fingers --data data/homes --fill depth --quick\n"
               "  python -m pipeline.study --mnist ../shared/data/mnist --out runs/study-mnist --epochs 4\n"
               "  python -m pipeline.study --signmnist ../shared/data/signmnist/sign_mnist_test.csv.gz --quick\n"
               f"variants: {', '.join(VARIANTS)}, {MLP} (hand data)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_options(parser, default_data="data/fingers")
    add_fill_option(parser.add_argument_group("crop settings (the datasets' crops are re-rendered to them)"), None)
    parser.add_argument("--out", metavar="DIR", help="study folder (default: runs/study-NAME[-FILL][-quick])")
    parser.add_argument("--quick", action="store_true",
                        help="a small grid (3 variants x 2 seeds x 1 split, few epochs, a subset of MNIST/Sign-MNIST)")
    parser.add_argument("--variants", nargs="+", metavar="V",
                        help=f"variants to train (default: all, and {MLP} on hand data; 3 with --quick)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="S", help="seeds (default: 0 1 2, or 0 1 with --quick)")
    parser.add_argument("--splits", nargs="+", type=int, metavar="K",
                        help="group splits, by seed (default: 0 1 2 3 4 on hand data; 0 with --quick and on MNIST/Sign-MNIST)")
    parser.add_argument("--epochs", type=at_least(1), metavar="N", help="most epochs per run (default: per kind of data)")
    parser.add_argument("--patience", type=at_least(1), metavar="N",
                        help="early stop after N epochs without a better validation score")
    parser.add_argument("--batch-size", type=at_least(1), metavar="N", help="batch size (default: per kind of data)")
    parser.add_argument("--limit", type=at_least(10), metavar="N", help="use a seeded random subset of N samples")
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
    config = replace(config, train=train,
                     **({"variants": tuple(args.variants)} if args.variants else {}),
                     **({"seeds": tuple(args.seeds)} if args.seeds else {}),
                     **({"splits": tuple(args.splits)} if args.splits else {}),
                     **({"limit": args.limit} if args.limit is not None else {}))
    config = replace(config, fill=changed_fill(config.data, args.fill))
    out = Path(args.out or f"runs/study-{config.name}{f'-{config.fill}' if config.fill else ''}{'-quick' if args.quick else ''}")
    command = "python -m pipeline.study " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    result = run_study(config, out, progress=not args.quiet, command=command, remeasure=args.remeasure, engine=engine)
    if not result.summary.empty:
        digits = 2 if config.data.kind == "mnist" else 1
        print(summary_table(result.summary, config.data.kind))
        print()
        print(paired_table(result.comparison, digits=digits))
        best = result.summary["test_mean"].idxmax()
        print(f"wrote {out}/results.csv, summary.md, accuracy_vs_parameters.png, accuracy_per_variant.png, "
              "paired_differences.png")
        print(f"trained={result.trained} skipped={result.skipped} best={best} "
              f"test_acc={result.summary.loc[best, 'test_mean']:.4f}")
    for line in result.failed:
        print(f"failed twice: {line}; rerun the same command to try it again", file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(run_command(main))
