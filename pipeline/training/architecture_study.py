"""The architecture study: every registered LeNet-5 variant x seeds x group splits, one recipe.

A study folder holds::

    study.json         the recipe (dataset, training settings); a rerun must match it
    results.csv        one row per variant, split and seed, written as each finishes (the resume point)
    summary.md         per variant: accuracy with its interval, and the paired comparison with lenet5
    accuracy_vs_parameters.png, accuracy_per_variant.png, paired_differences.png
    leak.json          Sign-MNIST only: near-copies across the split (see pipeline.data.near_copies)
    runs/splitK/VARIANT-sSEED/  the run folder of each cell (pipeline.training.run.train_run)
    log.txt            what the runs printed

A split is a split by group (session or person) made by :func:`~pipeline.training.run.make_split`
with the split's number as its seed; a seed fixes the initial weights, the batch order and the
augmentation. Every variant is trained on every (split, seed) cell, so its accuracy minus
``lenet5``'s on the same cell is a paired difference: same test items, same batch order. The
comparison (:func:`compare_variants`) gives a bootstrap interval that resamples splits and then
seeds within them (cells sharing a split share their test items, so they are not independent) and
a Wilcoxon signed-rank test over the cells, with Holm's correction over the variants.

The landmark MLP (:mod:`pipeline.training.landmark_mlp`, its own recipe) is a row too, on the same
splits, for hand data: it sees no pixels, only the 21 landmarks.

A finished cell (a row in results.csv) is never trained again; an interrupted one continues from its
run folder. A ``results.csv`` written before splits were part of the grid (no ``split`` column) is
read as the one split its ``study.json`` names (``split_seed``, 0 when absent), so old studies keep
their rows and can grow. The cells run one after another here, or as Ray tasks of one thread each
(``engine``); either way this process alone writes results.csv, a row as each cell finishes.
"""

from __future__ import annotations

import json
import math
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
from pipeline.data.spec import DataSpec, check_fill, fill_settings, load_data
from pipeline.engines import Engine
from pipeline.errors import UserError
from pipeline.files import atomic_write_text, check_writable, display_path, save_figure
from pipeline.lenet.checkpoint import load_model
from pipeline.lenet.model import VARIANTS, count_macs, count_parameters
from pipeline.stats import hierarchical_bootstrap
from pipeline.training.augment import NO_AUGMENT, AugmentConfig
from pipeline.training.loop import TrainConfig
from pipeline.training.run import Split, make_split, train_run

QUICK_VARIANTS = ("lenet5", "lenet5-max", "lenet5-tanh")
#: The landmark-MLP baseline's row (hand data only).
MLP = "landmark-mlp"
#: The variant every other is compared with.
REFERENCE = "lenet5"
#: Group splits of a full study on hand data.
HAND_SPLITS = (0, 1, 2, 3, 4)
#: Epochs and early-stopping patience of a full study on hand data (see :func:`default_config`).
HAND_EPOCHS, HAND_PATIENCE = 40, 10
COLUMNS = ["variant", "split", "seed", "test_acc", "val_acc", "best_epoch", "epochs_run", "params", "macs",
           "latency_b1_ms", "latency_b256_ms", "train_s", "train_load_avg", "threads", "load_avg", "run"]
#: LeNet-5's MNIST test error in LeCun, Bottou, Bengio & Haffner (1998), without distortions.
LENET5_1998_ERROR = 0.0095


@dataclass(frozen=True)
class StudyConfig:
    """What a study trains. ``variants``, ``seeds`` and ``splits`` may grow between runs; the rest is the recipe.

    ``splits`` are the seeds of the group splits (:func:`~pipeline.training.run.make_split`); ``variants``
    are registered LeNet variants, and :data:`MLP` for the landmark-MLP baseline (hand data only). ``fill``
    draws hand crops again with another fill (``depth``: from the landmarks, as the shipped model is trained;
    its finger-pose copies and drawn non-gestures come with it); None keeps the folders' own crops.
    """

    data: DataSpec
    variants: tuple[str, ...] = tuple(VARIANTS)
    seeds: tuple[int, ...] = (0, 1, 2)
    train: TrainConfig = field(default_factory=TrainConfig)
    limit: int | None = None  # keep at most this many samples (seeded random subset, the same for every split)
    splits: tuple[int, ...] = (0,)
    fill: str | None = None

    def __post_init__(self) -> None:
        check_fill(self.data, self.fill)

    def recipe(self) -> dict:
        """The settings every cell shares (what a resumed study must agree with). A fill is recorded only when
        given, so that a study made before the option continues as it was."""
        train = self.train.to_dict()
        train.pop("seed")
        return {"data": self.data.describe(), "train": train, "limit": self.limit} | ({"fill": self.fill} if self.fill else {})

    @property
    def name(self) -> str:
        """What the study is of, for titles: the dataset folders' names, or the public set's kind."""
        return self.data.name


