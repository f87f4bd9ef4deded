"""``python -m pipeline.evaluate``: test a model on labelled photos, through MediaPipe and the crop stage.

    python -m pipeline.evaluate --photos photos/
    python -m pipeline.evaluate --model runs/mine/model.pt --photos photos/

``photos/`` holds one subfolder per label (photos or videos inside; ``none/`` for hands that should
get no gesture). The last line is ``accuracy=<float> n=<int> no_hand=<int>`` (and, with a ``none/``
folder, ``none_precision=… none_recall=… false_positive_rate=…``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.cli_options import add_engine_options, add_hand_options, add_model_option, at_least, command_name, engine_from, probability
from pipeline.errors import UserError, run_command
from pipeline.files import atomic_write_text, check_writable, refuse_existing
from pipeline.labels import NONE_LABEL
from pipeline.lenet.checkpoint import load_model
from pipeline.preprocess.photo_folders import parse_label_map, scan
from pipeline.training.calibration import none_scores
from pipeline.training.evaluation import evaluate_folder
from pipeline.training.reports import plot_confusion


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("evaluate"),
        description="Evaluate a gesture model on a folder whose subfolders are label names. Each photo goes "
                    "through MediaPipe and the crop stage with the model's own crop settings; with several hands "
                    "the largest is the subject. A hand is answered as the demo shows it: its top class, or none "
                    "(no gesture) below --threshold; a none/ folder holds hands that should get no gesture. "
                    "Photos without a hand are counted apart; folders whose label the model does not know are "
                    "reported and skipped.",
        epilog="examples:\n  python -m pipeline.evaluate --photos ../shared/data/images/gestures\n"
               "  python -m pipeline.evaluate --model runs/mine/model.pt --photos photos/ --threshold 0.7",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--photos", required=True, metavar="DIR", help="DIR/LABEL/ holds photos (or videos) of each label")
    add_model_option(parser)
    parser.add_argument("--threshold", type=probability, default=0.5, metavar="P",
                        help="confidence below which a hand is answered none, as in the demo (default: 0.5)")
    parser.add_argument("--out", metavar="DIR",
                        help="where to write confusion.png and predictions.csv (default: runs/evaluate/MODEL-DIR)")
    parser.add_argument("--force", action="store_true", help="replace the results in --out if they are there")
    parser.add_argument("--map", action="append", default=[], metavar="FOLDER=LABEL",
                        help="read a folder as another label, e.g. call=none (repeatable; default: the folder name)")
    parser.add_argument("--stride", type=at_least(1), default=5, metavar="N",
                        help="for videos: every N-th frame is a sample (default: 5)")
    add_engine_options(parser, "detection")
    add_hand_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import pandas as pd

    args = build_parser().parse_args(argv)
    model = load_model(args.model)
    model.require_hand_crops()  # a model of digits: the same line as every command gives
    label_map = parse_label_map(args.map)
    engine = engine_from(args)
    tasks = scan(args.photos, label_map)  # a missing folder or a bad --map: one line, before any folder is made
    if not {t.label for t in tasks} & {*model.labels, NONE_LABEL}:
        raise UserError(f"{args.photos}: no folder has a label the model knows ({', '.join(model.labels)}) or 'none'; "
                        "name the folders after the labels, or map them with --map FOLDER=LABEL")
    out = Path(args.out or Path("runs") / "evaluate" / f"{model.short_name}-{Path(args.photos).resolve().name}")
    refuse_existing(out / "predictions.csv", args.force, "evaluation")
    check_writable(out, "--out")  # before the work, not after it
    result = evaluate_folder(model, args.photos, label_map=label_map, engine=engine, hand_model=args.hand_model,
                             num_hands=args.num_hands, stride=args.stride, threshold=args.threshold,
                             progress=not args.quiet)
    for label, n in result.skipped_labels.items():
        print(f"skipped {n} file(s) of label {label!r}: the model knows {', '.join(model.labels)}")
    present = [i for i, n in enumerate(result.label_names) if (result.true == i).any() or result.no_hand.get(n)]
    table = result.table().iloc[present]
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    names = [result.label_names[i] for i in present]
    matrix = result.matrix()[present][:, present]
    plot_confusion(matrix, names, out / "confusion.png", f"accuracy {result.accuracy:.3f} on {len(result.true)} hands")
    found = pd.DataFrame({"source": result.sources, "true": [result.label_names[i] for i in result.true],
                          "predicted": [result.label_names[i] for i in result.predicted],
                          "confidence": result.probabilities.max(1) if len(result.true) else []})
    missing = pd.DataFrame({"source": [s for s, _ in result.missing], "true": [label for _, label in result.missing],
                            "predicted": "no_hand", "confidence": np.nan})
    atomic_write_text(out / "predictions.csv", pd.concat([found, missing], ignore_index=True).to_csv(index=False))
    unreadable = sum(result.unreadable.values())
    if unreadable:
        print(f"{unreadable} file(s) could not be read")
    print(f"wrote {out / 'confusion.png'} and {out / 'predictions.csv'}")
    none = none_scores(result.predicted, result.true, result.label_names) if (result.true == result.label_names.index(NONE_LABEL)).any() else {}
    extra = "".join(f" {k}={v:.4f}" for k, v in none.items())
    print(f"accuracy={result.accuracy:.4f} n={len(result.true)} no_hand={sum(result.no_hand.values())}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
