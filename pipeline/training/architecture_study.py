"""The architecture study: every registered LeNet-5 variant x several seeds, one recipe, one split.

A study folder holds::

    study.json         the recipe (dataset, split, training settings); a rerun must match it
    results.csv        one row per variant and seed, written as each finishes (the resume point)
    summary.md         mean +- sd per variant, and what the numbers rest on
    accuracy_vs_parameters.png, accuracy_per_variant.png
    leak.json          Sign-MNIST only: near-copies across the split (see pipeline.data.near_copies)
    runs/VARIANT-sSEED/  the run folder of each cell (pipeline.training.run.train_run)
    log.txt            what the runs printed

Every cell uses the same split (chosen by ``split_seed``), so the variants are compared on the same
test items; a seed fixes the initial weights, the batch order and the augmentation. A finished
cell (a row in results.csv) is never trained again; an interrupted one continues from its run folder.
The cells run one after another here, or as Ray tasks of one thread each (``engine``); either way
this process alone writes results.csv, a row as each cell finishes.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from pipeline.data.load import Dataset
from pipeline.data.spec import DataSpec, load_data
from pipeline.engines import Engine
from pipeline.errors import UserError
from pipeline.files import atomic_write_text, check_writable, display_path, save_figure
from pipeline.lenet.checkpoint import load_model
from pipeline.lenet.model import VARIANTS, count_macs, count_parameters
from pipeline.training.augment import NO_AUGMENT, AugmentConfig
from pipeline.training.loop import TrainConfig
from pipeline.training.run import Split, make_split, train_run

QUICK_VARIANTS = ("lenet5", "lenet5-max", "lenet5-tanh")
COLUMNS = ["variant", "seed", "test_acc", "val_acc", "best_epoch", "epochs_run", "params", "macs",
           "latency_b1_ms", "latency_b256_ms", "train_s", "train_load_avg", "threads", "load_avg", "run"]
#: LeNet-5's MNIST test error in LeCun, Bottou, Bengio & Haffner (1998), without distortions.
LENET5_1998_ERROR = 0.0095


@dataclass(frozen=True)
class StudyConfig:
    """What a study trains. ``variants`` and ``seeds`` may grow between runs; the rest is the recipe."""

    data: DataSpec
    variants: tuple[str, ...] = tuple(VARIANTS)
    seeds: tuple[int, ...] = (0, 1, 2)
    train: TrainConfig = field(default_factory=TrainConfig)
    limit: int | None = None  # keep at most this many samples (seeded random subset)
    split_seed: int = 0

    def recipe(self) -> dict:
        """The settings every cell shares (what a resumed study must agree with)."""
        train = self.train.to_dict()
        train.pop("seed")
        return {"data": self.data.describe(), "train": train, "limit": self.limit, "split_seed": self.split_seed}

    @property
    def name(self) -> str:
        """What the study is of, for titles: the dataset folders' names, or the public set's kind."""
        return "+".join(Path(p).name for p in self.data.paths) if self.data.hands else self.data.kind


def default_config(data: DataSpec, quick: bool = False) -> StudyConfig:
    """The recipe for a kind of data; ``quick`` is a small grid that runs in about a minute on a laptop CPU.

    Hand crops are augmented (another person's hand differs in angle, light and size); MNIST and
    Sign-MNIST are trained as they are, as ``pipeline.train`` does for them.
    """
    base = TrainConfig()
    if data.hands:
        train = replace(base, epochs=3 if quick else 60)
        limit = None
    elif data.kind == "mnist":
        train = replace(base, epochs=2 if quick else 4, batch_size=128, augment=NO_AUGMENT)
        limit = 6000 if quick else None
    else:
        train = replace(base, epochs=3 if quick else 20, augment=NO_AUGMENT)
        limit = 2000 if quick else None
    variants = QUICK_VARIANTS if quick else tuple(VARIANTS)
    seeds = (0, 1) if quick else (0, 1, 2)
    return StudyConfig(data, variants, seeds, train, limit)


def load_study_data(config: StudyConfig) -> Dataset:
    """The dataset of a study, cut to ``config.limit`` samples (a seeded random subset) when set."""
    data = load_data(config.data)
    if config.limit is not None:
        if config.limit < 10:
            raise UserError(f"--limit {config.limit} is too small; keep at least 10 samples")
        if config.limit < len(data):
            keep = np.sort(np.random.default_rng(config.split_seed).choice(len(data), config.limit, replace=False))
            data = data.subset(keep)
    return data


# ---------------------------------------------------------------------------------------------
# One cell


@torch.no_grad()
def latency_ms(model: torch.nn.Module, batch: int, repeats: int, side: int = 28, rounds: int = 5) -> float:
    """Wall time of one forward pass on a ``batch`` of images, in ms, after a warm-up.

    The passes are timed in ``rounds`` rounds; the result is the lowest round median, so that a
    burst of other work on a shared machine spoils one round, not the figure.
    """
    was_training = model.training
    model.eval()
    x = torch.rand(batch, 1, side, side, generator=torch.Generator().manual_seed(0))
    per_round = max(1, repeats // rounds)
    try:
        for _ in range(3):
            model(x)
        medians = []
        for _ in range(rounds):
            times = []
            for _ in range(per_round):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
            medians.append(statistics.median(times))
    finally:
        model.train(was_training)
    return 1000 * min(medians)


def measure_latency(model: torch.nn.Module) -> dict:
    """The latency columns of a results row (batch 1 and 256), with the threads and load they were measured under."""
    side = model.config.in_size
    return {"latency_b1_ms": latency_ms(model, 1, 100, side), "latency_b256_ms": latency_ms(model, 256, 20, side),
            "threads": torch.get_num_threads(), "load_avg": _load_avg()}


def cell_name(variant: str, seed: int) -> str:
    return f"{variant}-s{seed}"


def train_cell(data: Dataset, split: Split, config: StudyConfig, variant: str, seed: int, root: Path,
               log: Callable[[str], None]) -> dict:
    """Train one variant/seed (or pick up its finished run folder) and measure it: a results row."""
    run = root / "runs" / cell_name(variant, seed)
    train_load = float("nan")
    if (run / "model.pt").exists():
        log(f"{run.name}: finished run found, measuring it")  # stopped after training, before its row
    else:
        train_run(data, variant, run, replace(config.train, seed=seed), split=split, resume=True, progress=False, log=log)
        train_load = _load_avg()
    import pandas as pd

    loaded = load_model(run / "model.pt")
    model, metrics = loaded.network, loaded.checkpoint["metrics"]  # written with the weights, so present whenever model.pt is
    test_acc, val_acc, epochs, seconds = (metrics["test_accuracy"], metrics["val_accuracy"], metrics["epochs"][0],
                                          metrics["seconds"])
    history = run / "metrics.csv"
    epochs_run = int(pd.read_csv(history)["epoch"].max()) if history.is_file() else int(epochs)
    row = {"variant": variant, "seed": seed, "test_acc": test_acc, "val_acc": val_acc, "best_epoch": int(epochs),
           "epochs_run": epochs_run, "params": count_parameters(model), "macs": count_macs(model),
           "train_s": float(seconds), "train_load_avg": train_load, "run": str(run.relative_to(root)),
           **measure_latency(model)}
    return {k: row[k] for k in COLUMNS}


def _train_cell_logged(shared: tuple, cell: tuple) -> tuple[dict, list[str]]:
    """:func:`train_cell` where it runs (a Ray worker): its row, and the lines it logged, for the caller's log."""
    data, split, config, root = shared
    lines: list[str] = []
    return train_cell(data, split, config, *cell, root, lines.append), lines


def _load_avg() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows
        return float("nan")


# ---------------------------------------------------------------------------------------------
# The grid


@dataclass
class StudyResult:
    """What a call to :func:`run_study` did and where the results are."""

    out: Path
    trained: int  # cells measured in this call
    skipped: int  # cells already in results.csv
    results: "object"  # the whole results.csv as a pandas DataFrame
    summary: "object"  # mean and sd per variant (DataFrame)
    failed: list[str] = field(default_factory=list)  # "CELL: why", for cells that failed twice (on Ray)


def read_results(out: str | Path):
    """``results.csv`` of a study folder as a DataFrame (empty, with the columns, when there is none)."""
    import pandas as pd

    path = Path(out) / "results.csv"
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    table = pd.read_csv(path)
    if "train_load_avg" not in table:  # written before that column existed: the load was taken right after training
        table.insert(COLUMNS.index("train_load_avg"), "train_load_avg", table["load_avg"])
    return table


def _write_results(out: Path, table) -> None:
    atomic_write_text(out / "results.csv", table.to_csv(index=False, float_format="%.6g"))


def _check_recipe(out: Path, config: StudyConfig, command: str | None) -> dict:
    """Write ``study.json`` on the first run; later runs must use the same recipe."""
    path = out / "study.json"
    recipe = config.recipe()
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved["recipe"] != recipe:
            diff = sorted(k for k in recipe if saved["recipe"].get(k) != recipe[k])
            raise UserError(f"{out} holds a study with another recipe (differs in {', '.join(diff)}); "
                            "rerun with the same settings, or pass another --out")
        return saved
    meta = {"recipe": recipe, "command": command, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(meta, indent=2) + "\n")
    return meta


def run_study(config: StudyConfig, out: str | Path, progress: bool = True, command: str | None = None,
              log: Callable[[str], None] = print, data: Dataset | None = None, remeasure: bool = False,
              engine: Engine = Engine()) -> StudyResult:
    """Train the grid (skipping finished cells), then write the summary and the plots.

    ``data`` overrides the loaded dataset (tests pass a subset); ``command`` is recorded in the summary.
    ``remeasure`` times every finished run's latency again (e.g. once a shared machine is quiet).
    ``engine``: here, one cell after another; or on Ray, each cell a task of one thread, retried once,
    then reported in ``failed`` (the study goes on with the others).
    """
    import pandas as pd
    from tqdm import tqdm

    unknown = [v for v in config.variants if v not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not config.variants or not config.seeds:
        raise UserError("a study needs at least one variant and one seed")
    if len(set(config.seeds)) != len(config.seeds) or len(set(config.variants)) != len(config.variants):
        raise UserError("each variant and seed may be named only once")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; pass another --out")
    check_writable(out, "--out")
    data = data if data is not None else load_study_data(config)
    meta = _check_recipe(out, config, command)
    split = make_split(data, seed=config.split_seed)
    table = read_results(out)
    done = {(r.variant, int(r.seed)) for r in table.itertuples()}
    grid = [(v, s) for s in config.seeds for v in config.variants]  # seed-major: each seed completes a comparison
    todo = [cell for cell in grid if cell not in done]
    if config.data.kind == "signmnist" and not (out / "leak.json").is_file():
        _write_leak_check(data, split, out, sample=100 if config.limit else 300)
    log_file = open(out / "log.txt", "a", encoding="utf-8")

    def log_line(text: str) -> None:
        log_file.write(text.rstrip("\n") + "\n")
        log_file.flush()

    bar = tqdm(total=len(grid), initial=len(grid) - len(todo), desc=f"study {config.name}", unit="run",
               disable=not progress)
    trained, failed = 0, []
    finished = _run_cells(engine, data, split, config, todo, out, log_line, bar)
    try:
        for (variant, seed), row, error in finished:
            if error is not None:
                failed.append(f"{cell_name(variant, seed)}: {type(error).__name__}: {' '.join(str(error).split())[:300]}")
                log_line(f"== {failed[-1]} (failed twice; rerun the study to try it again)")
                continue
            table = pd.concat([table, pd.DataFrame([row], columns=COLUMNS)], ignore_index=True)
            _write_results(out, table)
            trained += 1
            bar.update(1)
            message = (f"{cell_name(variant, seed)}: test {row['test_acc']:.4f}, val {row['val_acc']:.4f}, "
                       f"best epoch {row['best_epoch']}/{row['epochs_run']}, {row['train_s']:.0f} s")
            (bar.write if progress else log)(message)
    finally:
        finished.close()  # Ctrl-C: the cells still running on Ray are cancelled now, not when collected
        bar.close()
        log_file.close()
    if remeasure and len(table):
        for i, run in enumerate(tqdm(table["run"], desc="latency", unit="run", disable=not progress)):
            for key, value in measure_latency(load_model(out / run / "model.pt").network).items():
                table.loc[i, key] = value
        _write_results(out, table)
    summary = summarise(table)
    write_summary(out, config, data, split, table, summary, meta)
    plot_study(table, summary, out, config.name)
    return StudyResult(out, trained, len(grid) - len(todo), table, summary, failed)


def _run_cells(engine: Engine, data: Dataset, split: Split, config: StudyConfig, cells: list[tuple], out: Path,
               log_line: Callable[[str], None], bar) -> Iterator[tuple[tuple, dict | None, BaseException | None]]:
    """``(cell, row, error)`` for each cell as it finishes: here one after another (an error is raised), or as
    Ray tasks of one thread each, retried once (an error is yielded)."""
    if not engine.ray:
        for cell in cells:
            bar.set_postfix_str(cell_name(*cell))
            log_line(f"== {cell_name(*cell)}")
            yield cell, train_cell(data, split, config, *cell, out, log_line), None
        return
    from pipeline.engines.ray import map_on_tasks, ray_session

    with ray_session(engine.address):
        for k, result, error in map_on_tasks(_train_cell_logged, cells, shared=(data, split, config, out.resolve())):
            log_line(f"== {cell_name(*cells[k])}")
            for line in result[1] if result else []:
                log_line(line)
            yield cells[k], result and result[0], error


# ---------------------------------------------------------------------------------------------
# Summary and plots


def summarise(table):
    """Mean and sd (over seeds) per variant, in registry order."""
    import pandas as pd

    if table.empty:
        return pd.DataFrame()
    groups = table.groupby("variant", sort=False)
    summary = pd.DataFrame({
        "seeds": groups["seed"].count(),
        "params": groups["params"].first(),
        "macs": groups["macs"].first(),
        "test_mean": groups["test_acc"].mean(),
        "test_sd": groups["test_acc"].std(ddof=1),
        "val_mean": groups["val_acc"].mean(),
        "val_sd": groups["val_acc"].std(ddof=1),
        "best_epoch": groups["best_epoch"].mean(),
        "epochs_run": groups["epochs_run"].mean(),
        "latency_b1_ms": groups["latency_b1_ms"].median(),
        "latency_b256_ms": groups["latency_b256_ms"].median(),
        "train_s": groups["train_s"].mean(),
    })
    order = [v for v in VARIANTS if v in summary.index] + [v for v in summary.index if v not in VARIANTS]
    return summary.loc[order]


def _pm(mean: float, sd: float, scale: float = 100, digits: int = 1) -> str:
    sd_text = "–" if np.isnan(sd) else f"{sd * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {sd_text}"


def summary_table(summary, dataset: str) -> str:
    """The per-variant table as Markdown (accuracies in %, mean ± sd over seeds)."""
    digits = 2 if dataset == "mnist" else 1
    header = ("| variant | params | MACs | test acc % | val acc % | best epoch | latency b1 ms | latency b256 ms | train s | seeds |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [header]
    for name, r in summary.iterrows():
        lines.append(f"| {name} | {int(r.params):,} | {int(r.macs):,} | {_pm(r.test_mean, r.test_sd, digits=digits)} | "
                     f"{_pm(r.val_mean, r.val_sd, digits=digits)} | {r.best_epoch:.1f}/{r.epochs_run:.0f} | "
                     f"{r.latency_b1_ms:.3f} | {r.latency_b256_ms:.2f} | {r.train_s:.0f} | {int(r.seeds)} |")
    return "\n".join(lines)


def _write_leak_check(data: Dataset, split: Split, out: Path, sample: int) -> None:
    from pipeline.data.near_copies import check_leak, random_split_like

    images, labels = data.images[:, 0].numpy(), data.labels.numpy()
    grouped = check_leak(images, labels, split.train, split.test, "by copy group", sample=sample)
    train, _, test = random_split_like(len(data), len(split.val), len(split.test))
    random = check_leak(images, labels, train, test, "random (for comparison)", sample=sample)
    atomic_write_text(out / "leak.json", json.dumps([grouped.to_dict(), random.to_dict()], indent=2) + "\n")


def _dataset_notes(config: StudyConfig, data: Dataset, split: Split, out: Path, summary) -> list[str]:
    notes = []
    if config.data.hands:
        groups = split.groups(data)
        shown = ", ".join(f"`{display_path(p)}`" for p in config.data.paths)
        notes.append(f"Hand crops of {shown}, split by group (recording session or person): "
                     f"{len(groups['test'])} test groups ({', '.join(groups['test'])}); "
                     f"{len(groups['val'])} validation groups ({', '.join(groups['val'])}).")
    elif config.data.kind == "mnist":
        notes.append(f"MNIST's official split: {int((data.groups == 'test').sum()):,} test digits; validation is a "
                     "seeded 10 % of the training digits.")
        if not summary.empty and config.limit is None:
            best = summary["test_mean"].idxmax()
            err = 1 - summary.loc[best, "test_mean"]
            base = 1 - summary.loc["lenet5-classic", "test_mean"] if "lenet5-classic" in summary.index else None
            text = (f"LeNet-5 as published (LeCun et al., 1998) reached **{LENET5_1998_ERROR:.2%} test error** "
                    f"(without distortions, 20 passes). Here the best variant, `{best}`, reaches "
                    f"**{err:.2%}** (mean of {int(summary.loc[best, 'seeds'])} seeds) after "
                    f"{config.train.epochs} epochs")
            if base is not None:
                text += f"; `lenet5-classic`, the closest to the 1998 network, {base:.2%}"
            notes.append(text + ".")
    elif config.data.kind == "signmnist":
        notes.append(f"Sign-MNIST from `{display_path(config.data.paths[0])}` ({len(data):,} rows): train, validation "
                     "and test are all carved out of this one file. Its rows are augmented copies of far fewer "
                     "photos; the split is by copy group (`pipeline.data.near_copies.copy_groups`).")
        leak_file = out / "leak.json"
        if leak_file.is_file():
            rows = json.loads(leak_file.read_text())
            lines = ["Near-copies across the split (each sampled test item's best correlation with a training "
                     "item over +-3 px shifts and 0.9-1.1 zooms; `other class max` is what images of different "
                     "letters reach):", "",
                     "| split | test items | median | 90th pct | max | share > 0.90 | share > 0.95 | other class max |",
                     "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for r in rows:
                lines.append(f"| {r['split']} | {r['test_items']} | {r['nearest_median']:.3f} | {r['nearest_p90']:.3f} | "
                             f"{r['nearest_max']:.3f} | {r['over_090']:.1%} | {r['over_095']:.1%} | {r['other_class_max']:.3f} |")
            notes.append("\n".join(lines))
    if config.limit is not None:
        notes.append(f"A seeded random subset of {len(data)} samples was used (`--limit {config.limit}`): a quick run, "
                     "not a result.")
    return notes


def write_summary(out: Path, config: StudyConfig, data: Dataset, split: Split, table, summary, meta: dict) -> Path:
    """Write ``summary.md``: the per-variant table and what it rests on."""
    train = config.train
    recipe = (f"AdamW lr {train.lr}, weight decay {train.weight_decay}, batch {train.batch_size}, label smoothing "
              f"{train.label_smoothing}, cosine schedule over {train.epochs} epochs, early stop after {train.patience} "
              f"epochs without a better validation score; the weights of the best validation epoch are tested. "
              f"Augmentation: {'none' if train.augment == NO_AUGMENT else _augment_text(train.augment)}.")
    cpus = os.cpu_count() or 1
    timing = (f"Latency: one forward pass on this machine's CPU (lowest of 5 round medians; "
              f"{int(table['threads'].max()) if len(table) else '?'} torch threads, {meta.get('machine', '')}, "
              f"torch {meta.get('torch', torch.__version__)}).")
    for column, what in (("load_avg", "latencies"), ("train_load_avg", "train times")):
        loads = table[column].dropna() if column in table else []
        if len(loads):
            timing += (f" The 1-minute load average on the {cpus} CPUs was {loads.min():.1f}-{loads.max():.1f} when the "
                       f"{what} were measured (the study itself accounts for up to {int(table['threads'].max())})")
            timing += ("; other jobs were running, so read them as rough." if loads.max() > cpus + 1 else ".")
    lines = [f"# Architecture study: {config.name}", "",
             f"{len(table)} runs: {table['variant'].nunique() if len(table) else 0} variants × seeds "
             f"{', '.join(str(s) for s in sorted(set(table['seed'].astype(int))))}. "
             f"Data: {len(data)} samples, {len(data.label_names)} classes; train {len(split.train)}, "
             f"validation {len(split.val)}, test {len(split.test)} (the same split for every run).", "",
             summary_table(summary, config.data.kind) if not summary.empty else "(no finished runs yet)", "",
             "Accuracies in %, mean ± sd over seeds; best epoch is the mean epoch chosen on validation / epochs run. "
             "MACs are multiply-accumulates per image.", ""]
    for note in _dataset_notes(config, data, split, out, summary):
        lines += [note, ""]
    lines += [f"Recipe (every variant): {recipe}", "", timing, ""]
    if meta.get("command"):
        lines += ["Produced by:", "", "```", meta["command"], "```", ""]
    path = out / "summary.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _augment_text(aug: AugmentConfig) -> str:
    return (f"rotation ±{aug.rotate_deg:g}°, zoom ±{aug.scale:g}, shift ±{aug.shift:g}, brightness ±{aug.brightness:g}, "
            f"contrast ±{aug.contrast:g}, gamma ±{aug.gamma:g}, blur p={aug.blur_prob:g}, erase p={aug.erase_prob:g}")


def plot_study(table, summary, out: Path, dataset: str, dpi: int = 100) -> list[Path]:
    """``accuracy_vs_parameters.png`` and ``accuracy_per_variant.png``.

    Drawn on bare ``Figure`` objects, so pyplot's backend (e.g. a notebook's inline one) is left alone.
    """
    from matplotlib.figure import Figure

    if summary.empty:
        return []
    paths = []
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    sd = summary["test_sd"].fillna(0) * 100
    ax.errorbar(summary["params"], summary["test_mean"] * 100, yerr=sd, fmt="o", capsize=3)
    for name, r in summary.iterrows():
        ax.annotate(name.replace("lenet5-", "") if name != "lenet5" else name, (r.params, r.test_mean * 100),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log)")
    ax.set_ylabel("test accuracy % (mean ± sd over seeds)")
    ax.set_title(f"{dataset}: accuracy vs size")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(out / "accuracy_vs_parameters.png")
    save_figure(fig, paths[-1], dpi)

    order = summary.sort_values("test_mean").index.tolist()
    fig = Figure(figsize=(6.4, 0.45 * len(order) + 1.2))
    ax = fig.subplots()
    for y, name in enumerate(order):
        accs = table.loc[table["variant"] == name, "test_acc"].to_numpy() * 100
        ax.scatter(accs, np.full(len(accs), y), s=18, color="tab:gray", zorder=2)
        m, s = summary.loc[name, "test_mean"] * 100, (summary.loc[name, "test_sd"] if not np.isnan(summary.loc[name, "test_sd"]) else 0) * 100
        ax.errorbar(m, y, xerr=s, fmt="D", color="tab:blue", capsize=3, zorder=3)
    ax.set_yticks(range(len(order)), order)
    ax.set_xlabel("test accuracy % (dots: seeds; diamond: mean ± sd)")
    ax.set_title(f"{dataset}: accuracy per variant")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    paths.append(out / "accuracy_per_variant.png")
    save_figure(fig, paths[-1], dpi)
    return paths


__all__ = ["COLUMNS", "LENET5_1998_ERROR", "StudyConfig", "StudyResult",
           "default_config", "latency_ms", "load_study_data", "plot_study", "read_results", "run_study",
           "summarise", "summary_table", "write_summary"]