def default_config(data: DataSpec, quick: bool = False) -> StudyConfig:
    """The recipe for a kind of data; ``quick`` is a small grid that runs in a few minutes on a 2-core CPU.

    Hand crops are augmented (another person's hand differs in angle, light and size); MNIST and
    Sign-MNIST are trained as they are, as ``pipeline.train`` does for them. A full study of hand data
    has every variant and the landmark MLP, on :data:`HAND_SPLITS` x 3 seeds; the public sets keep one
    split (MNIST's is the official one).

    Hand data gets :data:`HAND_EPOCHS` epochs and early stopping after :data:`HAND_PATIENCE` (``pipeline.train``:
    60 and 15), so that the 240 runs of a full study take about an hour on one CPU thread. In the
    earlier one-split study on data/fingers (60 epochs) the variants' best epochs were 25-49 on average
    and most runs reached 99-100 % validation accuracy, so the last epochs chose mostly by validation loss.
    """
    base = TrainConfig()
    if data.hands:
        train = replace(base, epochs=3 if quick else HAND_EPOCHS, patience=base.patience if quick else HAND_PATIENCE)
        limit = None
    elif data.kind == "mnist":
        train = replace(base, epochs=2 if quick else 4, batch_size=128, augment=NO_AUGMENT)
        limit = 6000 if quick else None
    else:
        train = replace(base, epochs=3 if quick else 20, augment=NO_AUGMENT)
        limit = 2000 if quick else None
    variants = QUICK_VARIANTS if quick else tuple(VARIANTS) + ((MLP,) if data.hands else ())
    seeds = (0, 1) if quick else (0, 1, 2)
    splits = HAND_SPLITS if data.hands and not quick else (0,)
    return StudyConfig(data, variants, seeds, train, limit, splits)


def load_study_data(config: StudyConfig) -> Dataset:
    """The dataset of a study, its crops drawn with ``config.fill`` when set, cut to ``config.limit`` samples
    (a seeded random subset) when set."""
    data = load_data(config.data, fill_settings(config.data, config.fill))
    if config.limit is not None:
        if config.limit < 10:
            raise UserError(f"--limit {config.limit} is too small; keep at least 10 samples")
        if config.limit < len(data):
            keep = np.sort(np.random.default_rng(0).choice(len(data), config.limit, replace=False))
            data = data.subset(keep)
    return data


# ---------------------------------------------------------------------------------------------
# One cell


@torch.no_grad()
def latency_ms(model: torch.nn.Module, batch: int, repeats: int, side: int = 28, rounds: int = 5,
               shape: tuple[int, ...] | None = None) -> float:
    """Wall time of one forward pass on a ``batch`` of images (1 x side x side, or ``shape``), in ms, after a warm-up.

    The passes are timed in ``rounds`` rounds; the result is the lowest round median, so that a
    burst of other work on a shared machine spoils one round, not the figure.
    """
    was_training = model.training
    model.eval()
    x = torch.rand(batch, *(shape or (1, side, side)), generator=torch.Generator().manual_seed(0))
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
    """The latency columns of a results row (batch 1 and 256), with the threads and load they were measured under.

    A LeNet is timed on images; the landmark MLP on its 42 features (what it gets once MediaPipe has run,
    which both need).
    """
    shape = (42,) if not hasattr(model, "config") else (1, model.config.in_size, model.config.in_size)
    return {"latency_b1_ms": latency_ms(model, 1, 100, shape=shape), "latency_b256_ms": latency_ms(model, 256, 20, shape=shape),
            "threads": torch.get_num_threads(), "load_avg": _load_avg()}


def cell_name(variant: str, seed: int, split: int = 0) -> str:
    """A cell's name in logs and its run folder below ``runs/``: ``split0/lenet5-s1``."""
    return f"split{split}/{variant}-s{seed}"


def train_cell(data: Dataset, split: Split, config: StudyConfig, variant: str, seed: int, root: Path,
               log: Callable[[str], None], split_number: int = 0) -> dict:
    """Train one variant on one split with one seed (or pick up its finished run folder) and measure it: a results row."""
    run = root / "runs" / cell_name(variant, seed, split_number)
    if variant == MLP:
        return _train_mlp_cell(data, split, seed, root, run, split_number)
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
    row = {"variant": variant, "split": split_number, "seed": seed, "test_acc": test_acc, "val_acc": val_acc, "best_epoch": int(epochs),
           "epochs_run": epochs_run, "params": count_parameters(model), "macs": count_macs(model),
           "train_s": float(seconds), "train_load_avg": train_load, "run": str(run.relative_to(root)),
           **measure_latency(model)}
    return {k: row[k] for k in COLUMNS}


