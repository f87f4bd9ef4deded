# %% [markdown]
# # 02 · The LeNet-5 architecture study
#
# `python -m pipeline.study` trains every registered variant × several seeds on one dataset with one
# recipe and one split, and writes `results.csv` (one row per variant and seed). This notebook reads
# the results of the full studies committed under `notebooks/study_results/` (the `RESULTS` parameter
# names another folder); it never trains in the full setting. With `QUICK = True` (what the tests run)
# it runs a tiny study itself in a temporary folder: its numbers are not results, only a check that the
# notebook works.
#
# Each variant differs from `lenet5` (ReLU, average pooling, 6/16 channels, no padding) in one respect
# (the table below is read from the registry): `-max` max pooling, `-tanh`/`-sigmoid` activation,
# `-classic` the 1998 network (tanh, average pooling, input padded to 32×32), `-deep` an extra 3×3 conv,
# `-wide` more channels, `-bn` batch norm, `-dropout` dropout. The seed fixes the initial weights, batch
# order and augmentation; the split is the same for every run, so runs with one seed are paired.
#
# Every number and every comparison in the text below is computed from the results shown.

# %%
import json
import sys
import tempfile
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

from pipeline.data.near_copies import check_leak, random_split_like
from pipeline.data.public import load_signmnist, near_duplicate_groups
from pipeline.data.spec import DataSpec
from pipeline.data.splits import split_by_group
from pipeline.lenet.model import VARIANTS
from pipeline.training import architecture_study as studies

# %% tags=["parameters"]
QUICK = False  # the quick setting (what the tests run): a tiny study run here instead of the committed results
RESULTS = "notebooks/study_results"  # the full studies (RESULTS/fingers, RESULTS/mnist), relative to the repository
FINGERS = "data/fingers"  # the dataset folder the quick study trains on
STUDY_DIR = None  # quick setting: where the tiny studies run (None: a new temporary folder)
SHARED_DATA = None  # the public sets (mnist/, signmnist/); None: ../shared/data beside the checkout

# %%
REPO = Path(sys.path[0])  # inserted above
plt.rcParams.update({"figure.dpi": 70, "savefig.dpi": 70, "font.size": 9})
sns.set_theme(style="whitegrid", context="notebook", rc={"figure.dpi": 70})
pd.set_option("display.precision", 3)
shared = Path(SHARED_DATA) if SHARED_DATA else REPO.parent / "shared" / "data"
SPECS = {"fingers": DataSpec("hands", (str(REPO / FINGERS),)), "mnist": DataSpec("mnist", (str(shared / "mnist"),))}
committed = REPO / RESULTS
if QUICK:
    scratch = Path(STUDY_DIR) if STUDY_DIR else Path(tempfile.mkdtemp(prefix="handcam-study-"))
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and steady on a shared machine


def study_folder(name: str) -> Path | None:
    """The committed full study (full setting), or a tiny study run here (quick setting); None when there is neither."""
    if not QUICK:
        folder = committed / name
        if (folder / "results.csv").is_file():
            return folder
        print(f"{name}: no committed results in {folder}; run `python -m pipeline.study ... --out {RESULTS}/{name}`")
        return None
    spec = SPECS[name]
    if not all(Path(p).exists() for p in spec.paths):
        print(f"{name}: data not found ({', '.join(spec.paths)}): skipped")
        return None
    config = studies.default_config(spec, quick=True)  # what `python -m pipeline.study --quick` runs, smaller still
    config = replace(config, variants=("lenet5", "lenet5-bn"), train=replace(config.train, epochs=2),
                     limit=800 if spec.hands else 2000)
    studies.run_study(config, scratch / name, progress=False, log=lambda *_: None)
    return scratch / name


folders = {name: folder for name in SPECS if (folder := study_folder(name)) is not None}
results = {name: studies.read_results(folder) for name, folder in folders.items()}
summaries = {name: studies.summarise(table) for name, table in results.items()}
for name, folder in folders.items():
    where = folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder
    print(f"{name}: {'QUICK study (not a result)' if QUICK else 'full study'} in {where}, {len(results[name])} runs")
variants = pd.DataFrame({"differs from lenet5 in": {v: ", ".join(f"{k}={val}" for k, val in c.items()) or "(the reference)"
                                                   for v, c in VARIANTS.items()}})
variants.index.name = "variant"
display(variants)


