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

import numpy as np
import torch

from .checkpoint import DEFAULT_MODEL, Ensemble, load_model
from .cli_options import add_hand_options
from .crops import CropSettings
from .errors import UserError, run_command
from .explainers import Explainer, GradCAM, GradCAMPlusPlus, Saliency, SmoothGrad, normalize, upsample
from .models import LeNet, predict_logits, to_float

METHODS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}


def load_checkpoint(path: str | Path | None) -> tuple[LeNet, list[str], CropSettings | None]:
    """``(model in eval mode, label names, crop settings or None)`` from a checkpoint file.

    Read by :func:`pipeline.checkpoint.load_model`; an ensemble is explained through its first member.
    """
    model, ckpt = load_model(path)
    if isinstance(model, Ensemble):
        model = model.members[0]
    return model, list(ckpt["label_names"]), ckpt["crop"]


def crops_from_dataset(root: str, settings: CropSettings | None) -> tuple[torch.Tensor, list[str]]:
    """uint8 crops (N, 1, S, S) and their label names, rendered with the model's crop settings."""
    from .data import load_dataset

    ds = load_dataset(root, settings)
    return ds.images, [ds.label_names[i] for i in ds.labels.tolist()]


def crops_from_photos(folder: str, settings: CropSettings | None, args: argparse.Namespace) -> tuple[torch.Tensor, list[str]]:
    """Photos in ``folder/LABEL/`` through MediaPipe and the crop stage; the largest hand is the subject."""
    from tqdm import tqdm

    from .ingest import detect_files, scan

    if settings is None:
        raise UserError("this model was not trained on hand crops (its checkpoint has no crop settings); use --data")
    tasks = scan(folder)
    crops, names, no_hand = [], [], 0
    for result in tqdm(detect_files(tasks, settings, args.workers, args.hand_model, args.num_hands), total=len(tasks),
                       desc="hands", unit="file", disable=args.quiet):
        for _frame, _ms, _size, found in result.frames:
            if not found:
                no_hand += 1
                continue
            crops.append(max(found, key=lambda hc: hc[0].area())[1].image)
            names.append(result.task.label)
    if no_hand:
        print(f"no hand found in {no_hand} photo(s); they are left out")
    if not crops:
        raise UserError(f"{folder}: no hand found in any photo")
    return torch.from_numpy(np.stack(crops)).unsqueeze(1), names


def explain_all(explainers: dict[str, Explainer], x: torch.Tensor, targets: torch.Tensor, size: int,
                batch: int = 256, progress: bool = False, desc: str = "explain") -> dict[str, torch.Tensor]:
    """Each explainer's maps for float images ``x``: upsampled to ``size`` with every cell on the pixel its
    receptive field is centred on, and min-max normalised per image."""
    from tqdm import tqdm

    out: dict[str, list[torch.Tensor]] = {name: [] for name in explainers}
    for start in tqdm(range(0, len(x), batch), desc=desc, unit="batch", disable=not progress, leave=False):
        xb, tb = x[start:start + batch], targets[start:start + batch]
        for name, explainer in explainers.items():
            out[name].append(normalize(upsample(explainer(xb, tb), size, explainer.grid)))
    return {name: torch.cat(maps) for name, maps in out.items()}