def _train_cell_logged(shared: tuple, cell: tuple) -> tuple[dict, list[str]]:
    """:func:`train_cell` where it runs (a Ray worker): its row, and the lines it logged, for the caller's log."""
    data, splits, config, root = shared
    variant, k, seed = cell
    lines: list[str] = []
    return train_cell(data, splits[k], config, variant, seed, root, lines.append, split_number=k), lines


#: The landmark MLP makes its features with the crops' own mirror decision, in the photo's frame: not turned upright
#: as the crops are (``landmark_mlp``'s ``upright``, the leave-one-source-out benchmark's ``mlp_upright``), so a
#: tilted hand is flipped about the photo's vertical, not the hand's.
MLP_MIRROR = "crops"


def _train_mlp_cell(data: Dataset, split: Split, seed: int, root: Path, run: Path, split_number: int) -> dict:
    """The landmark-MLP baseline on one cell, with its own recipe (``LANDMARK_CONFIG``, seeded): a results row.

    It trains in seconds, so an interrupted cell starts again; its weights go to ``run/mlp.pt``.
    """
    from pipeline.training.landmark_mlp import LANDMARK_CONFIG, evaluate_landmark_mlp

    start_load = _load_avg()
    scores = evaluate_landmark_mlp(data, split, replace(LANDMARK_CONFIG, seed=seed), mirror=MLP_MIRROR)
    model = scores["model"]
    run.mkdir(parents=True, exist_ok=True)
    model.save(run / "mlp.pt")
    row = {"variant": MLP, "split": split_number, "seed": seed, "test_acc": scores["test_accuracy"],
           "val_acc": scores["val_accuracy"], "best_epoch": scores["best_epoch"], "epochs_run": scores["epochs"],
           "params": scores["parameters"], "macs": linear_macs(model), "train_s": scores["seconds"],
           "train_load_avg": max(start_load, _load_avg()), "run": str(run.relative_to(root)), **measure_latency(model)}
    return {k: row[k] for k in COLUMNS}


def linear_macs(model: torch.nn.Module) -> int:
    """Multiply-accumulates of one input through a model's linear layers (the landmark MLP has no others)."""
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def load_cell_model(run: Path) -> torch.nn.Module:
    """The network of a finished cell's run folder: a LeNet (``model.pt``) or the landmark MLP (``mlp.pt``)."""
    if (run / "mlp.pt").is_file():
        from pipeline.training.landmark_mlp import LandmarkMLP

        return LandmarkMLP.load(run / "mlp.pt")
    return load_model(run / "model.pt").network


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
    comparison: "object" = None  # paired comparison with lenet5 per variant (DataFrame, see compare_variants)
    failed: list[str] = field(default_factory=list)  # "CELL: why", for cells that failed twice (on Ray)


def read_results(out: str | Path):
    """``results.csv`` of a study folder as a DataFrame (empty, with the columns, when there is none).

    A table from before splits were part of the grid has no ``split`` column: its rows are of the one
    split its ``study.json`` recorded (``split_seed``; 0 when absent), and are read as that split.
    """
    import pandas as pd

    out = Path(out)
    path = out / "results.csv"
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    table = pd.read_csv(path)
    if "train_load_avg" not in table:  # written before that column existed: the load was taken right after training
        table.insert(list(table.columns).index("load_avg"), "train_load_avg", table["load_avg"])
    if "split" not in table:
        table.insert(1, "split", _legacy_split(out))
    return table[COLUMNS]


def _legacy_split(out: Path) -> int:
    """The split seed an old study (one split, chosen by ``split_seed``) recorded in its study.json."""
    path = out / "study.json"
    return int(json.loads(path.read_text())["recipe"].get("split_seed", 0)) if path.is_file() else 0


def _write_results(out: Path, table) -> None:
    atomic_write_text(out / "results.csv", table.infer_objects().to_csv(index=False, float_format="%.6g"))


def _check_recipe(out: Path, config: StudyConfig, command: str | None) -> dict:
    """Write ``study.json`` on the first run; later runs must use the same recipe.

    An old study's ``split_seed`` is not part of the recipe any more (the split is a grid dimension now).
    """
    saved = _saved_study(out, config)
    if saved is not None:
        return saved
    meta = {"recipe": config.recipe(), "command": command, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "study.json", json.dumps(meta, indent=2) + "\n")
    return meta