# %%
# Helpers for the computed text.
def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


def pm(s: pd.Series, digits: int = 1) -> str:
    """Mean ± sd test accuracy of a summary row, in %."""
    sd = f" ± {100 * s.test_sd:.{digits}f}" if pd.notna(s.test_sd) else ""
    return f"{100 * s.test_mean:.{digits}f}{sd} %"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def listing(items: list[str], empty: str = "none") -> str:
    return empty if not items else items[0] if len(items) == 1 else "; ".join(items[:-1]) + "; and " + items[-1]


def test_items(accuracies) -> int | None:
    """The size of the test split, read off the accuracies: each is k / n for one n (the smallest n that fits them all)."""
    acc = np.asarray(accuracies, np.float64)[:, None]
    n = np.arange(1, 100_001)
    fits = (np.abs(acc * n - np.round(acc * n)) < 1e-3 + 1e-6 * n).all(0)
    return int(n[fits][0]) if fits.any() else None


DELTA = "mean Δ vs lenet5 (points)"


def paired(name: str) -> pd.DataFrame | None:
    """Each variant's test accuracy minus `lenet5`'s with the same seed, in points, over the seeds."""
    table = results[name].pivot(index="seed", columns="variant", values="test_acc")
    if "lenet5" not in table:
        return None
    diff = table.sub(table["lenet5"], axis=0).drop(columns="lenet5")
    out = pd.DataFrame({DELTA: 100 * diff.mean(), "sd": 100 * diff.std(), "min": 100 * diff.min(),
                        "max": 100 * diff.max(), "seeds better": (diff > 0).sum(), "seeds": diff.count()})
    return out.sort_values(DELTA, ascending=False)


def verdicts(name: str) -> dict[str, list[str]]:
    """Variants better / worse than `lenet5` with every seed (at least two), and the rest."""
    table = paired(name)
    if table is None:
        return {"better": [], "worse": [], "noise": []}
    many = table["seeds"] >= 2
    better, worse = many & (table["min"] > 0), many & (table["max"] < 0)
    return {"better": table.index[better].tolist(), "worse": table.index[worse].tolist(),
            "noise": table.index[~better & ~worse].tolist()}


def findings(name: str, digits: int = 1) -> list[str]:
    """What the study says about each variant against `lenet5`, as Markdown bullets."""
    s, d, v, table = summaries[name], paired(name), verdicts(name), results[name]
    if d is None:
        return ["(no `lenet5` runs: nothing to pair with)"]
    base = s.loc["lenet5"]
    seeds = int(d["seeds"].max())

    def cost(variant: str) -> str:
        r = s.loc[variant]
        extra = int(r.params - base.params)
        params = f"{extra:+,} parameters ({r.params / base.params:.2f}×)" if extra else "no extra parameters"
        return f"{params} and {r.macs / base.macs:.2f}× the multiply-adds"

    better = [f"`{x}` ({pm(s.loc[x], digits)}, {d.loc[x, DELTA]:+.{digits}f} points on average, for {cost(x)})"
              for x in v["better"]]
    worse = [f"`{x}` ({pm(s.loc[x], digits)}, {-d.loc[x, 'max']:.{digits}f} to {-d.loc[x, 'min']:.{digits}f} points below)"
             for x in v["worse"]]
    lines = [f"`lenet5` itself: {pm(base, digits)} over {plural(int(base.seeds), 'seed')}.",
             f"**Better than `lenet5` with every one of the {seeds} seeds**: {listing(better)}.",
             f"**Worse with every seed**: {listing(worse)}."]
    if v["noise"]:
        noise = d.loc[v["noise"], DELTA]
        lines.append(f"**Within the seed noise** (ahead with some seeds, behind or level with others, or one seed only): "
                     f"{', '.join(f'`{x}`' for x in v['noise'])}; their mean differences from `lenet5` run from "
                     f"{noise.min():+.{digits}f} to {noise.max():+.{digits}f} points. {plural(seeds, 'seed')} cannot rank them.")
    if "lenet5-classic" in s.index:
        c = d.loc["lenet5-classic"]
        verdict = ("better than" if "lenet5-classic" in v["better"] else "worse than" if "lenet5-classic" in v["worse"]
                   else "no better than")
        lines.append(f"**The 1998 recipe (`lenet5-classic`: tanh, average pooling, 32×32 input) is {verdict} ReLU** here: "
                     f"{pm(s.loc['lenet5-classic'], digits)}, {c[DELTA]:+.{digits}f} points, ahead with "
                     f"{int(c['seeds better'])} of {int(c['seeds'])} seeds.")
    late, early = s["best_epoch"].idxmax(), s["best_epoch"].idxmin()
    lines.append(f"**Best epochs** (chosen on validation) come latest for `{late}` ({s.loc[late, 'best_epoch']:.0f} of "
                 f"{s.loc[late, 'epochs_run']:.0f} run, on average) and earliest for `{early}` ({s.loc[early, 'best_epoch']:.0f} "
                 f"of {s.loc[early, 'epochs_run']:.0f}); the budget was {table['epochs_run'].max():.0f} epochs.")
    gap, full = table["val_acc"].mean() - table["test_acc"].mean(), (table["val_acc"] >= 1).mean()
    text = (f"**Validation against test**: validation accuracy is {100 * abs(gap):.{digits}f} points "
            f"{'above' if gap >= 0 else 'below'} test accuracy on average ({pct(table['val_acc'].mean(), digits)} against "
            f"{pct(table['test_acc'].mean(), digits)}).")
    if full > 0:
        text += (f" {pct(full)} of the runs reach 100 % validation accuracy, after which the best epoch is chosen by "
                 "validation loss alone" + ("; a harder or larger validation split would make early stopping more informative."
                                            if full >= 0.5 else "."))
    lines.append(text)
    return lines


