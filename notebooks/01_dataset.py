# %% [markdown]
# # 01 · A hand-crop dataset
#
# A dataset folder made by `python -m pipeline.collect` holds one 28×28 hand crop per hand found in a
# photo or video frame, and one row of `index.csv` per crop: label, **group** (the recording session),
# source, MediaPipe's handedness and score, the 21 landmarks in frame pixels and the affine from frame
# to crop.
#
# What this notebook checks: how balanced the classes are, how the samples fall into sessions (the
# unit every split is made by), what the landmarks say about pose and size, and what the network sees.
# Every figure and every sentence about the data below is computed from the dataset named in the
# parameters, so it stays true when the data changes.

# %%
import sys
from pathlib import Path

# The repository root, found from the working folder (notebooks/execute.py runs the notebooks in notebooks/).
sys.path.insert(0, str(next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").is_file())))

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from pipeline.data.load import affines_of, landmarks_of, load_dataset
from pipeline.preprocess.crops import transform_points
from pipeline.preprocess.hands import HAND_CONNECTIONS

# %% tags=["parameters"]
QUICK = False  # the quick setting (what the tests run): a smaller mosaic
DATASET = "data/fingers"  # the dataset folder, relative to the repository root (or absolute)

# %%
REPO = Path(sys.path[0])  # inserted above
plt.rcParams.update({"figure.dpi": 70, "savefig.dpi": 70, "font.size": 9})
sns.set_theme(style="whitegrid", context="notebook", rc={"figure.dpi": 70})
pd.set_option("display.precision", 3)


def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


def names(items) -> str:
    """`a`, `b` and `c`."""
    items = [f"`{i}`" for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


root = REPO / DATASET
data = load_dataset(root)
labels = data.label_names
index = data.index.assign(label=pd.Categorical(data.index["label"], labels, ordered=True))
side = data.images.shape[-1]
print(f"{len(data)} crops of {side}x{side} px, {len(labels)} classes, {index['group'].nunique()} groups; "
      f"crop settings: {data.settings.to_json()}")
notice = root / "NOTICE.md"
source = next((p for p in notice.read_text().split("\n\n")[1:] if p.strip()), "") if notice.is_file() else ""
display(Markdown(f"`{DATASET}`: **{len(data):,} hand crops** of {len(labels)} classes ({names(labels)}) in "
                 f"{index['group'].nunique()} groups." + (f"\n\n> {' '.join(source.split())}  \n> (from `{DATASET}/NOTICE.md`)"
                                                           if source else "")))

# %% [markdown]
# ## Class balance

# %%
counts = index.groupby(["label", "handedness"], observed=False).size().unstack(fill_value=0)
counts["total"] = counts.sum(axis=1)
counts["share"] = counts["total"] / counts["total"].sum()
display(counts)
fig, ax = plt.subplots(figsize=(6, 2.8))
sns.countplot(data=index, x="label", hue="handedness", ax=ax)
ax.set(title=f"crops per class and MediaPipe handedness (crop mirror rule: {data.settings.mirror})", xlabel="")
plt.show()

# %%
top, bottom = counts["share"].idxmax(), counts["share"].idxmin()
left, mirrored = (index["handedness"] == "Left").mean(), index["mirrored"].astype(bool)
rule = {"chirality": "mirrors every hand whose landmarks turn like a left palm's (a left palm, or a right hand's back)",
        "handedness": "mirrors the hands MediaPipe calls left",
        "none": "mirrors no hand"}.get(data.settings.mirror, f"mirror rule `{data.settings.mirror}`")
display(Markdown(
    f"`{top}` holds {pct(counts.loc[top, 'share'])} of the crops and `{bottom}` {pct(counts.loc[bottom, 'share'])}: "
    f"a model that always answers `{top}` scores {counts.loc[top, 'share']:.2f}, the floor any accuracy here must be "
    f"read against. MediaPipe calls {pct(left)} of the hands left hands. The crop {rule}: it mirrored {pct(mirrored.mean())} "
    f"of the crops ({pct(mirrored[index['handedness'] == 'Left'].mean())} of the left hands, "
    f"{pct(mirrored[index['handedness'] != 'Left'].mean())} of the others)"
    + (", so the thumb is on the same side in every crop." if data.settings.mirror == "chirality" else ".")))

# %% [markdown]
# ## Groups: recording sessions
#
# Frames of one session are near-duplicates (same room, light, clothes, often consecutive frames),
# so splits are made by session, never by frame. A session that holds a single class would teach
# "this room means that class"; the heat map shows how the sessions differ in size and in the classes
# they hold (groups of a single crop, such as lone photos, are pooled in the last row).

# %%
by_group = index.groupby(["group", "label"], observed=False).size().unstack(fill_value=0)
by_group = by_group.loc[by_group.sum(axis=1).sort_values(ascending=False).index]
singles = by_group.sum(axis=1) == 1
sessions = by_group[~singles]
table = pd.concat([sessions, by_group[singles].sum().to_frame(f"{singles.sum()} single crops").T]) if singles.any() else sessions
fig, ax = plt.subplots(figsize=(6, 0.28 * len(table) + 1))
sns.heatmap(table, annot=True, fmt="d", cbar=False, cmap="Blues", ax=ax, annot_kws={"fontsize": 7})
ax.set(title="crops per session and class", xlabel="", ylabel="session")
plt.show()

# %%
sizes = sessions.sum(axis=1)
one_class = sessions.index[(sessions > 0).sum(axis=1) == 1]
all_classes = int(((sessions > 0).sum(axis=1) == len(labels)).sum())
display(Markdown(
    f"{len(sessions)} sessions of more than one crop and {int(singles.sum())} single crops. The largest session, "
    f"`{sizes.idxmax()}`, holds {sizes.max()} crops ({pct(sizes.max() / len(index))} of the dataset); the median one "
    f"{sizes.median():.0f}. {all_classes} of the sessions hold every class; "
    + (f"{len(one_class)} hold{'s' if len(one_class) == 1 else ''} a single class ({names(one_class)})."
       if len(one_class) else "none holds a single class.")))

# %% [markdown]
# ## Landmarks
#
# The landmarks are stored in frame pixels. Mapped through each crop's affine they land on the
# crop grid the network sees: the mean pose per class there shows what the alignment (wrist →
# middle finger pointing up, and the mirror rule of the crop settings) makes of each
# gesture, and the spread shows how much of the crop each class's fingertips cover.

# %%
marks = landmarks_of(index)  # (N, 21, 3) frame pixels
affines = affines_of(index)  # (N, 2, 3) frame -> crop
in_crop = np.stack([transform_points(a, m[:, :2]) for a, m in zip(affines, marks)])  # (N, 21, 2) crop pixels
tips = [4, 8, 12, 16, 20]
fig, axes = plt.subplots(1, len(labels), figsize=(1.5 * len(labels), 1.9), sharex=True, sharey=True, squeeze=False)
for k, (ax, name) in enumerate(zip(axes[0], labels)):
    pts = in_crop[data.labels.numpy() == k]
    if len(pts):
        mean = pts.mean(0)
        ax.imshow(data.images[data.labels == k, 0].float().mean(0), cmap="gray", extent=(0, side, side, 0),
                  interpolation="nearest")
        some = pts[np.random.default_rng(k).choice(len(pts), min(80, len(pts)), replace=False)]
        ax.scatter(some[:, tips, 0].ravel(), some[:, tips, 1].ravel(), s=1, alpha=0.4, color="tab:orange")
        for a, b in HAND_CONNECTIONS:
            ax.plot(mean[[a, b], 0], mean[[a, b], 1], color="tab:cyan", lw=1)
    ax.set(title=name, xlim=(0, side), ylim=(side, 0), xticks=[], yticks=[])
fig.suptitle("mean crop, mean skeleton (cyan) and the fingertips of 80 hands (orange) per class, in crop pixels")
plt.show()

# %%
box = marks[:, :, :2].max(1) - marks[:, :, :2].min(1)
stats = pd.DataFrame({
    "label": index["label"], "group": index["group"], "handedness": index["handedness"],
    "score": index["score"],
    "hand size (% of frame width)": 100 * box.max(1) / index["width"],
    "palm length px": np.linalg.norm(marks[:, 9, :2] - marks[:, 0, :2], axis=1),
    # How far the hand leans in the photo: the angle of wrist -> middle-finger base from straight up (the crop undoes it).
    "lean (degrees)": np.degrees(np.arctan2(marks[:, 9, 0] - marks[:, 0, 0], marks[:, 0, 1] - marks[:, 9, 1])),
})
columns = ["score", "hand size (% of frame width)", "palm length px", "lean (degrees)"]
per_class = stats.groupby("label", observed=False)[columns].agg(["mean", "std"])
display(per_class)
BIG = 40  # sessions with at least this many crops get a box
big = stats["group"].map(stats["group"].value_counts()) >= BIG
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
sns.histplot(stats, x="score", hue="handedness", bins=30, ax=axes[0], element="step")
axes[0].set_title("MediaPipe hand score")
if big.any():
    sns.boxplot(data=stats[big], y="group", x="hand size (% of frame width)", ax=axes[1], fliersize=1)
axes[1].set_title(f"hand size per session (sessions with ≥ {BIG} crops)")
plt.tight_layout()
plt.show()

# %%
score = per_class[("score", "mean")]
size = per_class[("hand size (% of frame width)", "mean")]
by_session = stats.groupby("group")["hand size (% of frame width)"]
session_means = by_session.mean()[by_session.size() >= BIG]
within = by_session.std()[by_session.size() >= BIG].mean()
lean = stats["lean (degrees)"]
display(Markdown(
    f"MediaPipe's mean score per class runs from {score.min():.2f} (`{score.idxmin()}`) to {score.max():.2f} "
    f"(`{score.idxmax()}`); {pct((stats['score'] < 0.9).mean(), 1)} of the crops kept scored below 0.9. "
    f"The landmark box of `{size.idxmin()}` spans {size.min():.0f} % of the frame width on average, that of "
    f"`{size.idxmax()}` {size.max():.0f} % ({size.max() / size.min():.1f}×). "
    + (f"From one session to the next the mean hand size runs from {session_means.min():.0f} % to "
       f"{session_means.max():.0f} % of the frame width (sd of the session means {session_means.std():.1f} points, "
       f"against a mean sd of {within:.1f} points within a session, over the {len(session_means)} sessions with "
       f"≥ {BIG} crops). " if len(session_means) > 1 else "")
    + "Where size tells sessions (and so, in such data, partly classes) apart, the crop removes it by scaling every "
    f"hand's box to the same square. The lean is the rotation the crop undoes: 90 % of the hands lean between "
    f"{lean.quantile(0.05):.0f}° and {lean.quantile(0.95):.0f}°."))

# %% [markdown]
# ## What the network sees

# %%
rng = np.random.default_rng(0)
per_class, gap = (6 if QUICK else 8), 2
step = side + gap
mosaic = np.full((len(labels) * step - gap, per_class * step - gap), 128, np.uint8)
for k in range(len(labels)):
    members = np.flatnonzero(data.labels.numpy() == k)
    pick = rng.choice(members, min(per_class, len(members)), replace=False)
    for j, i in enumerate(pick):
        mosaic[k * step:k * step + side, j * step:j * step + side] = data.images[i, 0].numpy()
fig, ax = plt.subplots(figsize=(per_class * 0.6, len(labels) * 0.6))
ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
ax.set(xticks=[], yticks=[k * step + side / 2 for k in range(len(labels))], yticklabels=labels)
ax.grid(False)
ax.set_title(f"random crops per class ({side}×{side}, mask: {data.settings.mask})")
plt.show()

# %%
s = data.settings
background = {"bones": "the background is masked to black outside the finger bones and palm, and only the hand's own "
                       "shading is left: the network has no room, clothes or face to learn from",
              "hull": "the background is masked to black outside the convex hull of the landmarks (gaps between spread "
                      "fingers filled in): little of the room is left to learn from",
              "none": "the background is kept: the network also sees the room, clothes and light behind the hand, "
                      "which a split by session has to guard against"}.get(s.mask, f"mask `{s.mask}`")
display(Markdown(
    f"Every crop is {'rotated upright (wrist below, middle finger up)' if s.rotate else 'as the hand was held (not rotated)'}"
    + (f", mirrored by the rule `{s.mirror}`" if s.mirror != "none" else ", never mirrored")
    + f", with a margin of {pct(s.margin)} of the landmark box's longer side around it; {background}."))