def _saved_study(out: Path, config: StudyConfig) -> dict | None:
    """``out/study.json``, refused in one line when its recipe is not ``config``'s; None when there is none yet."""
    path = out / "study.json"
    if not path.is_file():
        return None
    saved, recipe = json.loads(path.read_text()), config.recipe()
    old = {k: v for k, v in saved["recipe"].items() if k != "split_seed"}
    if old != recipe:
        diff = sorted(k for k in set(recipe) | set(old) if old.get(k) != recipe.get(k))
        raise UserError(f"{out} holds a study with another recipe (differs in {', '.join(diff)}); "
                        "rerun with the same settings, or pass another --out")
    return saved


def _check_grid(config: StudyConfig) -> None:
    known = tuple(VARIANTS) + ((MLP,) if config.data.hands else ())
    unknown = [v for v in config.variants if v not in known]
    if unknown:
        extra = "" if config.data.hands or MLP not in unknown else f" ({MLP} needs hand data, with landmarks)"
        raise UserError(f"unknown variant(s) {', '.join(unknown)}{extra}; choose from {', '.join(known)}")
    if not config.variants or not config.seeds or not config.splits:
        raise UserError("a study needs at least one variant, one seed and one split")
    for name, values in (("variant", config.variants), ("seed", config.seeds), ("split", config.splits)):
        if len(set(values)) != len(values):
            raise UserError(f"each {name} may be named only once")