# %% [markdown]
# ## Fingers: held-out recording sessions
#
# The test split is made of whole recording sessions the models never saw; the table is mean ± sd over
# seeds. Below it, what the study folder records about its data and recipe (from its `summary.md`).

# %%
def recorded(name: str, starts=("Hand crops", "MNIST", "Recipe", "Latency", "Produced", "```")) -> None:
    """The paragraphs of the study's own summary.md that say what it ran (data, recipe, command)."""
    path = folders[name] / "summary.md"
    notes = path.read_text().split("\n\n") if path.is_file() else []
    kept = [n for n in notes if n.startswith(starts)]
    if kept:
        display(Markdown("\n\n".join(kept)))


if "fingers" in results:
    display(Markdown(studies.summary_table(summaries["fingers"], "fingers")))
    recorded("fingers")


# %%
def plot_study(name: str) -> None:
    table, summary = results[name], summaries[name]
    order = summary.sort_values("test_mean").index.tolist()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.32 * len(order) + 1.8))
    ax = axes[0]
    sns.stripplot(data=table.assign(acc=100 * table["test_acc"]), y="variant", x="acc", order=order, ax=ax,
                  color="0.4", size=4, jitter=0.15)
    ax.errorbar(100 * summary.loc[order, "test_mean"], range(len(order)), xerr=100 * summary.loc[order, "test_sd"].fillna(0),
                fmt="D", color="tab:blue", capsize=3)
    ax.set(xlabel="test accuracy % (dots: seeds; diamond: mean ± sd)", ylabel="", title=f"{name}: accuracy per variant")
    ax = axes[1]
    ax.errorbar(summary["params"], 100 * summary["test_mean"], yerr=100 * summary["test_sd"].fillna(0), fmt="o", capsize=3)
    for v, r in summary.iterrows():
        ax.annotate(v.replace("lenet5-", ""), (r.params, 100 * r.test_mean), xytext=(4, 3), textcoords="offset points",
                    fontsize=7)
    ax.set(xscale="log", xlabel="parameters (log)", ylabel="test accuracy %", title="accuracy vs parameters")
    plt.tight_layout()
    plt.show()


def seed_spread(name: str) -> str:
    table = results[name]
    spread = table.groupby("variant")["test_acc"].agg(lambda a: a.max() - a.min())
    n = test_items(table["test_acc"])
    text = (f"Seeds move a variant's test accuracy on `{name}` by up to {100 * spread.max():.1f} points (`{spread.idxmax()}`; "
            f"median over variants {100 * spread.median():.1f})")
    if n:
        text += (f". The test split holds {n:,} items (read off the accuracies, each a multiple of 1/{n}), so one item "
                 f"is {100 / n:.2f} points")
    return text + "."


if "fingers" in results:
    plot_study("fingers")
    display(Markdown(seed_spread("fingers") + " An item the models find hard weighs on every variant alike."))

