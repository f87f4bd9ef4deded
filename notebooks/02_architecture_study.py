# %% [markdown]
# # 02 · The LeNet-5 architecture study
#
# `python -m pipeline.study` trains every registered variant on several **group splits** (whole
# recording sessions or people held out) with several **seeds**, one recipe for all, and writes
# `results.csv` (one row per variant, split and seed). On hand data it adds the **landmark-MLP
# baseline** (`landmark-mlp`: the popular MediaPipe-gesture classifier on the 21 landmarks, no
# pixels) on the same splits. This notebook reads the full studies committed under
# `notebooks/study_results/` (the `RESULTS` parameter names another folder); it never trains in the
# full setting. With `QUICK = True` (what the tests run) it runs a tiny study itself in a temporary
# folder: its numbers are not results, only a check that the notebook works.
#
# Each variant differs from `lenet5` (ReLU, average pooling, two 5×5 conv layers with 6/16 channels,
# hidden fully connected layers 120 and 84, no padding) in one respect; the table below is read from
# the registry. The respects are grouped as the questions they answer: conv depth (`-shallow` one conv
# layer, `-deep` an extra 3×3 conv3), fully connected depth (`-hidden1`, `-hidden3`), kernel size
# (`-k3`, `-k7`; unpadded, so the maps before fc1 shrink as the kernel grows), width (`-narrow`,
# `-wide`), activation (`-tanh`, `-sigmoid`), pooling (`-max`), normalisation and regularisation
# (`-bn`, `-dropout`), and the 1998 network (`-classic`).
#
# **How variants are compared.** Every variant is trained on the same (split, seed) cells, so its test
# accuracy minus `lenet5`'s on a cell is a paired difference (same test items, same batch order and
# augmentation). The interval is a two-stage cluster bootstrap (splits drawn with replacement, then
# seeds within them: cells of one split share their test items, so they are not independent); the
# Wilcoxon signed-rank test treats the cells as independent, so it is read beside the interval, and
# Holm's correction covers the many variants compared. A variant is called better or worse only when its
# 95 % interval excludes zero; with few splits even that is a lead rather than a finding (the last
# bullet of the findings says how far the number of splits lets a test go).
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
REF = studies.REFERENCE
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
                     limit=800 if spec.hands else 2000, splits=(0, 1) if spec.hands else (0,))
    studies.run_study(config, scratch / name, progress=False, log=lambda *_: None)
    return scratch / name


folders = {name: folder for name in SPECS if (folder := study_folder(name)) is not None}
results = {name: studies.read_results(folder) for name, folder in folders.items()}
summaries = {name: studies.summarise(table) for name, table in results.items()}
comparisons = {name: studies.compare_variants(table) for name, table in results.items()}
for name, folder in folders.items():
    where = folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder
    table = results[name]
    print(f"{name}: {'QUICK study (not a result)' if QUICK else 'full study'} in {where}, {len(table)} runs "
          f"({table['variant'].nunique()} variants x {table['split'].nunique()} splits x {table['seed'].nunique()} seeds)")
variants = pd.DataFrame({"differs from lenet5 in": {v: ", ".join(f"{k}={val}" for k, val in c.items()) or "(the reference)"
                                                   for v, c in VARIANTS.items()}})
variants.loc[studies.MLP] = "not a CNN: 42 landmark coordinates -> 20 -> 10 -> classes (its own recipe)"
variants.index.name = "variant"
display(variants)


# %%
# Helpers for the computed text.
def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


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


def acc_ci(r: pd.Series, digits: int = 1) -> str:
    """A comparison row's mean test accuracy and its interval, in %."""
    return f"{100 * r.acc_mean:.{digits}f} % [{100 * r.acc_low:.{digits}f}, {100 * r.acc_high:.{digits}f}]"


def diff_ci(r: pd.Series, digits: int = 2) -> str:
    """A comparison row's paired difference from lenet5 and its interval, in points."""
    return f"{100 * r.diff_mean:+.{digits}f} points [{100 * r.diff_low:+.{digits}f}, {100 * r.diff_high:+.{digits}f}]"


