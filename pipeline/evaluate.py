"""``python -m pipeline.evaluate``: test a model on labelled photos, through MediaPipe and the crop stage.

    python -m pipeline.evaluate --model models/fingers.pt photos/

``photos/`` holds one subfolder per label (photos or videos inside). The last line is
``accuracy=<float> n=<int> no_hand=<int>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from pipeline.cli_options import add_hand_options, add_model_option
from pipeline.errors import UserError, run_command
from pipeline.lenet.checkpoint import load_model
from pipeline.training.evaluation import evaluate_folder
from pipeline.training.reports import plot_confusion


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.evaluate",
        description="Evaluate a gesture model on a folder whose subfolders are label names. Each photo goes "
                    "through MediaPipe and the crop stage with the model's own crop settings; with several hands "
                    "the largest is the subject. Photos without a hand are counted apart; folders whose label the "
                    "model does not know are reported and skipped.",
        epilog="example:\n  python -m pipeline.evaluate --model models/fingers.pt ../shared/data/images/gestures",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", metavar="DIR", help="DIR/LABEL/ holds photos (or videos) of each label")
    add_model_option(parser)
    parser.add_argument("--out", metavar="DIR", help="where to write confusion.png and predictions.csv (default: runs/evaluate/<DIR name>)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="detection processes (default: 1)")
    parser.add_argument("--stride", type=int, default=5, metavar="N", help="for videos: every N-th frame is a sample (default: 5)")
    add_hand_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import pandas as pd

    args = build_parser().parse_args(argv)
    model = load_model(args.model)
    result = evaluate_folder(model, args.folder, workers=args.workers,
                             hand_model=args.hand_model, num_hands=args.num_hands, stride=args.stride,
                             progress=not args.quiet)
    for label, n in result.skipped_labels.items():
        print(f"skipped {n} file(s) of label {label!r}: the model knows {', '.join(model.labels)}")
    if not len(result.true) and not sum(result.no_hand.values()):
        raise UserError(f"{args.folder}: no file has a label the model knows ({', '.join(model.labels)})")
    present = [i for i, n in enumerate(result.label_names) if (result.true == i).any() or result.no_hand.get(n)]
    table = result.table().iloc[present]
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    out = Path(args.out or Path("runs") / "evaluate" / Path(args.folder).resolve().name)
    out.mkdir(parents=True, exist_ok=True)
    names = [result.label_names[i] for i in present]
    matrix = result.matrix()[present][:, present]
    plot_confusion(matrix, names, out / "confusion.png", f"accuracy {result.accuracy:.3f} on {len(result.true)} hands")
    pd.DataFrame({"source": result.sources, "true": [result.label_names[i] for i in result.true],
                  "predicted": [result.label_names[i] for i in result.predicted],
                  "confidence": result.probabilities.max(1) if len(result.true) else []}
                 ).to_csv(out / "predictions.csv", index=False)
    unreadable = sum(result.unreadable.values())
    if unreadable:
        print(f"{unreadable} file(s) could not be read")
    print(f"wrote {out / 'confusion.png'} and {out / 'predictions.csv'}")
    print(f"accuracy={result.accuracy:.4f} n={len(result.true)} no_hand={sum(result.no_hand.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
