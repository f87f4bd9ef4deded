"""``python -m pipeline.explain``: figures of what a gesture model looks at.

From dataset folders (made by collect), a folder of photos (``DIR/LABEL/*.jpg``, through
MediaPipe and the crop stage with the checkpoint's own crop settings), or digits (MNIST, with the
shipped digit model, or Sign-MNIST with a model of yours)::

    python -m pipeline.explain --data data/fingers
    python -m pipeline.explain --model runs/fingers/model.pt --photos ../shared/data/images/gestures
    python -m pipeline.explain --dataset mnist

Writes, in ``--out``: ``samples_<label>.png`` (for N samples of each class: the crop, its
saliency, SmoothGrad, the CAM of ``--method`` at each conv layer, and the demo's default map,
with true and predicted label) and ``class_means.png`` (per class: the mean crop and the mean of
each map, for the true class). The last line is ``figures=<n> samples=<n> out=<dir>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.cli_options import add_data_options, add_hand_options, add_model_option, command_name, data_spec_from
from pipeline.data.spec import load_data
from pipeline.errors import UserError, run_command
from pipeline.explainers import Explainer, Saliency, SmoothGrad
from pipeline.explainers.figures import class_figures
from pipeline.explainers.quality import CAM_METHODS, DEFAULT_EXPLAINER, METHODS, method_name
from pipeline.files import check_writable, refuse_existing
from pipeline.lenet.checkpoint import load_model
from pipeline.preprocess.photo_folders import scan
from pipeline.resources import DIGIT_MODEL, asset
from pipeline.training.evaluation import subject_crops


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command_name("explain"),
        description="Saliency, SmoothGrad and CAM figures for a gesture or digit model: N samples per class "
                    "and a mean map per class.",
        epilog="examples:\n"
               "  python -m pipeline.explain --data data/fingers\n"
               "  python -m pipeline.explain --model runs/fingers/model.pt --photos ../shared/data/images/gestures\n"
               "  python -m pipeline.explain --dataset mnist          # digits, with the shipped digit model\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_option(parser, digits=True)
    add_data_options(parser)
    parser.add_argument("--photos", metavar="DIR", help="DIR/LABEL/ holds photos (run through MediaPipe and the crop stage)")
    parser.add_argument("--out", metavar="DIR", help="where to write the figures (default: runs/explain/MODEL-DATA: the model's name and the "
                             "data's or the photos folder's)")
    parser.add_argument("--force", action="store_true", help="replace the figures in --out if they are there")
    parser.add_argument("--per-class", type=int, default=4, metavar="N", help="samples shown per class (default: 4)")
    parser.add_argument("--mean-per-class", type=int, default=200, metavar="N",
                        help="samples averaged per class for class_means.png (default: 200)")
    parser.add_argument("--layers", metavar="A,B", help="layers for the CAM, e.g. conv1,act2 (default: every conv layer)")
    parser.add_argument("--method", choices=CAM_METHODS, default="gradcam",
                        help="the CAM shown at each layer (default: gradcam, plain Grad-CAM; -rel: relative to a black crop). "
                             f"The demo's default, {method_name(*DEFAULT_EXPLAINER)}, is always shown too")
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
    if args.photos and (args.data or args.mnist or args.signmnist or args.dataset):
        raise UserError("give --photos DIR or one kind of data (--data, --mnist, --signmnist, --dataset), not both")
    spec = None if args.photos else data_spec_from(args)
    model_path = args.model
    if model_path is None and spec is not None and spec.kind == "mnist":
        model_path = asset(DIGIT_MODEL)
    elif model_path is None and spec is not None and spec.kind == "signmnist":
        raise UserError("Sign-MNIST has no shipped model: train one (python -m pipeline.train --signmnist CSV --out runs/sign) "
                        "and pass --model runs/sign/model.pt")
    loaded = load_model(model_path)
    what = Path(args.photos).resolve().name if args.photos else spec.name
    out = Path(args.out or Path("runs") / "explain" / f"{loaded.short_name}-{what}")
    refuse_existing(out / "class_means.png", args.force, "figures")
    check_writable(out, "--out")
    model, label_names = loaded.explained, loaded.labels
    layers = args.layers.split(",") if args.layers else model.conv_layers()
    for name in layers:
        if not hasattr(model.features, name):  # also refuses fc layers: a CAM needs a spatial map
            spatial = ", ".join(n for n, _ in model.features.named_children())
            raise UserError(f"--layers: no layer {name!r} with a spatial map in this model; choose from {spatial}")
    explainers: dict[str, Explainer] = {"saliency": Saliency(model),
                                        "SmoothGrad": SmoothGrad(model, args.smooth_samples, args.noise, args.seed)}
    explainers.update({method_name(args.method, name): METHODS[args.method](model, name) for name in layers})
    explainers[f"{method_name(*DEFAULT_EXPLAINER)} (demo)"] = METHODS[DEFAULT_EXPLAINER[0]](model, DEFAULT_EXPLAINER[1])
    if spec is not None:
        if spec.hands:
            loaded.require_hand_crops()  # before the (long) load: a digit model is refused at once
        ds = load_data(spec, loaded.crop_settings if spec.hands else None, progress=not args.quiet)
        where = ", ".join(spec.paths)
        loaded.check_fits(ds.images, hand_crops=ds.settings is not None, where=where)
        if spec.kind == "mnist":  # its test digits: the model never trained on them
            ds = ds.subset(np.flatnonzero(ds.groups == "test"))
        if not set(ds.label_names) & set(label_names):
            raise UserError(f"{where}: its labels ({', '.join(ds.label_names)}) are not the model's "
                            f"({', '.join(label_names)}); pass --model of a model trained on this kind of data")
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