def run_study(config: StudyConfig, out: str | Path, progress: bool = True, command: str | None = None,
              log: Callable[[str], None] = print, data: Dataset | None = None, remeasure: bool = False,
              engine: Engine = Engine()) -> StudyResult:
    """Train the grid (skipping finished cells), then write the summary and the plots.

    ``engine``: here, one cell after another; or on Ray, each cell a task of one thread, retried once,
    then reported in ``failed`` (the study goes on with the others).

    The grid is split-major, then seed, then variant, so every finished (split, seed) pair holds a
    complete paired comparison. ``data`` overrides the loaded dataset (tests pass a subset);
    ``command`` is recorded in the summary. ``remeasure`` times every finished run's latency again
    (e.g. once a shared machine is quiet).
    """
    import pandas as pd
    from tqdm import tqdm

    _check_grid(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; pass another --out")
    check_writable(out, "--out")
    _saved_study(out, config)  # another recipe is refused before the data loads (with a fill, a long re-render)
    data = data if data is not None else load_study_data(config)
    table = read_results(out)  # before study.json is written: an old table reads its split from the old recipe
    meta = _check_recipe(out, config, command)
    splits = {k: make_split(data, seed=k) for k in sorted(set(config.splits) | set(table["split"].astype(int)))}
    done = {(r.variant, int(r.split), int(r.seed)) for r in table.itertuples()}
    grid = [(v, k, s) for k in config.splits for s in config.seeds for v in config.variants]
    todo = [cell for cell in grid if cell not in done]
    if config.data.kind == "signmnist" and not (out / "leak.json").is_file():
        _write_leak_check(data, splits[config.splits[0]], out, sample=100 if config.limit else 300)
    log_file = open(out / "log.txt", "a", encoding="utf-8")

    def log_line(text: str) -> None:
        log_file.write(text.rstrip("\n") + "\n")
        log_file.flush()

    bar = tqdm(total=len(grid), initial=len(grid) - len(todo), desc=f"study {config.name}", unit="run",
               disable=not progress)
    trained, failed = 0, []
    finished = _run_cells(engine, data, splits, config, todo, out, log_line, bar)
    try:
        for (variant, k, seed), row, error in finished:
            name = cell_name(variant, seed, k)
            if error is not None:
                failed.append(f"{name}: {type(error).__name__}: {' '.join(str(error).split())[:300]}")
                log_line(f"== {failed[-1]} (failed twice; rerun the study to try it again)")
                continue
            table = pd.concat([table, pd.DataFrame([row], columns=COLUMNS)], ignore_index=True)
            _write_results(out, table)
            trained += 1
            bar.update(1)
            message = (f"{name}: test {row['test_acc']:.4f}, val {row['val_acc']:.4f}, "
                       f"best epoch {row['best_epoch']}/{row['epochs_run']}, {row['train_s']:.0f} s")
            (bar.write if progress else log)(message)
    finally:
        finished.close()  # Ctrl-C: the cells still running on Ray are cancelled now, not when collected
        bar.close()
        log_file.close()
    if remeasure and len(table):
        for i, run in enumerate(tqdm(table["run"], desc="latency", unit="run", disable=not progress)):
            for key, value in measure_latency(load_cell_model(out / run)).items():
                table.loc[i, key] = value
        _write_results(out, table)
    summary = summarise(table)
    comparison = compare_variants(table)
    write_summary(out, config, data, splits, table, summary, comparison, meta)
    plot_study(table, summary, out, config.name, comparison=comparison)
    return StudyResult(out, trained, len(grid) - len(todo), table, summary, comparison, failed)


def _run_cells(engine: Engine, data: Dataset, splits: dict[int, Split], config: StudyConfig, cells: list[tuple],
               out: Path, log_line: Callable[[str], None], bar) -> Iterator[tuple[tuple, dict | None, BaseException | None]]:
    """``(cell, row, error)`` for each (variant, split, seed) cell as it finishes: here one after another (an
    error is raised), or as Ray tasks of one thread each, retried once (an error is yielded)."""
    if not engine.ray:
        for variant, k, seed in cells:
            name = cell_name(variant, seed, k)
            bar.set_postfix_str(name)
            log_line(f"== {name}")
            yield (variant, k, seed), train_cell(data, splits[k], config, variant, seed, out, log_line, split_number=k), None
        return
    from pipeline.engines.ray import map_on_tasks, ray_session

    with ray_session(engine.address):
        for i, result, error in map_on_tasks(_train_cell_logged, cells, shared=(data, splits, config, out.resolve())):
            variant, k, seed = cells[i]
            log_line(f"== {cell_name(variant, seed, k)}")
            for line in result[1] if result else []:
                log_line(line)
            yield cells[i], result and result[0], error


# ---------------------------------------------------------------------------------------------
# Paired statistics


@dataclass(frozen=True)
class WilcoxonResult:
    """A two-sided Wilcoxon signed-rank test of paired differences (zeros dropped, as Wilcoxon did).

    ``statistic`` is the smaller of the positive and negative rank sums; ``n`` the non-zero differences;
    ``method`` ``exact`` (the null distribution counted, used without ties up to 50 pairs) or
    ``normal`` (the normal approximation with the tie correction, no continuity correction).
    """

    statistic: float
    p: float
    n: int
    method: str


#: Differences closer than this are equal (zeros, ties): accuracies are k/n with n up to 10^5, and
#: results.csv keeps 6 significant digits, so a value read back is off by up to 5e-7.
TIE_TOLERANCE = 1e-5


def wilcoxon_signed_rank(differences, exact_max: int = 50, tol: float = TIE_TOLERANCE) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of ``differences`` (1-D) against a median of 0.

    Matches ``scipy.stats.wilcoxon(d, zero_method="wilcox")`` with ``method="exact"`` (no ties, n <=
    ``exact_max``) or ``method="approx"`` (otherwise). Values within ``tol`` of 0 are zeros, and
    absolute values within ``tol`` of each other are ties. With no non-zero difference p is 1.
    """
    d = np.asarray(differences, np.float64).ravel()
    d = d[np.abs(d) > tol]
    n = len(d)
    if n == 0:
        return WilcoxonResult(0.0, 1.0, 0, "exact")
    ranks, counts = _average_ranks(np.abs(d), tol)
    r_plus = float(ranks[d > 0].sum())
    r_minus = n * (n + 1) / 2 - r_plus
    statistic = min(r_plus, r_minus)
    if n <= exact_max and (counts == 1).all():
        # Number of subsets of the ranks 1..n for each rank sum: all 2^n sign patterns are equally likely.
        ways = np.zeros(n * (n + 1) // 2 + 1)
        ways[0] = 1
        for r in range(1, n + 1):
            ways[r:] = ways[r:] + ways[:-r].copy()
        p = min(1.0, 2 * float(ways[: int(statistic) + 1].sum()) / 2.0 ** n)
        return WilcoxonResult(statistic, p, n, "exact")
    mean = n * (n + 1) / 4
    var = n * (n + 1) * (2 * n + 1) / 24 - float((counts ** 3 - counts).sum()) / 48
    z = (statistic - mean) / math.sqrt(var) if var > 0 else 0.0
    return WilcoxonResult(statistic, min(1.0, math.erfc(abs(z) / math.sqrt(2))), n, "normal")


def _average_ranks(values: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Ranks 1..n, values within ``tol`` of their neighbour in sorted order sharing their mean rank; and the tie sizes."""
    order = np.argsort(values, kind="stable")
    ranks, counts = np.empty(len(values)), []
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] - sorted_values[end - 1] > tol:
            ranks[order[start:end]] = (start + 1 + end) / 2
            counts.append(end - start)
            start = end
    return ranks, np.asarray(counts)


def cluster_bootstrap(cells, boots: int = 10_000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a (splits, seeds) array of per-cell values, and its percentile bootstrap interval.

    Each bootstrap draws splits with replacement, then seeds with replacement within each drawn split
    (a two-stage cluster bootstrap): cells of one split share their test items, so they are not
    resampled as if independent. Missing cells are NaN and left out of the means. Returns (mean, low, high).
    """
    values = np.asarray(cells, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    splits = np.repeat(np.arange(len(values)), values.shape[1])
    interval = hierarchical_bootstrap(values.ravel(), splits, boots, level, seed)
    return interval.mean, interval.low, interval.high


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of several p-values (family-wise error); NaN stays NaN."""
    p = np.asarray(p_values, np.float64)
    adjusted = np.full(len(p), np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * p[index]))
        adjusted[index] = running
    return adjusted


