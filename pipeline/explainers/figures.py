"""Figures of explanation maps: rows of maps per sample, and per-class mean maps (``python -m pipeline.explain``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from pipeline.explainers import Explainer, explain_all, normalize
from pipeline.files import save_figure
from pipeline.lenet.model import predict_logits, to_float

SHOWN_ALONE = ("saliency", "SmoothGrad")


def _show(ax: "matplotlib.axes.Axes", image: np.ndarray, cmap: str | None = None, title: str = "") -> None:  # noqa: F821
    ax.imshow(image, cmap=cmap, vmin=0, vmax=1 if image.dtype != np.uint8 else 255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def plot_map_rows(rows: Sequence[tuple[str, np.ndarray, dict[str, np.ndarray]]], path: str | Path, title: str) -> None:
    """One row per item ``(row label, uint8 crop, {map name: map in [0, 1]})``: the crop, then each map.

    Layer maps (CAMs) are blended onto the crop; the gradient maps of :data:`SHOWN_ALONE` are shown alone
    (they are signed sensitivities, not places on the crop).
    """
    import cv2
    from matplotlib.figure import Figure

    from pipeline.draw.heatmaps import blend

    columns = ["crop", *rows[0][2]]
    fig = Figure(figsize=(1.7 * len(columns), 1.8 * len(rows) + 0.4))
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for r, (label, crop, maps) in enumerate(rows):
        _show(axes[r, 0], crop, "gray", columns[0] if r == 0 else "")
        axes[r, 0].set_ylabel(label, fontsize=8)
        for c, (name, heat) in enumerate(maps.items(), start=1):
            if name not in SHOWN_ALONE:
                image = cv2.cvtColor(blend(crop, heat, 0.5), cv2.COLOR_BGR2RGB)
                _show(axes[r, c], image, None, name if r == 0 else "")
            else:
                _show(axes[r, c], heat, "magma", name if r == 0 else "")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, 110)




def class_figures(model: nn.Module, label_names: Sequence[str], images: torch.Tensor, true: Sequence[str],
                  explainers: dict[str, Explainer], out: str | Path, per_class: int = 4, mean_per_class: int = 200,
                  seed: int = 0, progress: bool = True) -> tuple[list[Path], int]:
    """Write ``samples_<label>.png`` per class and ``class_means.png`` into ``out``; returns (paths, samples shown).

    ``images`` are uint8 crops (N, 1, S, S) and ``true`` their label names (labels the model does
    not know are shown too, after its own). A sample row shows the maps of the predicted class
    with true and predicted label; the class means average the per-image normalised maps of
    the true class (of the predicted class where the model does not know the label).
    """
    from tqdm import tqdm

    label_names = list(label_names)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = images.shape[-1]
    x = to_float(images)
    probs = predict_logits(model, x).softmax(1)
    predicted = probs.argmax(1)
    true_arr = np.array(true)
    known = [n for n in label_names if n in set(true)]
    classes = list(dict.fromkeys(known + sorted(set(true) - set(label_names))))
    rng = np.random.default_rng(seed)
    written, shown, means = [], 0, []
    for name in tqdm(classes, desc="classes", unit="class", disable=not progress):
        idx = np.flatnonzero(true_arr == name)
        pick = torch.from_numpy(np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False)))
        maps = explain_all(explainers, x[pick], predicted[pick], size)
        rows = []
        for j, i in enumerate(pick.tolist()):
            p = int(predicted[i])
            rows.append((f"true {name}\npred {label_names[p]} {float(probs[i, p]):.2f}", images[i, 0].numpy(),
                         {k: v[j, 0].numpy() for k, v in maps.items()}))
        path = out / f"samples_{name}.png"
        plot_map_rows(rows, path, f"{name}: maps for the predicted class")
        written.append(path)
        shown += len(pick)
        sub = torch.from_numpy(np.sort(rng.choice(idx, min(mean_per_class, len(idx)), replace=False)))
        target = torch.full((len(sub),), label_names.index(name)) if name in label_names else predicted[sub]
        mean_maps = explain_all(explainers, x[sub], target, size)
        mean_crop = (x[sub].mean(0)[0].numpy() * 255).round().astype(np.uint8)
        means.append((f"{name}\nn={len(sub)}", mean_crop, {k: normalize(v.mean(0))[0].numpy() for k, v in mean_maps.items()}))
    path = out / "class_means.png"
    plot_map_rows(means, path, "per class: mean of the per-image normalised maps, for the true class (each rescaled to [0, 1])")
    written.append(path)
    return written, shown