def verdicts(name: str) -> dict[str, list[str]]:
    """Variants whose 95 % interval of the paired difference lies above zero, below it, or spans it."""
    c = comparisons[name]
    if c.empty or REF not in c.index:
        return {"better": [], "worse": [], "unresolved": []}
    c = c[c["paired"] > 0]
    return {"better": c.index[c["diff_low"] > 0].tolist(), "worse": c.index[c["diff_high"] < 0].tolist(),
            "unresolved": c.index[(c["diff_low"] <= 0) & (c["diff_high"] >= 0)].tolist()}


def cost(name: str, variant: str) -> str:
    s = summaries[name]
    r, base = s.loc[variant], s.loc[REF]
    extra = int(r.params - base.params)
    params = f"{extra:+,} parameters ({r.params / base.params:.2f}×)" if extra else "the same parameters"
    ratio = r.macs / base.macs
    return f"{params}, {f'{ratio:.2f}×' if ratio >= 0.01 else f'1/{1 / ratio:.0f}'} the multiply-adds"


def findings(name: str, digits: int = 1) -> list[str]:
    """What the study says about each variant against lenet5, as Markdown bullets."""
    c, v, table = comparisons[name], verdicts(name), results[name]
    if c.empty or REF not in c.index:
        return [f"(no `{REF}` runs: nothing to pair with)"]
    cells = int(c["paired"].max())
    base = c.loc[REF]
    better = [f"`{x}` ({diff_ci(c.loc[x], digits + 1)}, Holm p {studies.format_p(c.loc[x, 'holm_p'])}; {cost(name, x)})" for x in v["better"]]
    worse = [f"`{x}` ({diff_ci(c.loc[x], digits + 1)}, Holm p {studies.format_p(c.loc[x, 'holm_p'])})" for x in v["worse"]]
    lines = [f"`{REF}` itself: {acc_ci(base, digits)} over {plural(int(base.cells), 'run')} "
             f"({plural(table['split'].nunique(), 'split')} × {plural(table['seed'].nunique(), 'seed')}).",
             f"**Better than `{REF}`** (interval above zero, over {cells} paired cells): {listing(better)}.",
             f"**Worse**: {listing(worse)}."]
    if v["unresolved"]:
        u = c.loc[v["unresolved"]]
        lines.append(f"**Not distinguishable from `{REF}`** (interval spans zero): "
                     f"{', '.join(f'`{x}`' for x in v['unresolved'])}; their mean differences run from "
                     f"{100 * u['diff_mean'].min():+.{digits}f} to {100 * u['diff_mean'].max():+.{digits}f} points, "
                     f"and their intervals are {100 * (u['diff_high'] - u['diff_low']).min():.1f}–"
                     f"{100 * (u['diff_high'] - u['diff_low']).max():.1f} points wide.")
    significant = c.index[c["holm_p"] < 0.05].tolist()
    lines.append(f"**Wilcoxon after Holm's correction** (p < 0.05): {listing([f'`{x}`' for x in significant])}"
                 + (" (the test treats cells of one split as independent, so it can be more confident than the interval)"
                    if set(significant) - set(v["better"]) - set(v["worse"]) else "") + ".")
    splits = table["split"].nunique()
    if splits > 1:
        lines.append(f"**How much {plural(splits, 'split')} can show**: both the interval and the Wilcoxon test lean on the "
                     f"seeds within a split, and a percentile bootstrap over {splits} clusters is on the narrow side. A test "
                     f"that takes the split as the unit (the signs of the {splits} split means, exactly) can reach at best "
                     f"p = {2 / 2 ** splits:.3f}"
                     + (", so no difference here is established at the level of held-out session sets" if 2 / 2 ** splits > 0.05
                        else "") + "; read a difference whose interval only just clears zero as a lead, not a finding.")
    return lines


def sources_of_spread(name: str, variant: str = REF) -> str:
    """How much of a variant's spread comes from the split (which sessions are held out) and how much from the seed."""
    cells = studies._cells(results[name], variant, "test_acc")
    if cells.shape[0] < 2 or cells.shape[1] < 2:
        return ""
    between = cells.mean(axis=1).std(ddof=1)
    within = cells.std(axis=1, ddof=1).mean()
    low, high = cells.mean(axis=1).idxmin(), cells.mean(axis=1).idxmax()
    text = (f"For `{variant}` the split matters {'more' if between > within else 'less'} than the seed: its split means "
            f"spread with sd {100 * between:.1f} points (split {low}: {pct(cells.mean(axis=1)[low], 1)}, split {high}: "
            f"{pct(cells.mean(axis=1)[high], 1)}), while seeds within a split spread with sd {100 * within:.1f} points "
            "on average.")
    if between > within:
        text += " One split alone would have measured mostly which sessions it happened to hold out."
    return text