def _cells(table, variant: str, metric: str):
    """A variant's ``metric`` as a (split x seed) DataFrame."""
    rows = table[table["variant"] == variant].astype({metric: float, "split": int, "seed": int})
    return rows.pivot_table(index="split", columns="seed", values=metric, aggfunc="mean")


def compare_variants(table, reference: str = REFERENCE, metric: str = "test_acc", boots: int = 10_000,
                     level: float = 0.95):
    """Each variant's accuracy with its interval, and its paired difference from ``reference``.

    Per variant (rows in :func:`summarise`'s order): ``cells`` (runs), ``acc_mean``/``acc_low``/``acc_high``
    (mean over its cells and the :func:`cluster_bootstrap` interval); over the (split, seed) cells both
    have: ``paired`` (their number), ``diff_mean``/``diff_low``/``diff_high`` (variant minus reference,
    with the cluster-bootstrap interval), ``better``/``worse``/``tied`` (cells), ``wilcoxon_p`` (two-sided,
    :func:`wilcoxon_signed_rank` over the cells, as if they were independent) and ``holm_p`` (adjusted over
    every variant compared). Accuracies are fractions. Empty when ``table`` is.
    """
    import pandas as pd

    if table.empty:
        return pd.DataFrame()
    order = summarise(table).index
    base = _cells(table, reference, metric) if reference in set(table["variant"]) else None
    rows = {}
    for variant in order:
        own = _cells(table, variant, metric)
        mean, low, high = cluster_bootstrap(own.to_numpy(), level=level)
        row = {"cells": int(own.notna().to_numpy().sum()), "acc_mean": mean, "acc_low": low, "acc_high": high,
               "paired": 0, "diff_mean": np.nan, "diff_low": np.nan, "diff_high": np.nan, "better": 0, "worse": 0,
               "tied": 0, "wilcoxon_p": np.nan}
        if base is not None and variant != reference:
            diff = own.sub(base).reindex(index=own.index.union(base.index), columns=own.columns.union(base.columns))
            flat = diff.to_numpy().ravel()
            flat = flat[~np.isnan(flat)]
            if len(flat):
                d_mean, d_low, d_high = cluster_bootstrap(diff.to_numpy(), level=level)
                row.update(paired=len(flat), diff_mean=d_mean, diff_low=d_low, diff_high=d_high,
                           better=int((flat > TIE_TOLERANCE).sum()), worse=int((flat < -TIE_TOLERANCE).sum()),
                           tied=int((np.abs(flat) <= TIE_TOLERANCE).sum()), wilcoxon_p=wilcoxon_signed_rank(flat).p)
        rows[variant] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out["holm_p"] = holm(out["wilcoxon_p"].to_numpy())
    out.index.name = "variant"
    return out


