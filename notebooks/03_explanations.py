# %% [markdown]
# # 03 · What the explanations show
#
# Grad-CAM, Grad-CAM++, gradient saliency and SmoothGrad on LeNet-5s trained here, on the real crops of
# a hand dataset (`data/fingers` by default), with the test split made of whole recording sessions the
# models never saw. Each crop carries MediaPipe's 21 landmarks, so "does the map look at the hand?" can
# be measured rather than eyeballed: `pipeline.explainers.scores` draws the hand (finger bones and palm)
# from the landmarks on the crop grid and scores each map by
#
# - **pointing game**: does the map's maximum fall on the hand? (a plateau counts only if all of it does)
# - **mass inside**: the share of the map's mass on the hand;
# - **deletion**: zero the most salient pixels first, 5 % at a time, and take the area under the
#   true class's probability (lower = the map found what the model uses);
# - **cascading randomisation** (Adebayo et al. 2018): re-initialise the layers from the top down and
#   see whether the maps change (a map that does not depend on the weights explains nothing).
#
# It answers three questions: which layer gives the most useful Grad-CAM on small crops, how the four
# methods compare, and how the crop's background mask changes what the network looks at.
# `QUICK = True` (what the tests run) trains 2 variants for 3 epochs and scores 64 test crops; the
# committed outputs come from the full setting (5 variants, 15 epochs, every test crop). Every number
# and comparison in the text is computed from the run above it.

# %%
import sys
from dataclasses import replace
from pathlib import Path