def _show(ax: "matplotlib.axes.Axes", image: np.ndarray, cmap: str | None = None, title: str = "") -> None:  # noqa: F821
    ax.imshow(image, cmap=cmap, vmin=0, vmax=1 if image.dtype != np.uint8 else 255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def plot_rows(rows: list[tuple[str, np.ndarray, dict[str, np.ndarray]]], path: Path, title: str) -> None:
    """One row per item: the crop (uint8), then each map; Grad-CAM maps are blended onto the crop."""
    import cv2
    from matplotlib.figure import Figure

    from .heatmaps import blend

    columns = ["crop", *rows[0][2]]
    fig = Figure(figsize=(1.7 * len(columns), 1.8 * len(rows) + 0.4))
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for r, (label, crop, maps) in enumerate(rows):
        _show(axes[r, 0], crop, "gray", columns[0] if r == 0 else "")
        axes[r, 0].set_ylabel(label, fontsize=8)
        for c, (name, heat) in enumerate(maps.items(), start=1):
            if name.startswith("Grad-CAM"):
                image = cv2.cvtColor(blend(crop, heat, 0.5), cv2.COLOR_BGR2RGB)
                _show(axes[r, c], image, None, name if r == 0 else "")
            else:
                _show(axes[r, c], heat, "magma", name if r == 0 else "")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


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
    parser.add_argument("--model", metavar="PATH", help="checkpoint to explain (default: models/fingers.pt)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="a dataset folder made by pipeline.collect")
    source.add_argument("--photos", metavar="DIR", help="DIR/LABEL/ holds photos (run through MediaPipe and the crop stage)")
    parser.add_argument("--out", metavar="DIR", help="where to write the figures (default: runs/explain/<model name>)")
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
    from tqdm import tqdm

    args = build_parser().parse_args(argv)
    for option, value in (("--per-class", args.per_class), ("--mean-per-class", args.mean_per_class),
                          ("--smooth-samples", args.smooth_samples), ("--workers", args.workers)):
        if value < 1:
            raise UserError(f"{option} must be at least 1, got {value}")
    if args.noise < 0:
        raise UserError(f"--noise must be 0 or more, got {args.noise}")
    model, label_names, settings = load_checkpoint(args.model)
    layers = args.layers.split(",") if args.layers else model.conv_layers()
    for name in layers:
        if not hasattr(model.features, name):  # also refuses fc layers: Grad-CAM needs a spatial map
            spatial = ", ".join(n for n, _ in model.features.named_children())
            raise UserError(f"--layers: no layer {name!r} with a spatial map in this model; choose from {spatial}")
    explainers: dict[str, Explainer] = {"saliency": Saliency(model),
                                        "SmoothGrad": SmoothGrad(model, args.smooth_samples, args.noise, args.seed)}
    prefix = "Grad-CAM" if args.method == "gradcam" else "Grad-CAM++"
    explainers.update({f"{prefix} {name}": METHODS[args.method](model, name) for name in layers})
    images, true = crops_from_dataset(args.data, settings) if args.data else crops_from_photos(args.photos, settings, args)
    size = images.shape[-1]
    out = Path(args.out or Path("runs") / "explain" / Path(args.model or DEFAULT_MODEL).stem)
    out.mkdir(parents=True, exist_ok=True)

    x = to_float(images)
    probs = predict_logits(model, x).softmax(1)
    predicted = probs.argmax(1)
    true_arr = np.array(true)
    classes = list(dict.fromkeys([n for n in label_names if n in set(true)] + sorted(set(true) - set(label_names))))
    rng = np.random.default_rng(args.seed)
    written, shown = [], 0
    means = []
    for name in tqdm(classes, desc="classes", unit="class", disable=args.quiet):
        idx = np.flatnonzero(true_arr == name)
        pick = torch.from_numpy(np.sort(rng.choice(idx, min(args.per_class, len(idx)), replace=False)))
        maps = explain_all(explainers, x[pick], predicted[pick], size)
        rows = []
        for j, i in enumerate(pick.tolist()):
            p = int(predicted[i])
            rows.append((f"true {name}\npred {label_names[p]} {float(probs[i, p]):.2f}", images[i, 0].numpy(),
                         {k: v[j, 0].numpy() for k, v in maps.items()}))
        path = out / f"samples_{name}.png"
        plot_rows(rows, path, f"{name}: maps for the predicted class")
        written.append(path)
        shown += len(pick)
        # Class means explain the true class where the model knows it, else the predicted one.
        sub = torch.from_numpy(np.sort(rng.choice(idx, min(args.mean_per_class, len(idx)), replace=False)))
        target = torch.full((len(sub),), label_names.index(name)) if name in label_names else predicted[sub]
        mean_maps = explain_all(explainers, x[sub], target, size)
        mean_crop = (x[sub].mean(0)[0].numpy() * 255).round().astype(np.uint8)
        means.append((f"{name}\nn={len(sub)}", mean_crop, {k: normalize(v.mean(0))[0].numpy() for k, v in mean_maps.items()}))
    path = out / "class_means.png"
    plot_rows(means, path, "per class: mean of the per-image normalised maps, for the true class (each rescaled to [0, 1])")
    written.append(path)
    for path in written:
        print(f"wrote {path}")
    print(f"figures={len(written)} samples={shown} out={out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