def paired_table(comparison, reference: str = REFERENCE, digits: int = 1, level: float = 0.95) -> str:
    """The comparison (:func:`compare_variants`) as Markdown: accuracies and differences in % / points."""
    pct = f"{level:.0%}"
    lines = [f"| variant | test acc % [{pct} CI] | Δ vs {reference}, points [{pct} CI] | better / worse / tied cells | "
             "Wilcoxon p | Holm p |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in comparison.iterrows():
        acc = f"{100 * r.acc_mean:.{digits}f} [{100 * r.acc_low:.{digits}f}, {100 * r.acc_high:.{digits}f}]"
        if name == reference or not r.paired:
            lines.append(f"| {name} | {acc} | (reference) | | | |" if name == reference else f"| {name} | {acc} | – | | | |")
            continue
        diff = f"{100 * r.diff_mean:+.{digits}f} [{100 * r.diff_low:+.{digits}f}, {100 * r.diff_high:+.{digits}f}]"
        cells = f"{int(r.better)} / {int(r.worse)} / {int(r.tied)}"
        lines.append(f"| {name} | {acc} | {diff} | {cells} | {format_p(r.wilcoxon_p)} | {format_p(r.holm_p)} |")
    return "\n".join(lines)


def format_p(p: float) -> str:
    """A p-value for a table: two significant digits, or <0.001."""
    return "–" if np.isnan(p) else f"{p:.2g}" if p >= 0.001 else "<0.001"


# ---------------------------------------------------------------------------------------------
# Summary and plots


def summarise(table):
    """Per variant: the mean and sd over all its runs (splits x seeds), cost, and how many runs, in registry order."""
    import pandas as pd

    if table.empty:
        return pd.DataFrame()
    groups = table.groupby("variant", sort=False)
    summary = pd.DataFrame({
        "runs": groups["seed"].count(),
        "splits": groups["split"].nunique(),
        "seeds": groups["seed"].nunique(),
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
    known = [*VARIANTS, MLP]
    order = [v for v in known if v in summary.index] + [v for v in summary.index if v not in known]
    return summary.loc[order]


def _pm(mean: float, sd: float, scale: float = 100, digits: int = 1) -> str:
    sd_text = "–" if np.isnan(sd) else f"{sd * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {sd_text}"


def summary_table(summary, dataset: str) -> str:
    """The per-variant table as Markdown (accuracies in %, mean ± sd over runs: splits x seeds)."""
    digits = 2 if dataset == "mnist" else 1
    header = ("| variant | params | MACs | test acc % | val acc % | best epoch | latency b1 ms | latency b256 ms | train s | runs |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [header]
    for name, r in summary.iterrows():
        lines.append(f"| {name} | {int(r.params):,} | {int(r.macs):,} | {_pm(r.test_mean, r.test_sd, digits=digits)} | "
                     f"{_pm(r.val_mean, r.val_sd, digits=digits)} | {r.best_epoch:.1f}/{r.epochs_run:.0f} | "
                     f"{r.latency_b1_ms:.3f} | {r.latency_b256_ms:.2f} | {r.train_s:.0f} | {int(r.runs)} |")
    return "\n".join(lines)


def _write_leak_check(data: Dataset, split: Split, out: Path, sample: int) -> None:
    from pipeline.data.near_copies import check_leak, random_split_like

    images, labels = data.images[:, 0].numpy(), data.labels.numpy()
    grouped = check_leak(images, labels, split.train, split.test, "by copy group", sample=sample)
    train, _, test = random_split_like(len(data), len(split.val), len(split.test))
    random = check_leak(images, labels, train, test, "random (for comparison)", sample=sample)
    atomic_write_text(out / "leak.json", json.dumps([grouped.to_dict(), random.to_dict()], indent=2) + "\n")


def _dataset_notes(config: StudyConfig, data: Dataset, splits: dict[int, Split], out: Path, summary) -> list[str]:
    notes = []
    if config.data.hands:
        shown = ", ".join(f"`{display_path(p)}`" for p in config.data.paths)
        parts = []
        for k, split in splits.items():
            groups = split.groups(data)
            parts.append(f"split {k}: train {len(split.train)}, validation {len(split.val)} ({len(groups['val'])} groups), "
                         f"test {len(split.test)} ({len(groups['test'])} groups: {', '.join(groups['test'])})")
        drawn = f", drawn again with `--fill {config.fill}`" if config.fill else ""
        notes.append(f"Hand crops of {shown}{drawn} ({len(set(data.groups.tolist()))} groups), split by group (recording session "
                     f"or person) {len(splits)} ways, each made by `make_split` with its number as the seed: "
                     + "; ".join(parts) + ".")
    elif config.data.kind == "mnist":
        notes.append(f"MNIST's official split: {int((data.groups == 'test').sum()):,} test digits; validation is a "
                     "seeded 10 % of the training digits.")
        if not summary.empty and config.limit is None:
            best = summary["test_mean"].idxmax()
            err = 1 - summary.loc[best, "test_mean"]
            base = 1 - summary.loc["lenet5-classic", "test_mean"] if "lenet5-classic" in summary.index else None
            text = (f"LeNet-5 as published (LeCun et al., 1998) reached **{LENET5_1998_ERROR:.2%} test error** "
                    f"(without distortions, 20 passes). Here the best variant, `{best}`, reaches "
                    f"**{err:.2%}** (mean of {int(summary.loc[best, 'runs'])} runs) after "
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


def write_summary(out: Path, config: StudyConfig, data: Dataset, splits: dict[int, Split], table, summary,
                  comparison, meta: dict) -> Path:
    """Write ``summary.md``: the paired comparison with ``lenet5``, the per-variant table and what they rest on."""
    train = config.train
    recipe = (f"AdamW lr {train.lr}, weight decay {train.weight_decay}, batch {train.batch_size}, label smoothing "
              f"{train.label_smoothing}, cosine schedule over {train.epochs} epochs, early stop after {train.patience} "
              f"epochs without a better validation score; the weights of the best validation epoch are tested. "
              f"Augmentation: {'none' if train.augment == NO_AUGMENT else _augment_text(train.augment)}.")
    if MLP in set(table["variant"]):
        from pipeline.training.landmark_mlp import LANDMARK_CONFIG as mlp

        recipe += (f" `{MLP}` (the landmark baseline, 42 wrist-relative landmark coordinates, no pixels, crops' own "
                   f"mirroring) has its own recipe: AdamW lr {mlp.lr}, batch {mlp.batch_size}, up to {mlp.epochs} epochs, "
                   f"early stop after {mlp.patience}, no augmentation; its MACs and latency are of the MLP alone.")
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
    digits = 2 if config.data.kind == "mnist" else 1
    used = sorted(set(table["split"].astype(int))) if len(table) else []
    lines = [f"# Architecture study: {config.name}", "",
             f"{len(table)} runs: {table['variant'].nunique() if len(table) else 0} variants × splits "
             f"{', '.join(map(str, used))} × seeds {', '.join(str(s) for s in sorted(set(table['seed'].astype(int))))}. "
             f"Data: {len(data)} samples, {len(data.label_names)} classes; every variant is trained on the same "
             "splits with the same seeds.", ""]
    if comparison is not None and not comparison.empty:
        lines += [f"## Paired with `{REFERENCE}`", "", paired_table(comparison, digits=digits), "",
                  f"Test accuracy: mean over the variant's runs, with a 95 % two-stage cluster bootstrap interval (splits "
                  f"drawn with replacement, then seeds within each; 10,000 draws). Δ: the variant's accuracy minus "
                  f"`{REFERENCE}`'s on the same (split, seed) cell, averaged over the cells both have, with the same kind of "
                  "interval. Wilcoxon: two-sided signed-rank test over those cells (zero differences dropped; the cells of "
                  "one split share their test items, so read it with the interval); Holm: adjusted over every variant "
                  f"compared. With {len(used)} split(s) a test that takes the split as the unit can reach at best "
                  f"p = {2 / 2 ** max(len(used), 1):.3g}, so an interval that only just clears zero is a lead, not a finding.", ""]
    lines += ["## Every variant", "",
              summary_table(summary, config.data.kind) if not summary.empty else "(no finished runs yet)", "",
              "Accuracies in %, mean ± sd over runs (splits × seeds); best epoch is the mean epoch chosen on validation / "
              "epochs run. MACs are multiply-accumulates per image.", ""]
    for note in _dataset_notes(config, data, {k: splits[k] for k in used} or splits, out, summary):
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


def plot_study(table, summary, out: Path, dataset: str, dpi: int = 100, comparison=None) -> list[Path]:
    """``accuracy_vs_parameters.png``, ``accuracy_per_variant.png`` and (given ``comparison``) ``paired_differences.png``.

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
    ax.set_xlabel("test accuracy % (dots: runs; diamond: mean ± sd)")
    ax.set_title(f"{dataset}: accuracy per variant")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    paths.append(out / "accuracy_per_variant.png")
    save_figure(fig, paths[-1], dpi)
    if comparison is not None and not comparison.empty and comparison["paired"].any():
        paths.append(plot_paired(table, comparison, out / "paired_differences.png", dataset, dpi))
    return paths


def plot_paired(table, comparison, path: Path, dataset: str, dpi: int = 100, reference: str = REFERENCE) -> Path:
    """Each variant's difference from ``reference`` per (split, seed) cell (dots) and its mean with the 95 % interval."""
    from matplotlib.figure import Figure

    shown = comparison[comparison["paired"] > 0].sort_values("diff_mean")
    base = _cells(table, reference, "test_acc")
    fig = Figure(figsize=(6.4, 0.4 * len(shown) + 1.4))
    ax = fig.subplots()
    for y, (name, r) in enumerate(shown.iterrows()):
        diff = (_cells(table, name, "test_acc") - base).to_numpy().ravel()
        diff = diff[~np.isnan(diff)] * 100
        ax.scatter(diff, np.full(len(diff), y), s=12, color="tab:gray", alpha=0.7, zorder=2)
        colour = "tab:green" if r.diff_low > 0 else "tab:red" if r.diff_high < 0 else "tab:blue"
        ax.errorbar(100 * r.diff_mean, y, xerr=[[100 * (r.diff_mean - r.diff_low)], [100 * (r.diff_high - r.diff_mean)]],
                    fmt="D", color=colour, capsize=3, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(shown)), shown.index.tolist())
    ax.set_xlabel(f"Δ vs {reference}, points (dots: (split, seed) cells; diamond: mean, 95 % CI)")
    ax.set_title(f"{dataset}: paired differences from {reference}")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi)
    return path


__all__ = ["COLUMNS", "HAND_SPLITS", "LENET5_1998_ERROR", "MLP", "REFERENCE", "StudyConfig", "StudyResult",
           "WilcoxonResult", "cluster_bootstrap", "compare_variants", "default_config", "format_p", "holm", "latency_ms",
           "load_cell_model", "load_study_data", "paired_table", "plot_paired", "plot_study", "read_results",
           "run_study", "summarise", "summary_table", "wilcoxon_signed_rank", "write_summary"]