# The repository root, found from the working folder (notebooks/execute.py runs the notebooks in notebooks/).
sys.path.insert(0, str(next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").is_file())))

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown, display

from pipeline.data.load import load_dataset
from pipeline.data.splits import split_by_group
from pipeline.draw.heatmaps import blend
from pipeline.errors import UserError
from pipeline.explainers import GradCAM, GradCAMPlusPlus, Saliency, SmoothGrad, explain_all
from pipeline.explainers.scores import (
    CASCADE,
    cascading_randomisation,
    crop_landmarks,
    deletion_curves,
    deletion_score,
    hand_masks,
    localisation_scores,
)
from pipeline.lenet.model import build_model, predict_logits, to_float
from pipeline.training.loop import NO_AUGMENT, TrainConfig, train_model

# %% tags=["parameters"]
QUICK = False  # the quick setting (what the tests run): 2 variants, 3 epochs, 64 test crops, 1 random draw
DATASET = "data/fingers"  # the dataset folder, relative to the repository root (or absolute)

# %%
REPO = Path(sys.path[0])  # inserted above
plt.rcParams.update({"figure.dpi": 70, "savefig.dpi": 70, "font.size": 9})
sns.set_theme(style="whitegrid", context="notebook", rc={"figure.dpi": 70})
pd.set_option("display.precision", 3)
plt.rcParams["image.interpolation"] = "nearest"  # small crops: show the pixels (and keep the PNGs small)
torch.set_num_threads(1)  # tiny models: one thread is fastest, and steady on a shared machine
VARIANTS = ("lenet5", "lenet5-bn") if QUICK else ("lenet5", "lenet5-max", "lenet5-tanh", "lenet5-bn", "lenet5-wide")
LAYERS = ("conv1", "act1", "conv2", "act2")
EPOCHS, N_TEST, DRAWS = (3, 64, 1) if QUICK else (15, None, 4)
RECIPE = TrainConfig(epochs=EPOCHS, patience=100, augment=NO_AUGMENT, seed=0)


def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


def span(values, digits: int = 2) -> str:
    """`a–b` of some values (one value when they agree to the digits shown)."""
    lo, hi = f"{np.nanmin(values):.{digits}f}", f"{np.nanmax(values):.{digits}f}"
    return lo if lo == hi else f"{lo}–{hi}"


def signed(value: float, digits: int = 2) -> str:
    """``+0.12`` / ``-0.12``, and never ``-0.00``."""
    return f"{round(float(value), digits) + 0.0:+.{digits}f}"


def names(items) -> str:
    items = [f"`{i}`" for i in items]
    return "none" if not items else items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


data = load_dataset(REPO / DATASET)
side = data.images.shape[-1]
train, val, test = split_by_group(data.groups, data.labels.numpy(), seed=0)
if N_TEST:  # a seeded sample of the test crops
    test = np.sort(np.random.default_rng(0).choice(test, min(N_TEST, len(test)), replace=False))
labels = data.label_names


def train_on(dataset, variant: str):
    torch.manual_seed(0)  # the same initial weights for every mask
    model = build_model(variant, len(dataset.label_names))
    train_model(model, (dataset.images[train], dataset.labels[train]), (dataset.images[val], dataset.labels[val]), RECIPE)
    return model.eval()


def test_accuracy(model, x, y) -> float:
    return float((predict_logits(model, x).argmax(1) == y).float().mean())


models = {v: train_on(data, v) for v in VARIANTS}
x, y = to_float(data.images[test]), data.labels[test]
masks = hand_masks(crop_landmarks(data.index.iloc[test]), size=side, bone_width=data.settings.bone_width)  # (N, S, S) bool
chance = float(masks.mean())  # a peak at a random pixel hits the hand this often
accuracy = pd.Series({v: test_accuracy(m, x, y) for v, m in models.items()}, name="test accuracy")
print(f"{'QUICK setting: ' if QUICK else ''}{len(VARIANTS)} variants, {EPOCHS} epochs, "
      f"{len(train)}/{len(val)}/{len(test)} train/val/test crops (test: {len(set(data.groups[test]))} sessions); "
      f"the hand covers {pct(chance)} of a crop")
display(accuracy.to_frame().T)

# %% [markdown]
# ## Which layer for Grad-CAM?
#
# LeNet-5's two conv layers leave Grad-CAM very different grids on a small crop (printed below):
# `conv1`/`act1` keep nearly the crop's resolution, each cell seeing 5×5 pixels, while `conv2`/`act2`
# are a third of it, each cell seeing about half the crop. Grad-CAM of a conv layer weights its
# pre-activation maps, of an act layer the rectified ones. Each map is put back on the crop grid with
# each cell on the pixel its receptive field is centred on (`upsample(..., grid=explainer.grid)`), then
# scored against the hand mask, for the true class. Chance: a peak at a random pixel hits the hand as
# often as the hand's share of the crop.

# %%
rows = []
for variant, model in models.items():
    maps = explain_all({layer: GradCAM(model, layer) for layer in LAYERS}, x, y, side)
    for layer, m in maps.items():
        rows.append({"variant": variant, "layer": layer, **localisation_scores(m, masks),
                     "deletion": float(deletion_score(deletion_curves(model, x, y, m)).mean())})
layer_table = pd.DataFrame(rows)
summary = layer_table.pivot(index="layer", columns="variant", values=["pointing", "mass_inside", "deletion"]).loc[list(LAYERS)]
for score in ("pointing", "mass_inside", "deletion"):
    summary[(score, "mean")] = summary[score].mean(axis=1)
display(summary.sort_index(axis=1, level=0, sort_remaining=False).round(3))
best = summary[("pointing", "mean")].add(summary[("mass_inside", "mean")]).idxmax()


def layer_sizes(model, layers, side: int) -> dict[str, tuple[int, int]]:
    """The (h, w) of each layer's output for one crop: the grid Grad-CAM works on."""
    sizes, hooks = {}, []
    for layer in layers:
        record = lambda _module, _input, out, layer=layer: sizes.update({layer: out.shape[-2:]})
        hooks.append(model.layer(layer).register_forward_hook(record))
    with torch.no_grad():
        model(torch.zeros(1, 1, side, side))
    for hook in hooks:
        hook.remove()
    return {layer: tuple(size) for layer, size in sizes.items()}


grids = layer_sizes(models["lenet5"], LAYERS, side)
print("grids on a " + f"{side}×{side} crop: " + ", ".join(f"{layer} {h}×{w}" for layer, (h, w) in grids.items()))
print(f"chance (hand's share of the crop): {chance:.3f};  constant maps: "
      + ", ".join(f"{layer} {layer_table[layer_table.layer == layer]['constant'].mean():.1%}" for layer in LAYERS)
      + f";  best layer by pointing + mass: {best}")
fig, axes = plt.subplots(1, 3, figsize=(10, 2.8))
for ax, col, title in zip(axes, ["pointing", "mass_inside", "deletion"],
                          ["pointing game (↑)", "mass inside the hand (↑)", "deletion AUC (↓)"]):
    sns.barplot(layer_table, x="layer", y=col, hue="variant", ax=ax, order=LAYERS)
    if col != "deletion":
        ax.axhline(chance, color="k", ls=":", lw=1)
    ax.set(title=title, xlabel="", ylabel="")
    ax.legend().remove()
axes[-1].legend(fontsize=7, loc="upper right")
fig.suptitle("Grad-CAM per layer and variant, true class, held-out sessions (dotted: chance)")
plt.tight_layout()
plt.show()

# %%
mass, point, dele = (summary[score][list(VARIANTS)] for score in ("mass_inside", "pointing", "deletion"))
looking = [v for v in VARIANTS if (mass[v] > chance).any()]  # variants whose Grad-CAM is on the hand at some layer
blind = [v for v in VARIANTS if v not in looking]
others = [layer for layer in LAYERS if layer != best]
findings = {}
if looking:
    text = (f"**Layer choice: `{best}`** (highest mean pointing + mass). On the {len(looking)} "
            f"variant{'s' if len(looking) > 1 else ''} whose Grad-CAM puts more than chance of its mass on the hand at some "
            f"layer ({names(looking)}), Grad-CAM at `{best}` puts its peak on "
            f"the hand for {span(point.loc[best, looking])} of the crops"
            + (f" (`lenet5`: {point.loc[best, 'lenet5']:.2f})" if "lenet5" in looking else "")
            + f" and {span(mass.loc[best, looking])} of its mass there (chance {chance:.2f}), against "
            + "; ".join(f"{span(point.loc[layer, looking])} and {span(mass.loc[layer, looking])} at `{layer}`"
                        for layer in others)
            + ".")
    if "lenet5" in VARIANTS:
        by_deletion = dele["lenet5"].idxmin()
        text += (f" Deletion {'agrees' if by_deletion == best else 'disagrees'} for `lenet5`: its lowest deletion AUC is at "
                 f"`{by_deletion}` ({dele.loc[by_deletion, 'lenet5']:.3f}; `{best}` {dele.loc[best, 'lenet5']:.3f}, "
                 f"`conv2` {dele.loc['conv2', 'lenet5']:.3f}).")
    if grids.get(best, (0, 0))[0] > grids.get("conv2", (0, 0))[0]:
        text += (f" `conv2`'s {grids['conv2'][0]}×{grids['conv2'][1]} grid is coarser than `{best}`'s "
                 f"{grids[best][0]}×{grids[best][1]}: each of its cells covers several fingers at once.")
    findings["layer"] = text
else:
    findings["layer"] = f"**No variant's Grad-CAM** puts more than chance ({chance:.2f}) of its mass on the hand at any layer."
if blind:
    text = (f"**{names(blind)}: Grad-CAM below chance at every layer** (mass inside {span(mass[blind].to_numpy())}, "
            f"pointing {span(point[blind].to_numpy())}): the class gradient is spread off the hand.")
    if accuracy.idxmax() in blind:
        text += (f" Yet `{accuracy.idxmax()}` is the most accurate model here ({accuracy.max():.2f}): an accurate model's maps "
                 "can still say little about the hand.")
    findings["blind"] = text
display(Markdown("\n\n".join(findings.values())))

# %% [markdown]
# ## Four methods side by side, per class
#
# For one held-out crop of each class (the first the reference `lenet5` gets right): gradient
# saliency, SmoothGrad (16 noisy copies, σ = 0.15), and Grad-CAM / Grad-CAM++ at the layer chosen
# above, for the true class. The cyan outline is the hand mask drawn from the landmarks.

# %%
reference = models["lenet5"]
methods = {"saliency": Saliency(reference), "SmoothGrad": SmoothGrad(reference, samples=16),
           f"Grad-CAM {best}": GradCAM(reference, best), f"Grad-CAM++ {best}": GradCAMPlusPlus(reference, best)}
predicted = predict_logits(reference, x).argmax(1)
picks = [int(np.flatnonzero((y == k).numpy() & (predicted == y).numpy())[0]) for k in range(len(labels))
         if ((y == k) & (predicted == y)).any()]
shown = explain_all(methods, x[picks], y[picks], side)
fig, axes = plt.subplots(len(picks), 1 + len(methods), figsize=(1.45 * (1 + len(methods)), 1.5 * len(picks)), squeeze=False)
for r, i in enumerate(picks):
    crop = data.images[test[i], 0].numpy()
    axes[r, 0].imshow(crop, cmap="gray", vmin=0, vmax=255)
    axes[r, 0].set_ylabel(labels[int(y[i])], fontsize=9)
    for c, (name, m) in enumerate(shown.items(), start=1):
        heat = m[r, 0].numpy()
        if name.startswith("Grad-CAM"):
            axes[r, c].imshow(blend(crop, heat, 0.5)[..., ::-1])
        else:
            axes[r, c].imshow(heat, cmap="magma", vmin=0, vmax=1)
        axes[r, c].contour(masks[i], levels=[0.5], colors="cyan", linewidths=0.6)
for c, title in enumerate(["crop", *methods]):
    axes[0, c].set_title(title, fontsize=8)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
plt.tight_layout()
plt.show()

# %%
# The mean map per class over every test crop of that class (true class), which a single crop can't show,
# and how each method's maps of `lenet5` fall on the hand over all test crops.
everything = explain_all(methods, x, y, side)
classes = [k for k in range(len(labels)) if (y == k).any()]
fig, axes = plt.subplots(1 + len(methods), len(classes), figsize=(1.3 * len(classes), 1.35 * (1 + len(methods))), squeeze=False)
for c, k in enumerate(classes):
    axes[0, c].imshow(x[y == k, 0].mean(0), cmap="gray")
    axes[0, c].set_title(labels[k], fontsize=8)
    for r, (name, m) in enumerate(everything.items(), start=1):
        axes[r, c].imshow(m[y == k, 0].mean(0), cmap="magma")
        if c == 0:
            axes[r, c].set_ylabel(name.replace(" ", "\n", 1), fontsize=7)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
fig.suptitle("mean crop and mean map per class, held-out sessions", fontsize=9)
plt.tight_layout()
plt.show()
method_scores = pd.DataFrame({name: localisation_scores(m, masks) for name, m in everything.items()}).T
display(method_scores[["pointing", "mass_inside", "constant"]].round(3))

# %% [markdown]
# ## Deletion: which map finds the pixels the model uses?
#
# Zero the pixels in the map's order, 5 % per step, and follow the true class's probability; the
# score is the area under that curve (0 to 1, lower = better). Two references: a random order, and the
# crop's own brightness (brightest pixels first: on masked crops, "delete the hand").

# %%
gen = torch.Generator().manual_seed(0)
references = {"random order": torch.rand(x.shape, generator=gen), "brightest first": x}
del_rows, curves = [], {}
for variant, model in models.items():
    ms = {"saliency": Saliency(model), "SmoothGrad": SmoothGrad(model, samples=16),
          f"Grad-CAM {best}": GradCAM(model, best), f"Grad-CAM++ {best}": GradCAMPlusPlus(model, best)}
    maps = {**explain_all(ms, x, y, side), **references}
    for name, m in maps.items():
        curve = deletion_curves(model, x, y, m)
        del_rows.append({"variant": variant, "method": name, "deletion": float(deletion_score(curve).mean())})
        if variant == "lenet5":
            curves[name] = curve.mean(0)
deletion_table = pd.DataFrame(del_rows).pivot(index="method", columns="variant", values="deletion")[list(VARIANTS)]
deletion_table["mean"] = deletion_table.mean(axis=1)
display(deletion_table.sort_values("mean").round(3))
fig, ax = plt.subplots(figsize=(5, 3))
for name, curve in curves.items():
    ax.plot(np.linspace(0, 1, len(curve)), curve, label=f"{name} ({deletion_score(curve[None])[0]:.3f})",
            ls=":" if name in references else "-")
ax.set(xlabel="share of pixels zeroed", ylabel="p(true class)", title="deletion curves, lenet5 (AUC)")
ax.legend(fontsize=7)
plt.show()

# %%
ranked = deletion_table.drop(index=list(references))["mean"].sort_values()
text = (f"**Methods.** By deletion (lower is better; random order {deletion_table.loc['random order', 'mean']:.2f}, deleting "
        f"the brightest pixels first {deletion_table.loc['brightest first', 'mean']:.2f}, means over the variants) the methods "
        "rank " + ", ".join(f"{name} ({score:.2f})" for name, score in ranked.items()) + ". Per variant: "
        + "; ".join(f"`{v}` {span(deletion_table.drop(index=list(references))[v])}" for v in VARIANTS) + ".")
spread = deletion_table.drop(index=list(references)).drop(columns="mean")
worst = ranked.index[-1]
pulled = spread.loc[worst][spread.loc[worst] > spread.loc[worst].median()].index.tolist() if len(VARIANTS) > 2 else []
if pulled:
    text += f" {worst}'s average is pulled up by {names(pulled)}."
low = method_scores["pointing"].idxmin()
text += (f" On `lenet5`, {low}'s peak falls on the hand for {method_scores.loc[low, 'pointing']:.2f} of the crops "
         f"(chance {chance:.2f}; {', '.join(f'{n} {p:.2f}' for n, p in method_scores['pointing'].drop(low).items())})")
if low in ("saliency", "SmoothGrad") and method_scores.loc[low, "pointing"] < chance:
    text += (": on a masked crop the most sensitive pixels can be the black ones just outside the silhouette, where a change "
             "would alter the hand's outline")
findings["methods"] = text + "."
display(Markdown(findings["methods"]))

# %% [markdown]
# ## Sanity check: cascading randomisation
#
# The layers of the reference `lenet5` are re-initialised from the output down (`fc3`, then also
# `fc2`, `fc1`, `conv2`, `conv1`), and each step's maps are compared, by Spearman rank correlation,
# with the trained model's (mean over test crops and over seeded random draws). A method that passes
# falls towards 0; one whose maps survive the loss of every trained weight shows the input, not the model.

# %%
n_sanity = 16 if QUICK else 48
factories = {"saliency": Saliency, "SmoothGrad": lambda m: SmoothGrad(m, samples=8),
             "Grad-CAM conv2": lambda m: GradCAM(m, "conv2"), "Grad-CAM++ conv2": lambda m: GradCAMPlusPlus(m, "conv2")}
if best != "conv2":
    factories[f"Grad-CAM {best}"] = lambda m: GradCAM(m, best)
sanity = {name: cascading_randomisation(reference, f, x[:n_sanity], y[:n_sanity], CASCADE, draws=DRAWS)
          for name, f in factories.items()}
fig, ax = plt.subplots(figsize=(5.5, 3))
steps = ["trained", *[f"+{layer}" for layer in CASCADE]]
for name, curve in sanity.items():
    ax.plot(steps, [1.0, *curve[:, 0].tolist()], marker="o", label=name)
ax.axhline(0, color="k", lw=0.8)
draws = f"{DRAWS} random draw{'s' if DRAWS > 1 else ''}"
ax.set(ylabel="Spearman ρ with trained maps", title=f"cascading randomisation ({n_sanity} crops, {draws})")
ax.legend(fontsize=7)
plt.show()
rho = pd.DataFrame({name: c[:, 0].numpy() for name, c in sanity.items()}, index=steps[1:]).T
display(rho.round(3))

# %%
last, top = rho.iloc[:, -1], rho[f"+{CASCADE[2]}"]  # every layer re-initialised; the three top layers re-initialised
passes = last.index[last.abs() < 0.1].tolist()
survive = last.index[last >= 0.3].tolist()
top_fail = top.index[top > 0.9].tolist()
text = (f"**Sanity check** (a mean over {draws} on {n_sanity} crops). With every layer re-initialised, "
        + (f"{names(passes)} end{'s' if len(passes) == 1 else ''} near ρ = 0 "
           f"({', '.join(f'{n} {signed(last[n])}' for n in passes)})" if passes else "no method ends near ρ = 0")
        + "; " + (f"{names(survive)} keep{'s' if len(survive) == 1 else ''} ρ ≥ 0.3 "
                  f"({', '.join(f'{n} {last[n]:.2f}' for n in survive)}): those maps survive the loss of every trained weight, "
                  "so much of them follows the input rather than the model (what Adebayo et al. found for gradient maps)"
                  if survive else "none keeps ρ ≥ 0.3 to the end") + ".")
if top_fail:
    text += (f" **{names(top_fail)} fail{'s' if len(top_fail) == 1 else ''} the top-layer steps**: ρ > 0.9 with "
             f"{', '.join(CASCADE[:3])} re-initialised ({', '.join(f'{n} {top[n]:.2f}' for n in top_fail)}), so "
             "the class score hardly shapes them.")
cam = f"Grad-CAM {best}"
if cam in rho.index and best != "conv2" and rho.loc[cam, f"+{CASCADE[3]}"] > 0.3 and abs(rho.loc[cam, f"+{CASCADE[4]}"]) < 0.1:
    text += (f" The caveat of `{best}`: its maps keep ρ = {rho.loc[cam, f'+{CASCADE[3]}']:.2f} with the trained ones after "
             f"{', '.join(CASCADE[:4])} are re-initialised, and lose it ({signed(rho.loc[cam, f'+{CASCADE[4]}'])}) only once "
             f"`{CASCADE[4]}` is too: much of their structure is `{CASCADE[4]}`'s response to the input rather than what the "
             "classifier uses.")
findings["sanity"] = text
display(Markdown(text))

# %% [markdown]
# ## Crop options: what does the background mask change?
#
# The same photos re-rendered from the stored large renders with `CropSettings(mask=...)`: `none`
# keeps the room behind the hand, `hull` the convex hull of the landmarks (gaps between spread
# fingers filled), `bones` the finger bones and palm only. One `lenet5` per mask, same split, same
# seed and recipe (the dataset's own mask reuses the model above); its maps are scored against the
# same bones mask from the landmarks.

# %%
mask_rows, mask_maps = [], {}
for kind in ("none", "hull", "bones"):
    try:
        masked = data if kind == data.settings.mask else load_dataset(REPO / DATASET, replace(data.settings, mask=kind))
    except UserError as e:  # a dataset without large renders cannot be re-rendered
        print(f"mask={kind}: {e}")
        continue
    model = models["lenet5"] if kind == data.settings.mask else train_on(masked, "lenet5")
    xm = to_float(masked.images[test])
    maps = explain_all({"saliency": Saliency(model), f"Grad-CAM {best}": GradCAM(model, best),
                        "Grad-CAM conv2": GradCAM(model, "conv2")}, xm, y, side)
    mask_maps[kind] = (masked.images[test, 0].numpy(), maps)
    row = {"mask": kind, "test accuracy": test_accuracy(model, xm, y)}
    for name, m in maps.items():
        scores = localisation_scores(m, masks)
        row[f"{name}: pointing"], row[f"{name}: mass inside"] = scores["pointing"], scores["mass_inside"]
    mask_rows.append(row)
mask_table = pd.DataFrame(mask_rows).set_index("mask")
display(mask_table.round(3))
some = picks[:4]
fig, axes = plt.subplots(len(some), 2 * len(mask_maps), figsize=(8 * len(mask_maps) / 3, 1.45 * len(some)), squeeze=False)
for c, (kind, (crops, maps)) in enumerate(mask_maps.items()):
    for r, i in enumerate(some):
        axes[r, 2 * c].imshow(crops[i], cmap="gray", vmin=0, vmax=255)
        axes[r, 2 * c + 1].imshow(blend(crops[i], maps[f"Grad-CAM {best}"][i, 0].numpy(), 0.5)[..., ::-1])
        axes[r, 2 * c + 1].contour(masks[i], levels=[0.5], colors="cyan", linewidths=0.6)
    axes[0, 2 * c].set_title(f"mask={kind}", fontsize=8)
    axes[0, 2 * c + 1].set_title(f"Grad-CAM {best}", fontsize=8)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
plt.tight_layout()
plt.show()

# %%
if {"none", "bones"} <= set(mask_table.index):
    t, cam = mask_table, f"Grad-CAM {best}"
    acc = ", ".join(f"{t.loc[k, 'test accuracy']:.2f} (`{k}`)" for k in t.index)
    text = (f"**Crop mask.** Held-out accuracy: {acc}. Without a mask, Grad-CAM at `{best}` puts "
            f"{t.loc['none', f'{cam}: mass inside']:.2f} of its mass on the hand (chance {chance:.2f}) and its peak there for "
            f"{pct(t.loc['none', f'{cam}: pointing'])} of the crops, against {t.loc['bones', f'{cam}: mass inside']:.2f} and "
            f"{pct(t.loc['bones', f'{cam}: pointing'])} with `bones`")
    if t.loc["none", f"{cam}: mass inside"] < chance:
        text += ": below chance, so without a mask the model looks mostly at the background"
    text += (f". Saliency's peak falls on the hand for {pct(t.loc['none', 'saliency: pointing'])} of the crops without a mask "
             f"and {pct(t.loc['bones', 'saliency: pointing'])} with `bones`"
             + (", the other way from Grad-CAM: it says more about where the image has texture than about what the model uses"
                if (t.loc["none", "saliency: pointing"] - t.loc["bones", "saliency: pointing"])
                * (t.loc["none", f"{cam}: pointing"] - t.loc["bones", f"{cam}: pointing"]) < 0 else "") + ".")
    findings["mask"] = text
    display(Markdown(text))

# %% [markdown]
# ## What this run says
#
# The findings above, together (each computed from this run's tables; one seed per model, so
# differences of a few points between variants are within the noise).

# %%
setting = (f"{'QUICK setting, not a result: ' if QUICK else ''}{len(VARIANTS)} variants × {EPOCHS} epochs, {len(test)} test "
           f"crops of {len(set(data.groups[test]))} held-out sessions, one seed per model.")
display(Markdown(setting + "\n\n" + "\n".join(f"- {text}" for text in findings.values())))