# %% [markdown]
# ## Fingers: held-out recording sessions, five ways
#
# The paired table first (each variant against `lenet5`, with intervals), then the per-variant table
# with its cost, then what the study folder records about its data and recipe (from its `summary.md`).

# %%
def recorded(name: str, starts=("Hand crops", "MNIST", "Recipe", "Latency", "Produced", "```")) -> None:
    """The paragraphs of the study's own summary.md that say what it ran (data, recipe, command)."""
    path = folders[name] / "summary.md"
    notes = path.read_text().split("\n\n") if path.is_file() else []
    kept = [n for n in notes if n.startswith(starts)]
    if kept:
        display(Markdown("\n\n".join(kept)))


if "fingers" in results:
    display(Markdown(studies.paired_table(comparisons["fingers"])))
    display(Markdown(studies.summary_table(summaries["fingers"], "fingers")))
    recorded("fingers")


# %%
def plot_study(name: str) -> None:
    table, summary, c = results[name], summaries[name], comparisons[name]
    order = summary.sort_values("test_mean").index.tolist()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.3 * len(order) + 1.8))
    ax = axes[0]
    sns.stripplot(data=table.assign(acc=100 * table["test_acc"]), y="variant", x="acc", order=order, ax=ax,
                  hue="split", palette="tab10", size=3.5, jitter=0.15, legend=table["split"].nunique() > 1)
    ci = c.loc[order]
    ax.errorbar(100 * ci["acc_mean"], range(len(order)), xerr=[100 * (ci["acc_mean"] - ci["acc_low"]),
                                                              100 * (ci["acc_high"] - ci["acc_mean"])],
                fmt="D", color="black", capsize=3)
    ax.set(xlabel="test accuracy % (dots: runs by split; diamond: mean, 95 % CI)", ylabel="",
           title=f"{name}: accuracy per variant")
    ax = axes[1]
    shown = c[c["paired"] > 0].sort_values("diff_mean")
    if len(shown):
        for y, (_, r) in enumerate(shown.iterrows()):
            colour = "tab:green" if r.diff_low > 0 else "tab:red" if r.diff_high < 0 else "tab:blue"
            ax.errorbar(100 * r.diff_mean, y, xerr=[[100 * (r.diff_mean - r.diff_low)], [100 * (r.diff_high - r.diff_mean)]],
                        fmt="D", color=colour, capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(shown)), shown.index.tolist())
    ax.set(xlabel=f"Δ vs {REF}, points (mean, 95 % CI)", title=f"paired with {REF} (green: above 0, red: below)")
    plt.tight_layout()
    plt.show()


def seed_spread(name: str) -> str:
    table = results[name]
    spread = table.groupby("variant")["test_acc"].agg(lambda a: a.max() - a.min())
    n = test_items(table["test_acc"])
    text = (f"Across its runs a variant's test accuracy on `{name}` moves by up to {100 * spread.max():.1f} points "
            f"(`{spread.idxmax()}`; median over variants {100 * spread.median():.1f})")
    if n:
        text += (f". The test splits hold {n:,} items each (read off the accuracies, each a multiple of 1/{n}), so one item "
                 f"is {100 / n:.2f} points")
    return text + "."


if "fingers" in results:
    plot_study("fingers")
    display(Markdown(seed_spread("fingers") + " " + sources_of_spread("fingers")))
    what = "quick study (not a result)" if QUICK else "full study"
    display(Markdown(f"**What the {what} of `fingers` says:**\n\n" + "\n".join(f"- {line}" for line in findings("fingers"))))

# %% [markdown]
# ### Question by question
#
# Each design question in turn: the variants that answer it, with their paired difference from
# `lenet5` and their cost.