# %% [markdown]
# The paired view below removes what all runs of one seed share: it is each variant's accuracy minus
# `lenet5`'s with the same seed (same split, same batch order and augmentation), in points.

# %%
if "fingers" in results:
    display(paired("fingers"))
    what = "quick study (not a result)" if QUICK else "full study"
    display(Markdown(f"**What the {what} of `fingers` says:**\n\n" + "\n".join(f"- {line}" for line in findings("fingers"))))


# %%
def cost(name: str) -> None:
    s, table = summaries[name], results[name]
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.6))
    for ax, col, label in zip(axes, ["macs", "latency_b256_ms", "train_s"],
                              ["multiply-adds per image", "latency, batch 256 (ms)", "train time per run (s)"]):
        ax.scatter(s[col], 100 * s["test_mean"])
        for v, r in s.iterrows():
            ax.annotate(v.replace("lenet5-", ""), (r[col], 100 * r.test_mean), xytext=(3, 2), textcoords="offset points",
                        fontsize=7)
        ax.set(xlabel=label, ylabel="test acc %" if ax is axes[0] else "")
    fig.suptitle(f"{name}: what the accuracy costs (CPU, {int(table['threads'].max())} torch threads)")
    plt.tight_layout()
    plt.show()
    text = (f"At batch 1 every variant takes {s['latency_b1_ms'].min():.2f}–{s['latency_b1_ms'].max():.2f} ms (median over "
            f"seeds); at batch 256 {s['latency_b256_ms'].min():.1f}–{s['latency_b256_ms'].max():.1f} ms.")
    if "lenet5" in s.index:
        heavy, base = s["macs"].idxmax(), s.loc["lenet5"]
        if heavy != "lenet5":
            r = s.loc[heavy]
            text += (f" `{heavy}` does {r.macs / base.macs:.1f}× the multiply-adds of `lenet5` in "
                     f"{r.latency_b1_ms / base.latency_b1_ms:.1f}× its time at batch 1 and "
                     f"{r.latency_b256_ms / base.latency_b256_ms:.1f}× at batch 256: the smaller the batch, the more a network "
                     "this small is dominated by per-layer call overhead rather than by its multiply-adds.")
    loads = table["load_avg"].dropna()
    if len(loads):
        text += (f" The 1-minute load average was {loads.min():.1f}–{loads.max():.1f} while the latencies were taken "
                 "(`load_avg` in `results.csv`): on a shared machine such figures move between measurements, so compare "
                 "them within one study, not across machines.")
    display(Markdown(text))


if "fingers" in results:
    cost("fingers")

# %% [markdown]
# ## MNIST, against LeNet-5 as published
#
# MNIST keeps its official split (the original test digits; validation is a seeded 10 % of the
# training digits). The training images of the copy beside this repository are a re-toned copy of
# MNIST's, while the test digits and all labels are the originals (see `../shared/data/README.md`).
# LeCun et al. (1998) report LeNet-5's test error without distortions, after 20 passes
# (`LENET5_1998_ERROR` in `pipeline.training.architecture_study`).

# %%
if "mnist" in results:
    display(Markdown(studies.summary_table(summaries["mnist"], "mnist")))
    s = summaries["mnist"]
    paper = 100 * studies.LENET5_1998_ERROR
    errors = pd.DataFrame({"test error %": 100 * (1 - s["test_mean"]), "sd": 100 * s["test_sd"],
                           f"vs 1998 ({paper:.2f} %)": 100 * (1 - s["test_mean"]) - paper}).sort_values("test error %")
    display(errors)
    recorded("mnist", starts=("MNIST", "Recipe", "Produced", "```"))
    plot_study("mnist")
else:
    print("MNIST: no results (the data or the committed study is missing): skipped")

