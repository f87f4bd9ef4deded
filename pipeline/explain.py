"""``python -m pipeline.explain``: figures of what a gesture model looks at.

From a dataset folder (made by collect), or from a folder of photos (``DIR/LABEL/*.jpg``, through
MediaPipe and the crop stage with the checkpoint's own crop settings)::

    python -m pipeline.explain --model runs/fingers/model.pt --data data/fingers
    python -m pipeline.explain --model runs/fingers/model.pt --photos ../shared/data/images/gestures

Writes, in ``--out``: ``samples_<label>.png`` (for N samples of each class: the crop, its
saliency, SmoothGrad, and Grad-CAM at each conv layer, with true and predicted label) and
``class_means.png`` (per class: the mean crop and the mean of each map, for the true class).
The last line is ``figures=<n> samples=<n> out=<dir>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from pipeline.cli_options import add_hand_options, add_model_option
from pipeline.data.load import load_dataset
from pipeline.errors import UserError, run_command
from pipeline.explainers import Explainer, GradCAM, GradCAMPlusPlus, Saliency, SmoothGrad
from pipeline.explainers.figures import class_figures
from pipeline.files import check_writable, refuse_existing
from pipeline.lenet.checkpoint import load_model
from pipeline.preprocess.photo_folders import scan
from pipeline.training.evaluation import subject_crops

METHODS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.explain",
        description="Saliency, SmoothGrad and Grad-CAM figures for a gesture model: N samples per class "
                    "and a mean map per class.",
        epilog="examples:\n"
               "  python -m pipeline.explain --model runs/fingers/model.pt --data data/fingers\n"
               "  python -m pipeline.explain --model runs/fingers/model.pt --photos ../shared/data/images/gestures\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_option(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="a dataset folder made by pipeline.collect")
    source.add_argument("--photos", metavar="DIR", help="DIR/LABEL/ holds photos (run through MediaPipe and the crop stage)")
    parser.add_argument("--out", metavar="DIR", help="where to write the figures (default: runs/explain/<model name>)")
    parser.add_argument("--force", action="store_true", help="replace the figures in --out if they are there")
    parser.add_argument("--per-class", type=int, default=4, metavar="N", help="samples shown per class (default: 4)")
    parser.add_argument("--mean-per-class", type=int, default=200, metavar="N",
                        help="samples averaged per class for class_means.png (default: 200)")
    parser.add_argument("--layers", metavar="A,B", help="layers for Grad-CAM, e.g. conv1,act2 (default: every conv layer)")
    parser.add_argument("--method", choices=METHODS, default="gradcam", help="Grad-CAM weighting (default: gradcam)")
    parser.add_argument("--smooth-samples", type=int, default=25, metavar="N", help="SmoothGrad samples (default: 25)")
    parser.add_argument("--noise", type=float, default=0.15, help="SmoothGrad noise, fraction of the value range (default: 0.15)")
    parser.add_argument("--seed", type=int, default=0, help="picks the samples and SmoothGrad's noise (default: 0)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="detection processes for --photos (default: 1)")
    add_hand_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for option, value in (("--per-class", args.per_class), ("--mean-per-class", args.mean_per_class),
                          ("--smooth-samples", args.smooth_samples), ("--workers", args.workers)):
        if value < 1:
            raise UserError(f"{option} must be at least 1, got {value}")
    if args.noise < 0:
        raise UserError(f"--noise must be 0 or more, got {args.noise}")
    loaded = load_model(args.model)
    out = Path(args.out or Path("runs") / "explain" / loaded.short_name)
    refuse_existing(out / "class_means.png", args.force, "figures")
    check_writable(out, "--out")
    model, label_names, settings = loaded.explained, loaded.labels, loaded.crop_settings
    layers = args.layers.split(",") if args.layers else model.conv_layers()
    for name in layers:
        if not hasattr(model.features, name):  # also refuses fc layers: Grad-CAM needs a spatial map
            spatial = ", ".join(n for n, _ in model.features.named_children())
            raise UserError(f"--layers: no layer {name!r} with a spatial map in this model; choose from {spatial}")
    explainers: dict[str, Explainer] = {"saliency": Saliency(model),
                                        "SmoothGrad": SmoothGrad(model, args.smooth_samples, args.noise, args.seed)}
    prefix = "Grad-CAM" if args.method == "gradcam" else "Grad-CAM++"
    explainers.update({f"{prefix} {name}": METHODS[args.method](model, name) for name in layers})
    if args.data:
        ds = load_dataset(args.data, settings)
        loaded.check_fits(ds.images, hand_crops=ds.settings is not None, where=args.data)
        images, true = ds.images, [ds.label_names[i] for i in ds.labels.tolist()]
    else:
        settings = loaded.require_hand_crops()
        found = subject_crops(scan(args.photos), settings, args.workers, args.hand_model, args.num_hands,
                              progress=not args.quiet)
        if sum(found.no_hand.values()):
            print(f"no hand found in {sum(found.no_hand.values())} photo(s); they are left out")
        if not found.labels:
            raise UserError(f"{args.photos}: no hand found in any photo")
        images, true = found.images, found.labels
    written, shown = class_figures(model, label_names, images, true, explainers, out, args.per_class,
                                   args.mean_per_class, args.seed, progress=not args.quiet)
    for path in written:
        print(f"wrote {path}")
    print(f"figures={len(written)} samples={shown} out={out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