# %%
QUESTIONS = {
    "conv depth (one conv layer fewer / one more)": ["lenet5-shallow", "lenet5-deep"],
    "fully connected depth (one hidden layer fewer / one more)": ["lenet5-hidden1", "lenet5-hidden3"],
    "kernel size (3 / 7 against 5)": ["lenet5-k3", "lenet5-k7"],
    "width (half / double the channels)": ["lenet5-narrow", "lenet5-wide"],
    "activation (against ReLU)": ["lenet5-tanh", "lenet5-sigmoid"],
    "pooling (max against average)": ["lenet5-max"],
    "normalisation and regularisation": ["lenet5-bn", "lenet5-dropout"],
    "the 1998 network (tanh, average pooling, 32×32 input)": ["lenet5-classic"],
    "no pixels at all: the landmark MLP": [studies.MLP],
}


def by_question(name: str) -> None:
    c = comparisons[name]
    v = verdicts(name)
    lines = []
    for question, members in QUESTIONS.items():
        present = [m for m in members if m in c.index and c.loc[m, "paired"] > 0]
        if not present:
            continue
        parts = []
        for m in present:
            word = "better" if m in v["better"] else "worse" if m in v["worse"] else "not distinguishable"
            parts.append(f"`{m}` {diff_ci(c.loc[m])}: {word}; {cost(name, m)}")
        lines.append(f"- **{question}**: " + "; ".join(parts) + ".")
    display(Markdown("\n".join(lines) if lines else "(no variant of these questions in this study)"))


if "fingers" in results:
    by_question("fingers")


# %%
def cost_plot(name: str) -> None:
    s, table = summaries[name], results[name]
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8))
    for ax, col, label in zip(axes, ["macs", "latency_b256_ms", "train_s"],
                              ["multiply-adds per image (log)", "latency, batch 256 (ms, log)", "train time per run (s)"]):
        ax.scatter(s[col], 100 * s["test_mean"])
        for v, r in s.iterrows():
            ax.annotate(v.replace("lenet5-", ""), (r[col], 100 * r.test_mean), xytext=(3, 2), textcoords="offset points",
                        fontsize=7)
        ax.set(xlabel=label, ylabel="test acc %" if ax is axes[0] else "", xscale="log" if col != "train_s" else "linear")
    fig.suptitle(f"{name}: what the accuracy costs (CPU, {int(table['threads'].max())} torch threads)")
    plt.tight_layout()
    plt.show()
    cnn = s.drop(index=[studies.MLP], errors="ignore")
    text = (f"At batch 1 every LeNet variant takes {cnn['latency_b1_ms'].min():.2f}–{cnn['latency_b1_ms'].max():.2f} ms "
            f"(median over runs); at batch 256 {cnn['latency_b256_ms'].min():.1f}–{cnn['latency_b256_ms'].max():.1f} ms.")
    if REF in s.index:
        heavy, base = cnn["macs"].idxmax(), s.loc[REF]
        if heavy != REF:
            r = s.loc[heavy]
            text += (f" `{heavy}` does {r.macs / base.macs:.1f}× the multiply-adds of `{REF}` in "
                     f"{r.latency_b1_ms / base.latency_b1_ms:.1f}× its time at batch 1 and "
                     f"{r.latency_b256_ms / base.latency_b256_ms:.1f}× at batch 256: the smaller the batch, the more a network "
                     "this small is dominated by per-layer call overhead rather than by its multiply-adds.")
    if studies.MLP in s.index:
        r = s.loc[studies.MLP]
        text += (f" The landmark MLP has {int(r.params):,} parameters and {int(r.macs):,} multiply-adds and takes "
                 f"{r.latency_b1_ms:.3f} ms at batch 1; both it and the CNN need MediaPipe's landmarks first (the hand "
                 "landmarker is not timed here).")
    loads = table["load_avg"].dropna()
    if len(loads):
        text += (f" The 1-minute load average was {loads.min():.1f}–{loads.max():.1f} while the latencies were taken "
                 "(`load_avg` in `results.csv`): on a shared machine such figures move between measurements, so compare "
                 "them within one study, not across machines.")
    display(Markdown(text))


if "fingers" in results:
    cost_plot("fingers")

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
    display(Markdown(studies.paired_table(comparisons["mnist"], digits=2)))
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