# %%
if "mnist" in results:
    display(paired("mnist"))
    s, table = summaries["mnist"], results["mnist"]
    err = 100 * (1 - s["test_mean"])
    ahead = err[err < paper].index.tolist()
    lines = findings("mnist", digits=2)
    text = (f"Against the paper: LeNet-5 reached {paper:.2f} % in 1998 after 20 passes; here the runs stop after "
            f"{table['epochs_run'].mean():.0f} epochs on average. {len(ahead)} of {len(err)} variants beat it on average"
            + (f" ({', '.join(f'`{x}` {err[x]:.2f} %' for x in ahead)})" if ahead else "") + ".")
    for v in ("lenet5", "lenet5-classic"):
        if v in err:
            text += f" `{v}`: {err[v]:.2f} %, {err[v] - paper:+.2f} points from the paper."
    if "lenet5-classic" in err:
        text += (" `lenet5-classic` is the nearest to the 1998 network (tanh, average pooling, 32×32 input) but not it: "
                 "full connections between conv1 and conv2, a linear output instead of RBF units, and AdamW instead of the "
                 "paper's stochastic diagonal Levenberg-Marquardt.")
    loads = table["train_load_avg"].dropna()
    if len(loads):
        busy = loads.max() > table["threads"].max() + 1
        text += (f" The 1-minute load average while the runs trained was {loads.min():.1f}–{loads.max():.1f} "
                 f"({int(table['threads'].max())} torch threads)" + ("; read the train times as rough." if busy else "."))
    what = "quick study (not a result)" if QUICK else "full study"
    display(Markdown(f"**What the {what} of MNIST says:** {seed_spread('mnist')}\n\n"
                     + "\n".join(f"- {line}" for line in lines) + "\n\n" + text))

# %% [markdown]
# ## Sign-MNIST: only its test split, and its near-copies
#
# Only Sign-MNIST's test split exists beside this repository, so any Sign-MNIST study carves train,
# validation and test out of it. Its rows are augmented copies of far fewer photos. A plain pixel
# correlation (> 0.9 on 14×14) groups many of them, but copies cropped a few pixels off or slightly
# zoomed fall into different groups; `pipeline.data.near_copies` compares central windows over ±3 px
# shifts and 0.9–1.1 zooms, and `load_signmnist` links those copies too. The check below measures, for
# sampled test items of a split, the best match among the training items, under the plain grouping,
# under the copy groups, and for a random split. The full setting reads the committed
# `signmnist_leak.json` (a full run on 300 items; recomputed when it is missing); the quick one
# recomputes on 40 items when the data is there, and shows the committed check when it is not.

# %%
leak_file = committed / "signmnist_leak.json"
sign_path = shared / "signmnist" / "sign_mnist_test.csv.gz"
leak = None
if sign_path.is_file() and (QUICK or not leak_file.is_file()):
    sign = load_signmnist(sign_path)
    images, labels = sign.images[:, 0].numpy(), sign.labels.numpy()
    n = 40 if QUICK else 300
    rows = []
    for name, groups in (("plain correlation groups (before)", near_duplicate_groups(images).astype(str)),
                         ("copy groups (now)", sign.groups)):
        tr, va, te = split_by_group(groups, labels, seed=0)
        rows.append(check_leak(images, labels, tr, te, name, sample=n).to_dict())
    tr, va, te = random_split_like(len(labels), len(va), len(te))
    rows.append(check_leak(images, labels, tr, te, "random split", sample=n).to_dict())
    leak = pd.DataFrame(rows)
elif leak_file.is_file():
    if QUICK:
        print(f"Sign-MNIST not found ({sign_path}): showing the committed check")
    leak = pd.DataFrame(json.loads(leak_file.read_text()))
else:
    print(f"Sign-MNIST not found ({sign_path}) and no committed check: skipped")
if leak is not None:
    display(leak.set_index("split"))

# %%
if leak is not None:
    by = leak.set_index("split")
    before, now = by.iloc[0], by.iloc[1]
    display(Markdown(
        f"`other_class_max` is the best match between a test item and a training item of *another* letter: what unrelated "
        f"photos reach on this measure ({by['other_class_max'].min():.2f}–{by['other_class_max'].max():.2f} here). "
        f"Under the plain grouping {pct(before.over_095)} of the {int(before.test_items)} sampled test items had a training copy "
        f"above 0.95 and {pct(before.over_090)} one above 0.9; with the copy groups {pct(now.over_095)} and {pct(now.over_090)}, "
        f"and the closest match reaches {now.nearest_max:.2f}, "
        + ("no closer than images of different letters get" if now.nearest_max <= by["other_class_max"].max() + 0.02
           else "closer than images of different letters get: copies still cross the split")
        + ". What is left above 0.9 may be the same hand in the same room in another photo, or the same photo cropped more "
        "differently than the measure allows: the data has no person or session ids, so a split by signer, the split that "
        "would really test generalisation, cannot be made from this file."))
